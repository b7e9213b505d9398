//! Grafana dashboards: the checked-in files equal what the code generates, and every panel's
//! query (and the alert's) runs against a repository filled by real snapshots and returns rows.
//! After changing a dashboard: `PGANALYTICS_UPDATE_GRAFANA=1 cargo test -p pganalytics-core
//! --test core grafana`.

use crate::support::api_on;
use pganalytics_core::api::{MetricsSnapshotRequest, ServerAddRequest};
use pganalytics_core::cluster::ClusterOptions;
use pganalytics_core::grafana;
use sqlx::Row;

#[test]
fn checked_in_files_match_the_code() {
    let root = pganalytics_testkit::repo_root().join("grafana");
    for (name, value) in grafana::files() {
        let path = root.join(name);
        let fresh = grafana::render(&value);
        if std::env::var_os("PGANALYTICS_UPDATE_GRAFANA").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == fresh, "grafana/{name} differs from the generated dashboard: run PGANALYTICS_UPDATE_GRAFANA=1 cargo test -p pganalytics-core --test core grafana");
    }
}

/// Current Grafana imports the classic JSON model from schemaVersion 39 on; every panel reads
/// the repository through the data source picked in `$datasource`.
#[test]
fn dashboards_use_the_classic_model_and_the_datasource_variable() {
    for (name, value) in grafana::files()
        .into_iter()
        .filter(|(n, _)| n.starts_with("dashboards/"))
    {
        assert!(value["schemaVersion"].as_u64().unwrap() >= 39, "{name}");
        let vars: Vec<&str> = value["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(vars, ["datasource", "server"], "{name}");
        let panels = value["panels"].as_array().unwrap();
        assert!(panels.len() >= 4, "{name} has the board's panels");
        let mut ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
        ids.dedup();
        assert_eq!(ids.len(), panels.len(), "{name}: unique panel ids");
        for p in panels {
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "{name}: {}",
                p["title"]
            );
        }
    }
}

/// Every query of every panel, and the alert rule's, executed against a repository holding
/// real snapshots of a primary (failing archiver, a standby, a slot): each returns rows, and
/// the alert's query fires.
#[tokio::test(flavor = "multi_thread")]
async fn every_panel_query_returns_rows_on_real_snapshots() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let primary = pganalytics_testkit::pg_with(
        16,
        ClusterOptions::for_tests()
            .setting("archive_mode", "on")
            .setting("archive_command", "/bin/false")
            .setting("archive_timeout", "0"),
    )
    .await
    .unwrap();
    let standby = primary.standby().await.unwrap();
    api.server_add(ServerAddRequest {
        name: "primary".into(),
        dsn: primary.dsn("postgres"),
        skip_check: None,
    })
    .await
    .unwrap();
    let pool = primary.pool("postgres").await.unwrap();
    for round in 0..4 {
        sqlx::query("CREATE TABLE IF NOT EXISTS load AS SELECT g FROM generate_series(1, 1000) g")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO load SELECT g FROM generate_series(1, 20000) g")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("SELECT pg_switch_wal()")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("CHECKPOINT").execute(&pool).await.unwrap();
        if round > 0 {
            // Let the archiver try (and fail) the switched segment.
            tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        }
        api.metrics_snapshot(MetricsSnapshotRequest {
            server: "primary".into(),
        })
        .await
        .unwrap();
    }
    drop(standby);

    let server_id: String =
        sqlx::query("SELECT id::text FROM monitored_servers WHERE name = 'primary'")
            .fetch_one(api.repository().pool())
            .await
            .unwrap()
            .get(0);
    let from = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let to = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let mut checked = 0;
    for (file, value) in grafana::files() {
        for (title, sql) in grafana::queries(&value) {
            let sql = grafana::expand_macros(&sql, &server_id, &from, &to);
            let rows = sqlx::query(&sql)
                .fetch_all(api.repository().pool())
                .await
                .unwrap_or_else(|e| panic!("{file} / {title}: {e}\n{sql}"));
            assert!(
                !rows.is_empty(),
                "{file} / {title} returned no rows:\n{sql}"
            );
            if file.starts_with("alerting/") {
                let failed: i64 = rows[0]
                    .try_get::<sqlx::types::BigDecimal, _>("value")
                    .map(|d| d.to_string().parse::<f64>().unwrap() as i64)
                    .unwrap();
                assert!(failed > 0, "the alert fires while archive_command fails");
            }
            checked += 1;
        }
    }
    assert!(checked >= 14, "every panel was checked ({checked})");
}

#[test]
fn grafana_export_writes_the_checked_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let written = pganalytics_core::grafana::export(dir.path()).unwrap();
    assert_eq!(written.len(), pganalytics_core::grafana::files().len());
    let root = pganalytics_testkit::repo_root().join("grafana");
    for (name, _) in pganalytics_core::grafana::files() {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(name)).unwrap(),
            std::fs::read_to_string(root.join(name)).unwrap(),
            "{name}"
        );
    }
}
