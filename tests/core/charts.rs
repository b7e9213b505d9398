//! Engine charts from real snapshots of real servers: well-formed SVG with the series drawn,
//! no negative values across a statistics reset, names from the server escaped, and a clear
//! "no data yet" before the first snapshots.

use crate::support::{add, api_on, snap};
use pganalytics_core::api::{EngineCharts, MetricsChartsRequest, SnapshotValues};
use pganalytics_core::charts::{self, ChartKind};
use pganalytics_core::cluster::ClusterOptions;
use sqlx::Row;
use std::time::Duration;

const IDS: [&str; 5] = [
    "checkpoints",
    "buffers",
    "archiver",
    "lag_bytes",
    "lag_time",
];

fn charts_req(server: &str) -> MetricsChartsRequest {
    MetricsChartsRequest {
        server: server.into(),
        since: Some("1h".into()),
        utc_offset_minutes: Some(120),
    }
}

/// Writes, checkpoints and a WAL switch: every counter the charts use moves.
async fn activity(pool: &sqlx::PgPool) {
    for sql in [
        "CREATE TABLE IF NOT EXISTS churn AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g",
        "UPDATE churn SET pad = repeat('y', 200)",
        "CHECKPOINT",
        "SELECT pg_switch_wal()",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
}

async fn wait_until(pool: &sqlx::PgPool, sql: &str) {
    for _ in 0..200 {
        if sqlx::query(sql)
            .fetch_one(pool)
            .await
            .unwrap()
            .get::<bool, _>(0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("`{sql}` never became true");
}

/// Parses a chart's SVG (panics when it is not well-formed XML) and checks the root element.
fn parse(svg: &str) -> roxmltree::Document<'_> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.attribute("width"), Some("560"));
    assert_eq!(root.attribute("height"), Some("260"));
    doc
}

fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect()
}

/// Data polylines (axes and ticks are 1 px wide; series are drawn 2 px wide).
fn series_lines(doc: &roxmltree::Document<'_>) -> usize {
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some("2"))
        .count()
}

fn chart<'a>(c: &'a EngineCharts, id: &str) -> &'a pganalytics_core::api::Chart {
    c.charts
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no `{id}` chart"))
}

/// A primary that archives, with a streaming standby: three snapshots give every chart data.
#[tokio::test(flavor = "multi_thread")]
async fn charts_render_from_real_snapshots() {
    let archive = pganalytics_testkit::temp_dir().unwrap();
    let target = archive.path().join("wal");
    std::fs::create_dir(&target).unwrap();
    let primary = pganalytics_testkit::pg_with(
        17,
        ClusterOptions::for_tests()
            .setting("wal_level", "replica")
            .setting("archive_mode", "on")
            .setting("archive_command", format!("cp %p {}/%f", target.display())),
    )
    .await
    .unwrap();
    primary.cluster.account().own(&target).unwrap();
    let standby = primary.standby().await.unwrap();
    let pool = primary.pool("postgres").await.unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;

    // Registered, not collected yet: every chart says so instead of drawing an empty axis.
    api.server_add(add("primary", &primary.dsn("postgres")))
        .await
        .unwrap();
    let before = api.metrics_charts(charts_req("primary")).await.unwrap();
    assert_eq!(before.charts.len(), IDS.len());
    assert_eq!(before.snapshots_in_window, 0);
    assert!(before.latest_snapshot_at.is_none());
    for c in &before.charts {
        let message = c.empty_message.as_deref().expect("no data yet");
        assert!(message.contains("No data yet"), "{}: {message}", c.id);
        let doc = parse(&c.svg);
        assert!(texts(&doc).iter().any(|t| t == message), "{}", c.id);
        assert_eq!(series_lines(&doc), 0);
    }

    wait_until(
        &pool,
        "SELECT count(*) > 0 FROM pg_stat_replication WHERE state = 'streaming'",
    )
    .await;
    for _ in 0..3 {
        activity(&pool).await;
        wait_until(&pool, "SELECT archived_count > 0 FROM pg_stat_archiver").await;
        api.metrics_snapshot(snap("primary")).await.unwrap();
        // Snapshots a little apart, as a collector takes them.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Through the desktop's path: JSON in, JSON out.
    let value = api
        .dispatch(
            "metrics_charts",
            serde_json::json!({ "server": "primary", "since": "15m", "utc_offset_minutes": 120 }),
        )
        .await
        .unwrap();
    let charts: EngineCharts = serde_json::from_value(value).unwrap();
    assert_eq!(charts.server, "primary");
    assert_eq!(charts.snapshots_in_window, 3);
    assert!(charts.latest_snapshot_at.is_some());
    assert_eq!(charts.server_version_num.map(|v| v / 10000), Some(17));
    assert_eq!(charts.in_recovery, Some(false));
    assert!(charts.status.last_error.is_none());
    let ids: Vec<&str> = charts.charts.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, IDS);

    for c in &charts.charts {
        assert_eq!(c.empty_message, None, "{} has data", c.id);
        let doc = parse(&c.svg);
        let texts = texts(&doc);
        assert!(texts.contains(&c.title), "{}: title in {texts:?}", c.id);
        assert!(
            texts.iter().any(|t| t == "time (UTC+02:00)"),
            "{}: the time axis names the offset: {texts:?}",
            c.id
        );
    }
    // Checkpoints are bars: CHECKPOINT ran between every snapshot, so requested bars exist.
    let doc = parse(&chart(&charts, "checkpoints").svg);
    let orange_bars = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("#E07B10"))
        .count();
    assert!(orange_bars >= 3, "one swatch plus a bar per interval");
    // Lines for the rates and the standby's lag.
    for id in ["buffers", "archiver", "lag_bytes", "lag_time"] {
        let doc = parse(&chart(&charts, id).svg);
        assert!(series_lines(&doc) >= 1, "{id} draws its series");
    }
    // The standby is named in the lag legends.
    let standby_name: String = sqlx::query("SELECT application_name FROM pg_stat_replication")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    for id in ["lag_bytes", "lag_time"] {
        let doc = parse(&chart(&charts, id).svg);
        assert!(
            texts(&doc).contains(&standby_name),
            "{id} names {standby_name}"
        );
    }
    drop(standby);
}

/// `pg_stat_reset_shared` between snapshots: the counters go back, the charts' values do not.
#[tokio::test(flavor = "multi_thread")]
async fn a_reset_between_snapshots_gives_no_negative_values() {
    let pg = pganalytics_testkit::pg(16).await.unwrap();
    let pool = pg.pool("postgres").await.unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    api.server_add(add("reset", &pg.dsn("postgres")))
        .await
        .unwrap();
    let mut points: Vec<SnapshotValues> = Vec::new();
    activity(&pool).await;
    for _ in 0..3 {
        sqlx::query("CHECKPOINT").execute(&pool).await.unwrap();
    }
    points.push(api.metrics_snapshot(snap("reset")).await.unwrap().values);
    activity(&pool).await;
    points.push(api.metrics_snapshot(snap("reset")).await.unwrap().values);
    for target in ["bgwriter", "archiver", "io"] {
        sqlx::query("SELECT pg_stat_reset_shared($1)")
            .bind(target)
            .execute(&pool)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    points.push(api.metrics_snapshot(snap("reset")).await.unwrap().values);
    sqlx::query("CHECKPOINT").execute(&pool).await.unwrap();
    points.push(api.metrics_snapshot(snap("reset")).await.unwrap().values);
    assert!(
        points[2].bgwriter.checkpoints_req < points[1].bgwriter.checkpoints_req,
        "the reset took the counter back: a naive difference would be negative"
    );

    let window = (points[0].collected_at, points[3].collected_at);
    let data = charts::build(&points, window);
    let mut samples = 0;
    for c in &data {
        for s in &c.series {
            for p in s.samples() {
                assert!(p.value >= 0.0, "{} / {}: {p:?}", c.id, s.name);
                assert!(p.from <= p.to);
                samples += 1;
            }
        }
    }
    assert!(samples > 0);
    let checkpoints = data.iter().find(|c| c.id == "checkpoints").unwrap();
    assert_eq!(checkpoints.kind, ChartKind::Bars);
    // The interval after the reset either counts from the reset time or is a gap; either way
    // requested checkpoints over the window stay what the server counted.
    let requested: f64 = checkpoints.series[1].samples().map(|p| p.value).sum();
    assert!(requested >= 1.0, "the CHECKPOINTs are charted");

    // And the rendered panel from the repository agrees.
    let stored = api.metrics_charts(charts_req("reset")).await.unwrap();
    for c in &stored.charts {
        parse(&c.svg);
    }
    assert!(chart(&stored, "checkpoints").empty_message.is_none());
}

/// Names come from the server (a standby's `application_name` is chosen by whoever connects);
/// `<`, `&` and quotes in them are escaped in the SVG, not taken as markup.
#[tokio::test(flavor = "multi_thread")]
async fn standby_names_with_markup_are_escaped() {
    let primary = pganalytics_testkit::pg(16).await.unwrap();
    let standby = primary.standby().await.unwrap();
    let pool = primary.pool("postgres").await.unwrap();
    // Rename the standby as its walreceiver reports itself: primary_conninfo reloads (13+).
    let evil = r#"dr<script>alert(1)</script>&"x'"#;
    let spool = standby.pool("postgres").await.unwrap();
    let conninfo: String = sqlx::query("SHOW primary_conninfo")
        .fetch_one(&spool)
        .await
        .unwrap()
        .get(0);
    let conninfo = format!(
        "{conninfo} application_name='{}'",
        evil.replace('\\', "\\\\").replace('\'', "\\'")
    );
    sqlx::query(&format!(
        "ALTER SYSTEM SET primary_conninfo = '{}'",
        conninfo.replace('\'', "''")
    ))
    .execute(&spool)
    .await
    .unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&spool)
        .await
        .unwrap();
    let evil_lit = evil.replace('\'', "''");
    wait_until(
        &pool,
        &format!("SELECT count(*) > 0 FROM pg_stat_replication WHERE application_name = '{evil_lit}' AND state = 'streaming'"),
    )
    .await;

    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    api.server_add(add("primary", &primary.dsn("postgres")))
        .await
        .unwrap();
    for _ in 0..2 {
        sqlx::query("SELECT pg_switch_wal()")
            .execute(&pool)
            .await
            .unwrap();
        let v = api.metrics_snapshot(snap("primary")).await.unwrap().values;
        assert!(
            v.replication
                .iter()
                .any(|r| r.application_name.as_deref() == Some(evil)),
            "{:?}",
            v.replication
        );
    }
    let charts = api.metrics_charts(charts_req("primary")).await.unwrap();
    for id in ["lag_bytes", "lag_time"] {
        let svg = &chart(&charts, id).svg;
        assert!(!svg.contains("<script"), "{id}: raw markup in\n{svg}");
        assert!(svg.contains("&lt;script&gt;") && svg.contains("&amp;") && svg.contains("&quot;"));
        // Parsed back, the text is the name exactly.
        let doc = parse(svg);
        assert!(texts(&doc).iter().any(|t| t == evil), "{id}");
        assert!(!doc.descendants().any(|n| n.has_tag_name("script")));
    }
    drop(standby);
}
