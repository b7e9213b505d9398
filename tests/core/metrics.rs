//! Engine metrics on real servers of every supported version: collectors against the views,
//! snapshots in the repository, replication, archiving, resets, restarts and failures.

use crate::each_major;
use crate::support::{add, api_on, snap};
use pganalytics_core::api::{
    AdviceSeverity, ArchiverValues, BgwriterValues, IoRow, MetricsPruneRequest, MetricsShowRequest,
    ServerAddRequest, SnapshotValues, WalValues,
};
use pganalytics_core::cluster::ClusterOptions;
use pganalytics_core::metrics;
use pganalytics_core::ErrorCode;
use pganalytics_testkit::TestCluster;
use sqlx::{Connection, Row};
use std::time::Duration;

fn show(server: &str) -> MetricsShowRequest {
    MetricsShowRequest {
        server: server.into(),
        since: Some("1h".into()),
    }
}

/// A cluster archiving into a folder the server account owns (the folder is returned too).
async fn archiving_cluster(major: u32, command: Option<&str>) -> (TestCluster, tempfile::TempDir) {
    let archive = pganalytics_testkit::temp_dir().unwrap();
    let target = archive.path().join("wal");
    std::fs::create_dir(&target).unwrap();
    let cmd = command
        .map(str::to_string)
        .unwrap_or_else(|| format!("cp %p {}/%f", target.display()));
    let pg = pganalytics_testkit::pg_with(
        major,
        ClusterOptions::for_tests()
            .setting("wal_level", "replica")
            .setting("archive_mode", "on")
            .setting("archive_command", cmd),
    )
    .await
    .unwrap();
    pg.cluster.account().own(&target).unwrap();
    (pg, archive)
}

/// Write some data, checkpoint and switch WAL so that every counter moves.
async fn activity(pool: &sqlx::PgPool) {
    sqlx::query("CREATE TABLE IF NOT EXISTS churn AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 20000) g")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE churn SET pad = repeat('y', 200)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("CHECKPOINT").execute(pool).await.unwrap();
    sqlx::query("SELECT pg_switch_wal()")
        .execute(pool)
        .await
        .unwrap();
}

/// Poll `sql` (one bigint) until it reaches `at_least`.
async fn wait_for(pool: &sqlx::PgPool, sql: &str, at_least: i64) -> i64 {
    let mut last = 0;
    for _ in 0..200 {
        last = sqlx::query(sql).fetch_one(pool).await.unwrap().get(0);
        if last >= at_least {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("`{sql}` stayed at {last}, expected ≥ {at_least}");
}

async fn json_of(conn: &mut sqlx::PgConnection, sql: &str) -> serde_json::Value {
    let text: String = sqlx::query(sql).fetch_one(&mut *conn).await.unwrap().get(0);
    serde_json::from_str(&text).unwrap()
}

/// Collectors return every metric the version has (NULL only where the version lacks one),
/// and the values equal a direct SELECT of each view in the same transaction.
///
/// Why equal values are expected: cumulative statistics are fixed for a transaction. Before 15
/// a backend reads the statistics file once per transaction; from 15 the connection uses
/// `stats_fetch_consistency = snapshot` (as the collector's connections do), so the later
/// SELECTs in the same transaction read the snapshot the collector's statement took. pg_stat_replication and slots are live shared memory, not statistics:
/// they are checked for presence, not equality.
async fn collectors_match_the_views(major: u32) {
    let (pg, _archive) = archiving_cluster(major, None).await;
    let pool = pg.pool("postgres").await.unwrap();
    sqlx::query("SELECT pg_create_physical_replication_slot('held', true)")
        .execute(&pool)
        .await
        .unwrap();
    activity(&pool).await;
    wait_for(&pool, "SELECT archived_count FROM pg_stat_archiver", 1).await;
    // CHECKPOINT returns once the checkpoint is done, a moment before the checkpointer
    // reports its statistics (seen once on 15: checkpoints_req still 0).
    let requested = if major < 17 {
        "SELECT checkpoints_req FROM pg_stat_bgwriter"
    } else {
        "SELECT num_requested FROM pg_stat_checkpointer"
    };
    wait_for(&pool, requested, 1).await;

    let mut conn = sqlx::PgConnection::connect_with(&pg.cluster.connect_options("postgres"))
        .await
        .unwrap();
    // As the collector does on its own connections.
    metrics::prepare_connection(&mut conn).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await
        .unwrap();
    let v: SnapshotValues = metrics::collect(&mut tx).await.expect("collect");
    assert_eq!(v.server_version_num / 10000, major as i32);
    assert!(!v.in_recovery);

    // Background writer and checkpointer.
    let b = &v.bgwriter;
    if major < 17 {
        let direct: BgwriterValues = serde_json::from_value(
            json_of(
                &mut tx,
                "SELECT row_to_json(b)::text FROM pg_stat_bgwriter b",
            )
            .await,
        )
        .unwrap();
        assert_eq!(b, &direct, "pg_stat_bgwriter holds all ten on {major}");
        for missing in [b.checkpoints_done, b.restartpoints_timed, b.slru_written] {
            assert_eq!(missing, None, "17/18-only metrics are NULL on {major}");
        }
    } else {
        let bg = json_of(
            &mut tx,
            "SELECT row_to_json(b)::text FROM pg_stat_bgwriter b",
        )
        .await;
        let cp = json_of(
            &mut tx,
            "SELECT row_to_json(c)::text FROM pg_stat_checkpointer c",
        )
        .await;
        let io = json_of(
            &mut tx,
            &format!(
                "SELECT row_to_json(io)::text FROM {} io",
                metrics::bgwriter::BACKEND_IO
            ),
        )
        .await;
        let i = |j: &serde_json::Value, k: &str| j[k].as_i64();
        assert_eq!(b.checkpoints_timed, i(&cp, "num_timed"));
        assert_eq!(b.checkpoints_req, i(&cp, "num_requested"));
        assert_eq!(b.restartpoints_timed, i(&cp, "restartpoints_timed"));
        assert_eq!(b.restartpoints_req, i(&cp, "restartpoints_req"));
        assert_eq!(b.restartpoints_done, i(&cp, "restartpoints_done"));
        assert_eq!(b.checkpoint_write_time, cp["write_time"].as_f64());
        assert_eq!(b.checkpoint_sync_time, cp["sync_time"].as_f64());
        assert_eq!(b.buffers_checkpoint, i(&cp, "buffers_written"));
        assert_eq!(b.buffers_clean, i(&bg, "buffers_clean"));
        assert_eq!(b.maxwritten_clean, i(&bg, "maxwritten_clean"));
        assert_eq!(b.buffers_alloc, i(&bg, "buffers_alloc"));
        assert_eq!(b.buffers_backend, i(&io, "writes"));
        assert_eq!(b.buffers_backend_fsync, i(&io, "fsyncs"));
        assert!(b.stats_reset.is_some() && b.checkpointer_stats_reset.is_some());
        assert!(b.io_stats_reset.is_some());
        if major >= 18 {
            assert_eq!(b.checkpoints_done, i(&cp, "num_done"));
            assert_eq!(b.slru_written, i(&cp, "slru_written"));
        } else {
            assert_eq!((b.checkpoints_done, b.slru_written), (None, None));
        }
    }
    // Every board metric is present on every version (the mapping above fills them all).
    for (name, value) in [
        ("checkpoints_timed", b.checkpoints_timed),
        ("checkpoints_req", b.checkpoints_req),
        ("buffers_checkpoint", b.buffers_checkpoint),
        ("buffers_clean", b.buffers_clean),
        ("maxwritten_clean", b.maxwritten_clean),
        ("buffers_backend", b.buffers_backend),
        ("buffers_backend_fsync", b.buffers_backend_fsync),
        ("buffers_alloc", b.buffers_alloc),
    ] {
        assert!(value.is_some(), "{name} on {major}");
    }
    assert!(b.checkpoint_write_time.is_some() && b.checkpoint_sync_time.is_some());
    assert!(b.checkpoints_req.unwrap() >= 1, "CHECKPOINT was counted");

    // Archiver: the same view everywhere; lag computed from the server's segment size.
    let mut direct: ArchiverValues = serde_json::from_value(
        json_of(
            &mut tx,
            "SELECT row_to_json(a)::text FROM pg_stat_archiver a",
        )
        .await,
    )
    .unwrap();
    direct.current_wal_file = sqlx::query("SELECT pg_walfile_name(pg_current_wal_lsn())")
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .get(0);
    let mut collected = v.archiver.clone();
    assert!(collected.archive_lag_segments.is_some() && collected.archive_lag_bytes.unwrap() >= 0);
    collected.archive_lag_segments = None;
    collected.archive_lag_bytes = None;
    assert_eq!(collected, direct);
    assert!(direct.archived_count.unwrap() >= 1);

    // pg_stat_wal from 14; 18 has no write/sync columns.
    if major >= 14 {
        let direct: WalValues = serde_json::from_value(
            json_of(&mut tx, "SELECT row_to_json(w)::text FROM pg_stat_wal w").await,
        )
        .unwrap();
        let wal = v.wal.as_ref().expect("pg_stat_wal");
        assert_eq!(wal, &direct);
        assert!(wal.wal_bytes.unwrap() > 0);
        assert_eq!(wal.wal_write.is_some(), major < 18);
    } else {
        assert_eq!(v.wal, None);
    }

    // pg_stat_io from 16: the rows that counted anything.
    if major >= 16 {
        let direct: Vec<IoRow> = serde_json::from_value(
            json_of(
                &mut tx,
                &format!(
                    "SELECT coalesce(json_agg(row_to_json(i) ORDER BY backend_type, object, context), '[]')::text
                     FROM pg_stat_io i WHERE {}",
                    metrics::io::NONZERO
                ),
            )
            .await,
        )
        .unwrap();
        let io = v.io.as_ref().expect("pg_stat_io");
        assert!(!io.is_empty());
        assert_eq!(io, &direct);
        assert_eq!(
            io[0].op_bytes.is_some(),
            major < 18,
            "op_bytes is 16–17 only"
        );
    } else {
        assert_eq!(v.io, None);
    }

    // Slots: present, with the WAL they hold.
    let slot = v
        .slots
        .iter()
        .find(|s| s.slot_name == "held")
        .expect("slot");
    assert_eq!(slot.slot_type.as_deref(), Some("physical"));
    assert!(slot.retained_bytes.unwrap() > 0);
    // `conflicting` (16+) is NULL for physical slots by definition.
    assert_eq!(slot.conflicting, None);
    assert!(v.replication.is_empty() && v.wal_receiver.is_none());
    tx.rollback().await.unwrap();

    // The same through the API: one snapshot, all rows in the repository.
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    api.server_add(add("target", &pg.dsn("postgres")))
        .await
        .unwrap();
    let first = api
        .metrics_snapshot(snap("target"))
        .await
        .expect("snapshot");
    assert!(first.snap_id > 0);
    assert_eq!(
        first.values.archiver.archive_rate, None,
        "no previous snapshot"
    );
    let second = api.metrics_snapshot(snap("target")).await.unwrap();
    assert!(second.snap_id > first.snap_id);
    assert!(second.values.archiver.archive_rate.unwrap() >= 0.0);
    let rp = api.repository().pool();
    let count = |table: &'static str, id: i64| async move {
        let n: i64 = sqlx::query(&format!("SELECT count(*) FROM {table} WHERE snap_id = $1"))
            .bind(id)
            .fetch_one(rp)
            .await
            .unwrap()
            .get(0);
        n
    };
    assert_eq!(count("sn_stat_bgwriter", second.snap_id).await, 1);
    assert_eq!(count("sn_stat_archiver", second.snap_id).await, 1);
    assert_eq!(count("sn_stat_replication_slots", second.snap_id).await, 1);
    assert_eq!(
        count("sn_stat_wal", second.snap_id).await,
        i64::from(major >= 14)
    );
    assert_eq!(
        count("sn_stat_io", second.snap_id).await,
        second.values.io.as_ref().map_or(0, |io| io.len() as i64)
    );
    // Read back, the newest snapshot equals what was collected.
    let report = api.metrics_show(show("target")).await.unwrap();
    assert_eq!(report.latest_snap_id, Some(second.snap_id));
    let latest = report.latest.expect("latest");
    assert_eq!(latest.bgwriter, second.values.bgwriter);
    assert_eq!(latest.archiver, second.values.archiver);
    assert_eq!(latest.wal, second.values.wal);
    assert_eq!(latest.io, second.values.io);
    assert_eq!(latest.slots, second.values.slots);
    assert_eq!(report.snapshots_in_window, 2);
    assert!(report.status.last_error.is_none());
    assert_eq!(report.status.last_snap_id, Some(second.snap_id));
    for r in &report.rates {
        assert!(r.per_second.is_none_or(|p| p >= 0.0), "{r:?}");
    }
}
each_major!(collectors_match_the_views);

/// A primary with a streaming standby: a replication row with lag in bytes on the primary,
/// the WAL receiver on the standby, before and after the 17 changes.
async fn primary_and_standby(major: u32) {
    let primary = pganalytics_testkit::pg(major).await.unwrap();
    let standby = primary.standby().await.unwrap();
    let pool = primary.pool("postgres").await.unwrap();
    activity(&pool).await;
    wait_for(
        &pool,
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
        1,
    )
    .await;
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    api.server_add(add("primary", &primary.dsn("postgres")))
        .await
        .unwrap();
    api.server_add(add("standby", &standby.dsn("postgres")))
        .await
        .unwrap();

    let p = api.metrics_snapshot(snap("primary")).await.unwrap().values;
    assert_eq!(p.replication.len(), 1, "{:?}", p.replication);
    let row = &p.replication[0];
    assert_eq!(row.state.as_deref(), Some("streaming"));
    assert!(row.application_name.is_some() && row.sync_state.is_some());
    assert!(row.wal_replay_lsn.is_some() && row.wal_sent_lsn.is_some());
    assert!(row.lag_bytes.unwrap() >= 0, "lag in bytes: {row:?}");
    let slot = p
        .slots
        .iter()
        .find(|s| s.active == Some(true))
        .expect("the standby's slot");
    assert!(slot.retained_bytes.is_some());

    let s = api.metrics_snapshot(snap("standby")).await.unwrap().values;
    assert!(s.in_recovery);
    let receiver = s.wal_receiver.expect("wal receiver on the standby");
    assert_eq!(receiver.status.as_deref(), Some("streaming"));
    assert!(receiver.replay_lag_bytes.unwrap() >= 0);
    assert!(s.replication.is_empty());
    assert_eq!(
        s.archiver.archive_lag_segments, None,
        "no archive lag on a standby"
    );

    // Stored and read back per standby.
    let report = api.metrics_show(show("primary")).await.unwrap();
    let stored = &report.latest.unwrap().replication;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].lag_bytes, row.lag_bytes);
    assert_eq!(stored[0].application_name, row.application_name);
    let report = api.metrics_show(show("standby")).await.unwrap();
    assert!(report.latest.unwrap().wal_receiver.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn primary_and_standby_pg16() {
    primary_and_standby(16).await
}

#[tokio::test(flavor = "multi_thread")]
async fn primary_and_standby_pg18() {
    primary_and_standby(18).await
}

/// `archive_command = /bin/false`: failed_count rises between snapshots and the advice names
/// the failing file and since when.
#[tokio::test(flavor = "multi_thread")]
async fn failing_archiver_is_reported_with_the_file() {
    let (pg, _archive) = archiving_cluster(17, Some("/bin/false")).await;
    let pool = pg.pool("postgres").await.unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    api.server_add(add("failing", &pg.dsn("postgres")))
        .await
        .unwrap();
    let before = api.metrics_snapshot(snap("failing")).await.unwrap().values;
    activity(&pool).await;
    let failed = before.archiver.failed_count.unwrap();
    wait_for(
        &pool,
        "SELECT failed_count FROM pg_stat_archiver",
        failed + 1,
    )
    .await;
    let after = api.metrics_snapshot(snap("failing")).await.unwrap().values;
    assert!(
        after.archiver.failed_count.unwrap() > failed,
        "failed_count rises"
    );
    let file = after
        .archiver
        .last_failed_wal
        .clone()
        .expect("failing file");
    assert_eq!(after.archiver.archived_count, Some(0));

    let report = api.metrics_show(show("failing")).await.unwrap();
    let advice = report
        .advice
        .iter()
        .find(|a| a.topic == "archiver")
        .expect("archiver advice");
    assert_eq!(advice.severity, AdviceSeverity::Critical);
    assert!(advice.finding.contains(&file), "{advice:?}");
    assert!(advice.finding.contains("since"), "{advice:?}");
    let rate = report
        .rates
        .iter()
        .find(|r| r.metric == "failed_count")
        .unwrap();
    assert!(rate.delta.unwrap() >= 1.0);
}

/// Resetting the shared statistics between two snapshots gives no negative rate.
async fn stats_reset_between_snapshots(major: u32) {
    let (pg, _archive) = archiving_cluster(major, None).await;
    let pool = pg.pool("postgres").await.unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    api.server_add(add("reset", &pg.dsn("postgres")))
        .await
        .unwrap();
    activity(&pool).await;
    for _ in 0..3 {
        sqlx::query("CHECKPOINT").execute(&pool).await.unwrap();
    }
    wait_for(&pool, "SELECT archived_count FROM pg_stat_archiver", 1).await;
    let before = api.metrics_snapshot(snap("reset")).await.unwrap().values;
    let mut targets = vec!["bgwriter", "archiver"];
    if major >= 14 {
        targets.push("wal");
    }
    if major >= 16 {
        targets.push("io");
    }
    if major >= 17 {
        targets.push("checkpointer");
    }
    for t in targets {
        sqlx::query("SELECT pg_stat_reset_shared($1)")
            .bind(t)
            .execute(&pool)
            .await
            .unwrap();
    }
    // Stats flushed by other processes take a moment on 15+; the reset itself is immediate.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = api.metrics_snapshot(snap("reset")).await.unwrap().values;
    assert!(
        after.bgwriter.checkpoints_req.unwrap() < before.bgwriter.checkpoints_req.unwrap(),
        "the reset happened"
    );
    // Not `archived_count` going down: a segment still in flight may be archived after the
    // reset. The reset time is what must change.
    assert_ne!(after.archiver.stats_reset, before.archiver.stats_reset);
    assert!(after.archiver.archive_rate.is_none_or(|r| r >= 0.0));
    let report = api.metrics_show(show("reset")).await.unwrap();
    assert!(!report.rates.is_empty());
    for r in &report.rates {
        assert!(r.delta.is_none_or(|d| d >= 0.0), "{r:?}");
        assert!(r.per_second.is_none_or(|p| p >= 0.0), "{r:?}");
    }
    // The increase after the reset is no larger than the counter itself.
    let req = report
        .rates
        .iter()
        .find(|r| r.metric == "checkpoints_req")
        .unwrap();
    assert!(req.delta.unwrap_or(0.0) <= after.bgwriter.checkpoints_req.unwrap() as f64);
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_reset_between_snapshots_pg13() {
    stats_reset_between_snapshots(13).await
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_reset_between_snapshots_pg16() {
    stats_reset_between_snapshots(16).await
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_reset_between_snapshots_pg18() {
    stats_reset_between_snapshots(18).await
}

/// A restart between snapshots: the kept connection dies, the collector reconnects, and rates
/// stay sane.
#[tokio::test(flavor = "multi_thread")]
async fn server_restart_between_snapshots() {
    let mut pg = pganalytics_testkit::pg(16).await.unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    api.server_add(add("restarted", &pg.dsn("postgres")))
        .await
        .unwrap();
    let mut collector = api.metrics_collector("restarted").await.unwrap();
    let before = collector.snapshot(api.repository()).await.unwrap().values;
    pg.cluster.stop().await.unwrap();
    let down = collector.snapshot(api.repository()).await.unwrap_err();
    assert_eq!(down.code, ErrorCode::Unreachable, "{down}");
    pg.cluster.start().await.unwrap();
    let after = collector
        .snapshot(api.repository())
        .await
        .expect("reconnects after the restart")
        .values;
    assert_ne!(before.postmaster_start_time, after.postmaster_start_time);
    let report = api.metrics_show(show("restarted")).await.unwrap();
    assert!(
        report.status.last_error.is_none(),
        "a success clears the error"
    );
    for r in &report.rates {
        assert!(r.per_second.is_none_or(|p| p >= 0.0), "{r:?}");
    }
    collector.close().await;
}

/// One server down and one lacking privileges fail with the reason; another is unaffected and
/// the failures are visible in `metrics show`.
#[tokio::test(flavor = "multi_thread")]
async fn failures_name_the_reason_and_do_not_stop_others() {
    let pg = pganalytics_testkit::pg(17).await.unwrap();
    let admin = pg.pool("postgres").await.unwrap();
    sqlx::query("CREATE ROLE nobody_special LOGIN")
        .execute(&admin)
        .await
        .unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let port = pganalytics_core::cluster::free_port().unwrap();
    api.server_add(ServerAddRequest {
        skip_check: Some(true),
        ..add("down", &format!("host=127.0.0.1 port={port} user=postgres"))
    })
    .await
    .unwrap();
    let weak = format!(
        "host=127.0.0.1 port={} user=nobody_special dbname=postgres",
        pg.cluster.port()
    );
    api.server_add(add("weak", &weak)).await.unwrap();
    api.server_add(add("good", &pg.dsn("postgres")))
        .await
        .unwrap();

    let err = api.metrics_snapshot(snap("down")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unreachable);
    let err = api.metrics_snapshot(snap("weak")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::PermissionDenied);
    assert!(
        err.hint.as_deref().unwrap().contains("GRANT pg_monitor"),
        "{err}"
    );
    api.metrics_snapshot(snap("good"))
        .await
        .expect("others still collect");
    let err = api.metrics_snapshot(snap("ghost")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);

    let report = api.metrics_show(show("weak")).await.unwrap();
    assert!(report.latest.is_none());
    let last = report.status.last_error.expect("the failure is recorded");
    assert_eq!(last.code, ErrorCode::PermissionDenied);
    assert_eq!(report.status.consecutive_failures, 1);
    let report = api.metrics_show(show("down")).await.unwrap();
    assert_eq!(
        report.status.last_error.unwrap().code,
        ErrorCode::Unreachable
    );

    // After the grant the same server collects, and the error is cleared.
    sqlx::query("GRANT pg_monitor TO nobody_special")
        .execute(&admin)
        .await
        .unwrap();
    api.metrics_snapshot(snap("weak")).await.expect("granted");
    let report = api.metrics_show(show("weak")).await.unwrap();
    assert!(report.status.last_error.is_none());
    assert_eq!(report.status.consecutive_failures, 0);

    let bad = api
        .metrics_show(MetricsShowRequest {
            server: "good".into(),
            since: Some("soon".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidInput);
}

/// Retention deletes old snapshots with all their rows, and keeps the recent ones.
#[tokio::test(flavor = "multi_thread")]
async fn prune_deletes_old_snapshots_with_their_rows() {
    let pg = pganalytics_testkit::pg(16).await.unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    api.server_add(add("kept", &pg.dsn("postgres")))
        .await
        .unwrap();
    let old = api.metrics_snapshot(snap("kept")).await.unwrap().snap_id;
    let new = api.metrics_snapshot(snap("kept")).await.unwrap().snap_id;
    let rp = api.repository().pool();
    sqlx::query(
        "UPDATE sn_snapshot SET timestamp = timestamp - interval '40 days' WHERE snap_id = $1",
    )
    .bind(old)
    .execute(rp)
    .await
    .unwrap();
    let pruned = api
        .metrics_prune(MetricsPruneRequest {
            keep: "30d".into(),
            server: None,
        })
        .await
        .unwrap();
    assert_eq!(pruned.deleted_snapshots, 1);
    let left: Vec<i64> = sqlx::query("SELECT snap_id FROM sn_stat_bgwriter ORDER BY snap_id")
        .fetch_all(rp)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, vec![new]);
    let io_left: i64 = sqlx::query("SELECT count(*) FROM sn_stat_io WHERE snap_id = $1")
        .bind(old)
        .fetch_one(rp)
        .await
        .unwrap()
        .get(0);
    assert_eq!(io_left, 0, "rows cascade");
    let err = api
        .metrics_prune(MetricsPruneRequest {
            keep: "forever".into(),
            server: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
}
