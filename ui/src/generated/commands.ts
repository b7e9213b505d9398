// Generated from crates/pganalytics-core/src/api/mod.rs (`commands!`). Do not edit.
import type { CreatedToken } from "./CreatedToken";
import type { Empty } from "./Empty";
import type { EngineCharts } from "./EngineCharts";
import type { Error } from "./Error";
import type { MetricsChartsRequest } from "./MetricsChartsRequest";
import type { MetricsPruneRequest } from "./MetricsPruneRequest";
import type { MetricsReport } from "./MetricsReport";
import type { MetricsShowRequest } from "./MetricsShowRequest";
import type { MetricsSnapshotRequest } from "./MetricsSnapshotRequest";
import type { PruneResult } from "./PruneResult";
import type { RepoStatus } from "./RepoStatus";
import type { ServerAddRequest } from "./ServerAddRequest";
import type { ServerCheck } from "./ServerCheck";
import type { ServerName } from "./ServerName";
import type { ServerSummary } from "./ServerSummary";
import type { SnapshotResult } from "./SnapshotResult";
import type { TokenCreateRequest } from "./TokenCreateRequest";
import type { TokenSummary } from "./TokenSummary";
import type { VersionInfo } from "./VersionInfo";

export type { CreatedToken, Empty, EngineCharts, Error, MetricsChartsRequest, MetricsPruneRequest, MetricsReport, MetricsShowRequest, MetricsSnapshotRequest, PruneResult, RepoStatus, ServerAddRequest, ServerCheck, ServerName, ServerSummary, SnapshotResult, TokenCreateRequest, TokenSummary, VersionInfo };

/** Every command of the core API with its request and response type. */
export interface Commands {
  /** Build version of the core. */
  version: { request: Empty; response: VersionInfo };
  /** Repository kind, location, server version and applied migrations. */
  repo_status: { request: Empty; response: RepoStatus };
  /** Monitored servers, by name. */
  server_list: { request: Empty; response: Array<ServerSummary> };
  /** Register a monitored server; the DSN's password moves to the OS keyring. */
  server_add: { request: ServerAddRequest; response: ServerSummary };
  /** Forget a monitored server and its keyring entry. */
  server_remove: { request: ServerName; response: ServerSummary };
  /** Connect and report version, privileges and feature readiness. */
  server_check: { request: ServerName; response: ServerCheck };
  /** Create an API token for the daemon; the token is shown once. */
  token_create: { request: TokenCreateRequest; response: CreatedToken };
  /** API tokens (names and dates, never the tokens). */
  token_list: { request: Empty; response: Array<TokenSummary> };
  /** Read a server's statistics views and store one snapshot. */
  metrics_snapshot: { request: MetricsSnapshotRequest; response: SnapshotResult };
  /** Latest engine metrics of a server, rates and advice over a window, collection status. */
  metrics_show: { request: MetricsShowRequest; response: MetricsReport };
  /** Engine charts of a server over a window (SVG), advice and collection status. */
  metrics_charts: { request: MetricsChartsRequest; response: EngineCharts };
  /** Delete engine-metric snapshots older than a retention period. */
  metrics_prune: { request: MetricsPruneRequest; response: PruneResult };
}
