//! The three Grafana dashboards of the sprint board (and the archiver alert rule), generated
//! from code so that their queries are tested against a real repository and the files checked
//! in under `grafana/` can never drift from what the code produces.
//!
//! Dashboards use Grafana's classic JSON model (schemaVersion 39) and query the repository's
//! `sn_stat_*` tables through a PostgreSQL data source picked by the `datasource` variable;
//! the `server` variable picks one monitored server. Counters are cumulative in the tables:
//! panels plot per-interval deltas computed with window functions that yield NULL (a gap)
//! across a statistics reset or a server restart instead of a negative spike.

mod dashboards;
mod sql;

pub use dashboards::{checkpoint_recovery, replication_monitoring, wal_archiver};

use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::path::Path;

/// Grafana's plugin id of the core PostgreSQL data source (Grafana 10.2+).
pub const DATASOURCE_TYPE: &str = "grafana-postgresql-datasource";

/// Every generated file: its path under `grafana/` and its JSON.
pub fn files() -> Vec<(&'static str, Value)> {
    vec![
        ("dashboards/checkpoint-recovery.json", checkpoint_recovery()),
        ("dashboards/wal-archiver.json", wal_archiver()),
        (
            "dashboards/replication-monitoring.json",
            replication_monitoring(),
        ),
        (
            "alerting/wal-archiver-alerts.json",
            dashboards::archiver_alert_rules(),
        ),
    ]
}

/// Write every file under `dir` (`grafana export --out DIR`); returns the paths written.
pub fn export(dir: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for (name, value) in files() {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::internal(format!("create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, render(&value))
            .map_err(|e| Error::internal(format!("write {}: {e}", path.display())))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// Pretty JSON with a final newline, as checked in.
pub fn render(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Every SQL query of a dashboard or alert file, with its panel title (for tests).
pub fn queries(file: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(panels) = file["panels"].as_array() {
        for panel in panels {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(sql) = target["rawSql"].as_str() {
                    out.push((
                        panel["title"].as_str().unwrap_or_default().to_string(),
                        sql.to_string(),
                    ));
                }
            }
        }
    }
    if let Some(groups) = file["groups"].as_array() {
        for rule in groups
            .iter()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        {
            for data in rule["data"].as_array().into_iter().flatten() {
                if let Some(sql) = data["model"]["rawSql"].as_str() {
                    out.push((
                        rule["title"].as_str().unwrap_or_default().to_string(),
                        sql.to_string(),
                    ));
                }
            }
        }
    }
    out
}

/// Replace the Grafana macros and variables our queries use by plain SQL, as Grafana's
/// PostgreSQL data source would, so tests can run every query.
pub fn expand_macros(sql: &str, server_id: &str, from: &str, to: &str) -> String {
    let mut out = sql.replace("'$server'", &format!("'{server_id}'"));
    while let Some(start) = out.find("$__timeFilter(") {
        let rest = &out[start + "$__timeFilter(".len()..];
        let Some(end) = rest.find(')') else { break };
        let column = rest[..end].to_string();
        let replacement = format!("{column} BETWEEN '{from}' AND '{to}'");
        out.replace_range(
            start..start + "$__timeFilter(".len() + end + 1,
            &replacement,
        );
    }
    out
}

/// The data source every panel and variable uses: the one picked in `$datasource`.
fn datasource() -> Value {
    json!({ "type": DATASOURCE_TYPE, "uid": "${datasource}" })
}
