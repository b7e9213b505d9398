//! `pganalytics metrics`: snapshot, show, collect and prune as a user or a script sees them.

use crate::support::Env;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// `metrics snapshot` prints the snap_id alone (scripts capture it), `--json` every value;
/// `metrics show` prints values, rates and the status.
#[tokio::test(flavor = "multi_thread")]
async fn snapshot_and_show() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let target = pganalytics_testkit::pg(17).await.unwrap();
    env.run(&["server", "add", "db17", "--dsn", &target.dsn("postgres")])
        .ok();

    let first = env.run(&["metrics", "snapshot", "--server", "db17"]).ok();
    let first_id: i64 = first
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("only the snap_id: {:?}", first.stdout));
    let json = env
        .run(&["--json", "metrics", "snapshot", "--server", "db17"])
        .ok()
        .json();
    let second_id = json["snap_id"].as_i64().unwrap();
    assert!(second_id > first_id);
    assert!(json["values"]["bgwriter"]["checkpoints_timed"].is_i64());
    // 17 has no pg_stat_checkpointer.num_done: NULL, not 0.
    assert!(json["values"]["bgwriter"]["checkpoints_done"].is_null());
    assert_eq!(
        json["values"]["server_version_num"].as_i64().unwrap() / 10000,
        17
    );

    let text = env
        .run(&["metrics", "show", "--server", "db17", "--since", "30m"])
        .ok()
        .stdout;
    assert!(
        text.contains(&format!("snapshot:    {second_id}")),
        "{text}"
    );
    assert!(text.contains("collection:  ok"), "{text}");
    assert!(text.contains("checkpoints_req"), "{text}");
    assert!(text.contains("archiver:"), "{text}");
    let report = env
        .run(&["--json", "metrics", "show", "--server", "db17"])
        .ok()
        .json();
    assert_eq!(report["latest_snap_id"].as_i64(), Some(second_id));
    assert_eq!(report["snapshots_in_window"].as_i64(), Some(2));

    let pruned = env.run(&["metrics", "prune", "--keep", "30d"]).ok().stdout;
    assert!(pruned.contains("deleted 0 snapshots"), "{pruned}");
}

/// Failures exit 1 with the reason; `show` then reports the failing collection; bad input
/// and usage errors are refused.
#[tokio::test(flavor = "multi_thread")]
async fn failures_and_bad_input() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let port = pganalytics_core::cluster::free_port().unwrap().to_string();
    let dsn = format!("host=127.0.0.1 port={port} user=postgres");
    env.run(&["server", "add", "down", "--dsn", &dsn, "--skip-check"])
        .ok();

    let run = env.run(&["metrics", "snapshot", "--server", "down"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("cannot reach"), "{}", run.stderr);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    let text = env
        .run(&["metrics", "show", "--server", "down"])
        .ok()
        .stdout;
    assert!(text.contains("FAILING"), "{text}");
    assert!(text.contains("no snapshot of this server yet"), "{text}");

    let run = env.run(&["metrics", "snapshot", "--server", "ghost"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no server named `ghost`"),
        "{}",
        run.stderr
    );
    let run = env.run(&["metrics", "show", "--server", "down", "--since", "soon"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("not a duration"), "{}", run.stderr);
    let run = env.run(&["metrics", "prune", "--keep", "0s"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run = env.run(&["metrics", "snapshot"]);
    assert_eq!(
        run.code, 2,
        "missing --server is a usage error: {}",
        run.stderr
    );
    let run = env.run(&["--json", "metrics", "snapshot", "--server", "down"]);
    assert_eq!(run.code, 1);
    let err: serde_json::Value = serde_json::from_str(run.stderr.trim()).unwrap();
    assert_eq!(err["error"]["code"], "unreachable");
}

/// `collect` goes on when one server fails, and stops cleanly on Ctrl-C (SIGINT).
#[tokio::test(flavor = "multi_thread")]
async fn collect_survives_a_failing_server_and_stops_on_ctrl_c() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let target = pganalytics_testkit::pg(13).await.unwrap();
    env.run(&["server", "add", "db13", "--dsn", &target.dsn("postgres")])
        .ok();
    let port = pganalytics_core::cluster::free_port().unwrap().to_string();
    let dsn = format!("host=127.0.0.1 port={port} user=postgres");
    env.run(&["server", "add", "down", "--dsn", &dsn, "--skip-check"])
        .ok();

    // Bounded run: both servers, two rounds each.
    let run = env
        .run(&[
            "metrics",
            "collect",
            "--server",
            "db13",
            "--server",
            "down",
            "--interval",
            "1s",
            "--count",
            "2",
        ])
        .ok();
    assert_eq!(
        run.stdout.matches("db13 snap_id").count(),
        2,
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stderr.matches("error: down:").count(),
        2,
        "{}",
        run.stderr
    );

    // Unbounded run, interrupted like a user pressing Ctrl-C.
    let mut child = env
        .command()
        .args(["metrics", "collect", "--server", "db13", "--interval", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next().expect("a first snapshot").unwrap();
    assert!(line.contains("db13 snap_id"), "{line}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends collection normally");

    // Retention while collecting: accepted, and a bad period is refused before collecting.
    env.run(&[
        "metrics",
        "collect",
        "--server",
        "db13",
        "--interval",
        "1s",
        "--count",
        "1",
        "--keep",
        "30d",
    ])
    .ok();
    let run = env.run(&["metrics", "collect", "--server", "db13", "--keep", "soon"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("not a duration"), "{}", run.stderr);

    let run = env.run(&["metrics", "collect", "--server", "ghost", "--count", "1"]);
    assert_eq!(run.code, 1, "unknown servers fail before collecting");
    let run = env.run(&[
        "metrics",
        "collect",
        "--server",
        "db13",
        "--interval",
        "fast",
    ]);
    assert_eq!(run.code, 1);
}

/// `metrics export --format prometheus` on a 13 and an 18 server passes `promtool check
/// metrics`; versions differ (NULL is left out, never 0); a failing server is still printed
/// with `pganalytics_up 0` and its reason, and the command exits 1.
#[tokio::test(flavor = "multi_thread")]
async fn export_prometheus_passes_promtool_on_13_and_18() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let (db13, db18) = tokio::join!(pganalytics_testkit::pg(13), pganalytics_testkit::pg(18));
    let (db13, db18) = (db13.unwrap(), db18.unwrap());
    env.run(&["server", "add", "db13", "--dsn", &db13.dsn("postgres")])
        .ok();
    env.run(&["server", "add", "db18", "--dsn", &db18.dsn("postgres")])
        .ok();

    let text13 = env
        .run(&[
            "metrics",
            "export",
            "--server",
            "db13",
            "--format",
            "prometheus",
        ])
        .ok()
        .stdout;
    crate::support::promtool_check(&text13);
    assert!(
        text13.contains("pganalytics_up{server=\"db13\"} 1\n"),
        "{text13}"
    );
    assert!(
        text13.contains("pganalytics_buffers_backend_total{server=\"db13\"}"),
        "{text13}"
    );
    // 13 has neither pg_stat_wal nor pg_stat_io nor num_done: left out.
    for absent in [
        "pganalytics_wal_bytes_total",
        "pganalytics_io_",
        "pganalytics_checkpoints_done_total",
    ] {
        assert!(!text13.contains(absent), "{absent} on 13: {text13}");
    }

    let text18 = env
        .run(&["metrics", "export", "--server", "db18"])
        .ok()
        .stdout;
    crate::support::promtool_check(&text18);
    for present in [
        "pganalytics_checkpoints_done_total{server=\"db18\"}",
        "pganalytics_wal_bytes_total{server=\"db18\"}",
        "pganalytics_io_reads_total{server=\"db18\",",
        "pganalytics_buffers_backend_total{server=\"db18\"}",
    ] {
        assert!(text18.contains(present), "{present}: {text18}");
    }
    // 18 dropped pg_stat_wal's write/sync counters.
    assert!(!text18.contains("pganalytics_wal_write_total"), "{text18}");

    // Several servers in one scrape, one of them down.
    let port = pganalytics_core::cluster::free_port().unwrap().to_string();
    let dsn = format!("host=127.0.0.1 port={port} user=postgres");
    env.run(&["server", "add", "down", "--dsn", &dsn, "--skip-check"])
        .ok();
    let run = env.run(&[
        "metrics", "export", "--server", "db13", "--server", "db18", "--server", "down",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    crate::support::promtool_check(&run.stdout);
    assert!(
        run.stdout.contains("pganalytics_up{server=\"db13\"} 1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("pganalytics_up{server=\"down\"} 0"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("pganalytics_collection_error{server=\"down\",code=\"unreachable\""),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.matches("# TYPE pganalytics_up gauge").count(), 1);
    assert!(
        run.stderr.contains("error: down: cannot reach"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("1 of 3 servers"), "{}", run.stderr);

    // Unknown server: nothing printed, exit 1; usage errors exit 2.
    let run = env.run(&["metrics", "export", "--server", "ghost"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("no server named `ghost`"),
        "{}",
        run.stderr
    );
    assert_eq!(env.run(&["metrics", "export"]).code, 2);
    assert_eq!(
        env.run(&[
            "metrics",
            "export",
            "--server",
            "db13",
            "--format",
            "openmetrics"
        ])
        .code,
        2
    );
}

/// `grafana export --out DIR` writes exactly the files checked in under `grafana/`.
#[test]
fn grafana_export_writes_the_checked_in_files() {
    let env = Env::embedded();
    let out = env.dir.path().join("grafana");
    let out_str = out.to_str().unwrap();
    let run = env.run(&["grafana", "export", "--out", out_str]).ok();
    let printed: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(printed.len(), 4, "{}", run.stdout);
    let root = pganalytics_testkit::repo_root().join("grafana");
    for name in [
        "dashboards/checkpoint-recovery.json",
        "dashboards/wal-archiver.json",
        "dashboards/replication-monitoring.json",
        "alerting/wal-archiver-alerts.json",
    ] {
        let written = out.join(name);
        assert!(
            printed.contains(&written.to_str().unwrap()),
            "{name} not printed"
        );
        assert_eq!(
            std::fs::read_to_string(&written).unwrap(),
            std::fs::read_to_string(root.join(name)).unwrap(),
            "{name} differs from the checked-in file"
        );
    }
    let json = env
        .run(&["--json", "grafana", "export", "--out", out_str])
        .ok()
        .json();
    assert_eq!(json.as_array().map(Vec::len), Some(4), "{json}");
    // No repository is opened (nor an embedded cluster started) for this.
    assert!(!env.data_dir().join("embedded").exists());
    let run = env.run(&["grafana", "export"]);
    assert_eq!(run.code, 2, "--out is required");
}

/// Per-standby and per-slot series: a primary with a streaming standby (PostgreSQL 17, after
/// the checkpointer split) exports the standby's lag with its `application_name` and the slot's
/// retained WAL; the standby exports its WAL receiver; both pass `promtool check metrics`.
#[tokio::test(flavor = "multi_thread")]
async fn export_prometheus_of_a_primary_and_its_standby() {
    let primary = pganalytics_testkit::pg(17).await.unwrap();
    let standby = primary.standby().await.unwrap();
    let pool = primary.pool("postgres").await.unwrap();
    // Wait until the standby streams, so that pg_stat_replication has its row.
    for attempt in 0.. {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if n == 1 {
            break;
        }
        assert!(attempt < 200, "the standby never streamed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    env.run(&[
        "server",
        "add",
        "primary",
        "--dsn",
        &primary.dsn("postgres"),
    ])
    .ok();
    env.run(&[
        "server",
        "add",
        "standby",
        "--dsn",
        &standby.dsn("postgres"),
    ])
    .ok();
    let text = env
        .run(&[
            "metrics", "export", "--server", "primary", "--server", "standby",
        ])
        .ok()
        .stdout;
    crate::support::promtool_check(&text);
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{text}"))
            .to_string()
    };
    let lag = line("pganalytics_replication_lag_bytes{server=\"primary\",application_name=\"");
    assert!(lag.contains("client_addr=\"127.0.0.1\""), "{lag}");
    let info = line("pganalytics_replication_standby_info{server=\"primary\"");
    assert!(
        info.contains("state=\"streaming\"") && info.contains("sync_state=\"async\""),
        "{info}"
    );
    let slot = line("pganalytics_slot_retained_bytes{server=\"primary\",slot_name=\"standby_");
    assert!(slot.contains("slot_type=\"physical\""), "{slot}");
    line("pganalytics_slot_info{server=\"primary\"");
    assert_eq!(
        line("pganalytics_wal_receiver_streaming{server=\"standby\"}"),
        "pganalytics_wal_receiver_streaming{server=\"standby\"} 1"
    );
    assert_eq!(
        line("pganalytics_in_recovery{server=\"standby\"}"),
        "pganalytics_in_recovery{server=\"standby\"} 1"
    );
    // A standby has no archiver lag (NULL) and no WAL receiver on the primary.
    assert!(
        !text.contains("pganalytics_archiver_lag_bytes{server=\"standby\"}"),
        "{text}"
    );
    assert!(
        !text.contains("pganalytics_wal_receiver_streaming{server=\"primary\"}"),
        "{text}"
    );
}
