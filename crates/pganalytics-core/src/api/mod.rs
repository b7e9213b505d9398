//! The one surface the three shells call. Each operation is an `async fn` on [`Api`] taking a
//! typed request and returning a typed response; [`commands!`] lists them once, and from that
//! list come the JSON dispatcher used by the desktop IPC ([`Api::dispatch`]) and the
//! TypeScript bindings in `ui/src/generated/` ([`export_typescript`]).

mod types;

pub use types::*;

use crate::data_dir::DataDir;
use crate::error::{Error, Result};
use crate::repository::Repository;
use std::path::PathBuf;

/// Where the state lives; both fields follow the global `--data-dir` / `--repository` options.
#[derive(Debug, Clone, Default)]
pub struct ApiOptions {
    pub data_dir: Option<PathBuf>,
    /// URI of an external repository database; overrides the config file.
    pub repository: Option<String>,
}

/// An opened pgAnalytics: the data directory and a migrated repository.
pub struct Api {
    data_dir: DataDir,
    repo: Repository,
}

impl Api {
    /// Resolve the data directory, open (or create and start) the repository, apply migrations.
    pub async fn open(options: ApiOptions) -> Result<Api> {
        let data_dir = DataDir::resolve(options.data_dir.as_deref())?;
        data_dir.ensure()?;
        let config = data_dir.load_config()?;
        let uri = options.repository.or(config.repository);
        let repo = Repository::open(&data_dir, uri.as_deref()).await?;
        Ok(Api { data_dir, repo })
    }

    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }

    pub async fn version(&self, _req: Empty) -> Result<VersionInfo> {
        Ok(version_info())
    }

    pub async fn repo_status(&self, _req: Empty) -> Result<RepoStatus> {
        self.repo.status(&self.data_dir).await
    }

    pub async fn server_list(&self, _req: Empty) -> Result<Vec<ServerSummary>> {
        crate::server::list(&self.repo).await
    }

    pub async fn server_add(&self, req: ServerAddRequest) -> Result<ServerSummary> {
        crate::server::add(&self.repo, req).await
    }

    pub async fn server_remove(&self, req: ServerName) -> Result<ServerSummary> {
        crate::server::remove(&self.repo, &req.name).await
    }

    pub async fn server_check(&self, req: ServerName) -> Result<ServerCheck> {
        crate::server::check(&self.repo, &req.name).await
    }

    pub async fn token_create(&self, req: TokenCreateRequest) -> Result<CreatedToken> {
        crate::token::create(&self.repo, &req.name).await
    }

    pub async fn token_list(&self, _req: Empty) -> Result<Vec<TokenSummary>> {
        crate::token::list(&self.repo).await
    }

    /// Read every statistics view of a server and store one snapshot.
    pub async fn metrics_snapshot(&self, req: MetricsSnapshotRequest) -> Result<SnapshotResult> {
        let mut collector = crate::metrics::Collector::new(&self.repo, &req.server).await?;
        let result = collector.snapshot(&self.repo).await;
        collector.close().await;
        result
    }

    /// A collector that keeps its connection between snapshots (`metrics collect`, daemon).
    pub async fn metrics_collector(&self, server: &str) -> Result<crate::metrics::Collector> {
        crate::metrics::Collector::new(&self.repo, server).await
    }

    /// Latest values, rates and advice over a window, and the collection status.
    pub async fn metrics_show(&self, req: MetricsShowRequest) -> Result<MetricsReport> {
        let since = match req.since.as_deref() {
            Some(text) => crate::metrics::parse_duration(text)?,
            None => std::time::Duration::from_secs(3600),
        };
        crate::metrics::report::show(&self.repo, &req.server, since).await
    }

    /// Charts of a server's engine metrics over a window (SVG drawn by the core), with advice
    /// and the collection status.
    pub async fn metrics_charts(&self, req: MetricsChartsRequest) -> Result<EngineCharts> {
        let since = match req.since.as_deref() {
            Some(text) => crate::metrics::parse_duration(text)?,
            None => std::time::Duration::from_secs(3600),
        };
        crate::charts::engine(
            &self.repo,
            &req.server,
            since,
            req.utc_offset_minutes.unwrap_or(0),
        )
        .await
    }

    /// Delete snapshots older than the retention period.
    pub async fn metrics_prune(&self, req: MetricsPruneRequest) -> Result<PruneResult> {
        let keep = crate::metrics::parse_duration(&req.keep)?;
        crate::metrics::retention::prune(&self.repo, keep, req.server.as_deref()).await
    }

    /// Check a bearer token presented to the daemon; returns the token's name.
    pub async fn authenticate_token(&self, token: &str) -> Result<String> {
        crate::token::authenticate(&self.repo, token).await
    }
}

/// Stop the embedded repository cluster without opening the repository; `false` when it was
/// not running (or never created).
pub async fn stop_embedded_repository(data_dir: Option<&std::path::Path>) -> Result<bool> {
    let data_dir = DataDir::resolve(data_dir)?;
    crate::repository::stop_embedded(&data_dir).await
}

/// Version of this build (no repository needed).
pub fn version_info() -> VersionInfo {
    VersionInfo {
        version: crate::VERSION.to_string(),
        min_server_version_num: crate::server::MIN_SERVER_VERSION_NUM,
    }
}

/// Declares every command once. Generates [`COMMANDS`], [`Api::dispatch`] and
/// [`export_typescript`].
macro_rules! commands {
    ($( $(#[doc = $doc:literal])* $name:ident ( $req:ty ) -> $res:ty; )*) => {
        /// Names of all commands, in declaration order.
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        impl Api {
            /// Run a command named by a string with JSON arguments (desktop IPC).
            pub async fn dispatch(&self, command: &str, args: serde_json::Value) -> Result<serde_json::Value> {
                match command {
                    $(stringify!($name) => {
                        let req: $req = parse_args(command, args)?;
                        let res: $res = self.$name(req).await?;
                        serde_json::to_value(res).map_err(|e| Error::internal(format!("serialize {command} result: {e}")))
                    })*
                    other => Err(Error::invalid_input(format!("unknown command `{other}`"))),
                }
            }
        }

        /// Write the TypeScript bindings of every command's types, plus `commands.ts`, into
        /// `dir` (the `ts_bindings` test keeps `ui/src/generated/` equal to this).
        pub fn export_typescript(dir: &std::path::Path) -> Result<()> {
            use ts_rs::TypeVisitor;
            let mut exporter = TsExporter { dir, names: Vec::new(), error: None };
            exporter.visit::<Error>();
            $(
                exporter.visit::<$req>();
                exporter.visit::<$res>();
            )*
            if let Some(e) = exporter.error {
                return Err(Error::internal(format!("export TypeScript bindings: {e}")));
            }
            let mut names = exporter.names;
            names.sort();
            let mut out = String::from("// Generated from crates/pganalytics-core/src/api/mod.rs (`commands!`). Do not edit.\n");
            for t in &names {
                out.push_str(&format!("import type {{ {t} }} from \"./{t}\";\n"));
            }
            out.push_str("\nexport type { ");
            out.push_str(&names.join(", "));
            out.push_str(" };\n\n/** Every command of the core API with its request and response type. */\nexport interface Commands {\n");
            $(
                $(out.push_str(&format!("  /**{} */\n", $doc));)*
                out.push_str(&format!("  {}: {{ request: {}; response: {} }};\n",
                    stringify!($name), <$req as ts_rs::TS>::name(), <$res as ts_rs::TS>::name()));
            )*
            out.push_str("}\n");
            std::fs::write(dir.join("commands.ts"), out)
                .map_err(|e| Error::internal(format!("write commands.ts: {e}")))?;
            Ok(())
        }
    };
}

/// Exports every type it visits (and, for containers such as `Vec<T>`, the types inside).
struct TsExporter<'a> {
    dir: &'a std::path::Path,
    names: Vec<String>,
    error: Option<ts_rs::ExportError>,
}

impl ts_rs::TypeVisitor for TsExporter<'_> {
    fn visit<T: ts_rs::TS + 'static + ?Sized>(&mut self) {
        if T::output_path().is_some() {
            let ident = T::ident();
            if self.names.contains(&ident) {
                return;
            }
            self.names.push(ident);
            if let Err(e) = T::export_all_to(self.dir) {
                self.error.get_or_insert(e);
            }
        } else {
            T::visit_generics(self);
            T::visit_dependencies(self);
        }
    }
}

/// Compile-time check: the daemon and the desktop run commands on a multi-threaded runtime,
/// so every command's future must be `Send` (a non-`Send` future breaks both shells' builds
/// far from the cause).
#[allow(dead_code)]
fn dispatch_future_is_send(
    api: &Api,
) -> impl std::future::Future<Output = Result<serde_json::Value>> + Send + '_ {
    api.dispatch("", serde_json::Value::Null)
}

fn parse_args<T: serde::de::DeserializeOwned>(command: &str, args: serde_json::Value) -> Result<T> {
    // The desktop sends `null` for commands without arguments.
    let args = if args.is_null() {
        serde_json::json!({})
    } else {
        args
    };
    serde_json::from_value(args)
        .map_err(|e| Error::invalid_input(format!("invalid arguments for `{command}`: {e}")))
}

commands! {
    /// Build version of the core.
    version(Empty) -> VersionInfo;
    /// Repository kind, location, server version and applied migrations.
    repo_status(Empty) -> RepoStatus;
    /// Monitored servers, by name.
    server_list(Empty) -> Vec<ServerSummary>;
    /// Register a monitored server; the DSN's password moves to the OS keyring.
    server_add(ServerAddRequest) -> ServerSummary;
    /// Forget a monitored server and its keyring entry.
    server_remove(ServerName) -> ServerSummary;
    /// Connect and report version, privileges and feature readiness.
    server_check(ServerName) -> ServerCheck;
    /// Create an API token for the daemon; the token is shown once.
    token_create(TokenCreateRequest) -> CreatedToken;
    /// API tokens (names and dates, never the tokens).
    token_list(Empty) -> Vec<TokenSummary>;
    /// Read a server's statistics views and store one snapshot.
    metrics_snapshot(MetricsSnapshotRequest) -> SnapshotResult;
    /// Latest engine metrics of a server, rates and advice over a window, collection status.
    metrics_show(MetricsShowRequest) -> MetricsReport;
    /// Engine charts of a server over a window (SVG), advice and collection status.
    metrics_charts(MetricsChartsRequest) -> EngineCharts;
    /// Delete engine-metric snapshots older than a retention period.
    metrics_prune(MetricsPruneRequest) -> PruneResult;
}
