//! The three dashboards and the alert rule file.

use super::sql::{increase, rate, series, BGWRITER_RESET};
use super::{datasource, DATASOURCE_TYPE};
use serde_json::{json, Value};

/// A dashboard with the `datasource` and `server` variables and panels laid out two a row.
fn dashboard(uid: &str, title: &str, description: &str, panels: Vec<Value>) -> Value {
    let panels: Vec<Value> = panels
        .into_iter()
        .enumerate()
        .map(|(i, mut p)| {
            let wide = p["gridPos"]["w"].as_u64() == Some(24);
            p["id"] = json!(i + 1);
            if !wide {
                p["gridPos"] = json!({ "h": 9, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 9 });
            }
            p
        })
        .collect();
    json!({
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["pganalytics", "postgresql"],
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": { "from": "now-6h", "to": "now" },
        "timezone": "",
        "annotations": { "list": [] },
        "links": [],
        "templating": { "list": [
            {
                "name": "datasource",
                "label": "pgAnalytics repository",
                "type": "datasource",
                "query": DATASOURCE_TYPE,
                "current": {},
                "hide": 0,
                "refresh": 1,
                "regex": "",
                "options": []
            },
            {
                "name": "server",
                "label": "Server",
                "type": "query",
                "datasource": datasource(),
                "definition": "SELECT name AS __text, id::text AS __value FROM monitored_servers ORDER BY name",
                "query": "SELECT name AS __text, id::text AS __value FROM monitored_servers ORDER BY name",
                "current": {},
                "hide": 0,
                "refresh": 1,
                "multi": false,
                "includeAll": false,
                "sort": 1,
                "options": []
            }
        ]},
        "panels": panels,
    })
}

fn target(sql: String, format: &str) -> Value {
    json!({
        "refId": "A",
        "datasource": datasource(),
        "editorMode": "code",
        "format": format,
        "rawQuery": true,
        "rawSql": sql,
    })
}

fn timeseries(title: &str, description: &str, unit: &str, sql: String) -> Value {
    json!({
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": datasource(),
        "gridPos": { "h": 9, "w": 12, "x": 0, "y": 0 },
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": { "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "spanNulls": false, "showPoints": "never" }
            },
            "overrides": []
        },
        "options": { "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true }, "tooltip": { "mode": "multi", "sort": "none" } },
        "targets": [target(sql, "time_series")],
    })
}

fn table(title: &str, description: &str, sql: String) -> Value {
    json!({
        "type": "table",
        "title": title,
        "description": description,
        "datasource": datasource(),
        "gridPos": { "h": 9, "w": 12, "x": 0, "y": 0 },
        "fieldConfig": { "defaults": {}, "overrides": [] },
        "options": { "showHeader": true },
        "targets": [target(sql, "table")],
    })
}

pub fn checkpoint_recovery() -> Value {
    let r = BGWRITER_RESET;
    dashboard(
        "pganalytics-checkpoint-recovery",
        "pgAnalytics · Checkpoints & background writer",
        "Checkpoint frequency and timing, buffer allocation and cleaning, backend writes (sn_stat_bgwriter).",
        vec![
            timeseries(
                "Checkpoint frequency (scheduled vs requested)",
                "Checkpoints per hour. Requested checkpoints well above scheduled ones mean max_wal_size is too small for the write load.",
                "short",
                series("sn_stat_bgwriter", &[
                    ("scheduled / h", rate("checkpoints_timed", r, 3600)),
                    ("requested / h", rate("checkpoints_req", r, 3600)),
                ]),
            ),
            timeseries(
                "Checkpoint timing (write + sync)",
                "Milliseconds per second spent writing and syncing checkpoint buffers.",
                "ms",
                series("sn_stat_bgwriter", &[
                    ("write", rate("checkpoint_write_time", r, 1)),
                    ("sync", rate("checkpoint_sync_time", r, 1)),
                ]),
            ),
            timeseries(
                "Buffer allocation and cleaning",
                "Buffers per second allocated, written by the background writer, and written at checkpoints.",
                "short",
                series("sn_stat_bgwriter", &[
                    ("allocated", rate("buffers_alloc", r, 1)),
                    ("cleaned by bgwriter", rate("buffers_clean", r, 1)),
                    ("written at checkpoint", rate("buffers_checkpoint", r, 1)),
                    ("bgwriter stops (maxwritten)", rate("maxwritten_clean", r, 1)),
                ]),
            ),
            timeseries(
                "Backend write activity",
                "Buffers per second that client backends had to write (and fsync) themselves: the background writer is not keeping up (raise bgwriter_lru_maxpages / lower bgwriter_delay).",
                "short",
                series("sn_stat_bgwriter", &[
                    ("written by backends", rate("buffers_backend", r, 1)),
                    ("backend fsyncs", rate("buffers_backend_fsync", r, 1)),
                ]),
            ),
        ],
    )
}

/// Failed archive attempts since the previous snapshot, per server: the alert's and the
/// panel's query.
fn failed_archives_sql() -> String {
    series(
        "sn_stat_archiver",
        &[(
            "failed archive attempts",
            increase("failed_count", "stats_reset"),
        )],
    )
}

pub fn wal_archiver() -> Value {
    let mut failed = timeseries(
        "Failed archives",
        "Failed archive_command runs since the previous snapshot. Any value above 0 fires the `pgAnalytics: WAL archiving failing` alert rule (grafana/alerting/wal-archiver-alerts.json).",
        "short",
        failed_archives_sql(),
    );
    failed["fieldConfig"]["defaults"]["thresholds"] = json!({
        "mode": "absolute",
        "steps": [ { "color": "green", "value": null }, { "color": "red", "value": 1 } ]
    });
    failed["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] = json!({ "mode": "line+area" });
    dashboard(
        "pganalytics-wal-archiver",
        "pgAnalytics · WAL archiver",
        "Archive rate, failures (with alert), archive lag and WAL retention (sn_stat_archiver, sn_stat_replication_slots).",
        vec![
            timeseries(
                "Archive rate",
                "WAL files archived per second between snapshots (NULL across resets).",
                "short",
                series("sn_stat_archiver", &[("archived files / s", "archive_rate".to_string())]),
            ),
            failed,
            timeseries(
                "Archive lag",
                "Bytes of WAL between the last archived file and the current one. Growing lag with no failures means archiving is too slow for the write rate.",
                "bytes",
                series("sn_stat_archiver", &[
                    ("lag (bytes)", "archive_lag_bytes".to_string()),
                ]),
            ),
            timeseries(
                "WAL retention by replication slot",
                "WAL held back by each replication slot (bytes). A slot that grows without bound fills the disk: drop it or fix its consumer.",
                "bytes",
                "SELECT timestamp AS \"time\", slot_name AS metric, retained_bytes AS value\nFROM sn_stat_replication_slots\nWHERE server_id = '$server' AND $__timeFilter(timestamp)\nORDER BY 1".to_string(),
            ),
        ],
    )
}

pub fn replication_monitoring() -> Value {
    let per_standby = |column: &str| {
        format!(
            "SELECT timestamp AS \"time\", COALESCE(application_name, host(client_addr), pid::text) AS metric, {column} AS value\nFROM sn_stat_replication\nWHERE server_id = '$server' AND $__timeFilter(timestamp)\nORDER BY 1"
        )
    };
    dashboard(
        "pganalytics-replication",
        "pgAnalytics · Replication",
        "Lag per standby in bytes and time, standby states and sync status (sn_stat_replication).",
        vec![
            timeseries(
                "Replication lag (bytes)",
                "Bytes of WAL each standby has not yet replayed (pg_wal_lsn_diff against the primary's current LSN).",
                "bytes",
                per_standby("lag_bytes"),
            ),
            timeseries(
                "Replication lag (time)",
                "Replay lag per standby in seconds.",
                "s",
                per_standby("EXTRACT(EPOCH FROM replay_lag)"),
            ),
            table(
                "Standby names and states",
                "The standbys in the latest snapshot of this server.",
                "SELECT application_name AS \"standby\", client_addr AS \"address\", state, sync_state AS \"sync state\",\n       wal_write_lsn::text AS \"write lsn\", wal_flush_lsn::text AS \"flush lsn\", wal_replay_lsn::text AS \"replay lsn\", lag_bytes AS \"lag (bytes)\"\nFROM sn_stat_replication\nWHERE snap_id = (SELECT max(snap_id) FROM sn_snapshot WHERE server_id = '$server' AND $__timeFilter(timestamp))\nORDER BY 1".to_string(),
            ),
            timeseries(
                "Sync replication status",
                "Standbys per sync state (sync, potential, quorum, async) over time.",
                "short",
                "SELECT timestamp AS \"time\", sync_state AS metric, count(*) AS value\nFROM sn_stat_replication\nWHERE server_id = '$server' AND $__timeFilter(timestamp)\nGROUP BY 1, 2\nORDER BY 1".to_string(),
            ),
            {
                let mut p = timeseries(
                    "Write / flush / replay lag",
                    "The three lags of each standby side by side (seconds): write lag is network, flush lag adds the standby's disk, replay lag adds applying WAL.",
                    "s",
                    "SELECT timestamp AS \"time\", COALESCE(application_name, host(client_addr), pid::text) || ' write' AS metric, EXTRACT(EPOCH FROM write_lag) AS value\nFROM sn_stat_replication WHERE server_id = '$server' AND $__timeFilter(timestamp)\nUNION ALL\nSELECT timestamp, COALESCE(application_name, host(client_addr), pid::text) || ' flush', EXTRACT(EPOCH FROM flush_lag)\nFROM sn_stat_replication WHERE server_id = '$server' AND $__timeFilter(timestamp)\nUNION ALL\nSELECT timestamp, COALESCE(application_name, host(client_addr), pid::text) || ' replay', EXTRACT(EPOCH FROM replay_lag)\nFROM sn_stat_replication WHERE server_id = '$server' AND $__timeFilter(timestamp)\nORDER BY 1".to_string(),
                );
                p["gridPos"] = json!({ "h": 9, "w": 24, "x": 0, "y": 27 });
                p
            },
        ],
    )
}

/// Grafana unified-alerting provisioning file (JSON is accepted like YAML). Grafana fills
/// `${PGANALYTICS_GRAFANA_DS_UID}` from its environment: the uid of the PostgreSQL data source
/// that points at the pgAnalytics repository.
pub fn archiver_alert_rules() -> Value {
    let sql = "SELECT s.name AS metric, sum(a.failed_increase) AS value\nFROM (\n  SELECT server_id, timestamp,\n    CASE WHEN failed_count >= lag(failed_count) OVER w AND stats_reset IS NOT DISTINCT FROM lag(stats_reset) OVER w\n         THEN failed_count - lag(failed_count) OVER w END AS failed_increase\n  FROM sn_stat_archiver\n  WHERE timestamp > now() - interval '15 minutes'\n  WINDOW w AS (PARTITION BY server_id ORDER BY timestamp)\n) a JOIN monitored_servers s ON s.id = a.server_id\nGROUP BY s.name\nHAVING sum(a.failed_increase) > 0";
    json!({
        "apiVersion": 1,
        "groups": [{
            "orgId": 1,
            "name": "pganalytics-wal-archiver",
            "folder": "pgAnalytics",
            "interval": "1m",
            "rules": [{
                "uid": "pganalytics-archive-failing",
                "title": "pgAnalytics: WAL archiving failing",
                "condition": "B",
                "for": "0s",
                "noDataState": "OK",
                "execErrState": "Error",
                "annotations": {
                    "summary": "archive_command failed on {{ $labels.metric }}",
                    "description": "archive_command failed {{ $values.A }} times in 15 minutes. WAL piles up in pg_wal until it succeeds; `pganalytics metrics show --server {{ $labels.metric }}` names the failing file and since when.",
                    "__dashboardUid__": "pganalytics-wal-archiver"
                },
                "labels": { "severity": "critical" },
                "data": [
                    {
                        "refId": "A",
                        "relativeTimeRange": { "from": 900, "to": 0 },
                        "datasourceUid": "${PGANALYTICS_GRAFANA_DS_UID}",
                        "model": { "refId": "A", "editorMode": "code", "format": "table", "rawQuery": true, "rawSql": sql }
                    },
                    {
                        "refId": "B",
                        "datasourceUid": "__expr__",
                        "model": { "refId": "B", "type": "threshold", "expression": "A",
                                   "conditions": [{ "evaluator": { "type": "gt", "params": [0] } }] }
                    }
                ]
            }]
        }]
    })
}
