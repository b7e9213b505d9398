//! The cluster manager: init/start/stop/status on every version, standbys, bad input.

use crate::each_major;
use pganalytics_core::cluster::{self, Cluster, ClusterOptions, ClusterStatus};
use pganalytics_core::ErrorCode;
use sqlx::Row;

/// A DBA relies on settings reaching the server and on stop/start working on each version.
async fn lifecycle(major: u32) {
    let bins = pganalytics_testkit::pg_binaries(major).expect("binaries");
    assert_eq!(bins.major, major);
    let dir = pganalytics_testkit::temp_dir().unwrap();
    let folder = dir.path().join("c");
    let options = ClusterOptions::for_tests()
        .setting("wal_level", "logical")
        .setting("max_wal_senders", "7");
    let mut c = Cluster::init(&bins, &folder, &options)
        .await
        .expect("initdb");
    assert_eq!(c.status().await.unwrap(), ClusterStatus::Stopped);
    c.start().await.expect("start");
    assert_eq!(c.status().await.unwrap(), ClusterStatus::Running);

    let pool = sqlx::PgPool::connect(&c.url("postgres"))
        .await
        .expect("connect over TCP");
    let row = sqlx::query(
        "SELECT current_setting('server_version_num')::int AS n, current_setting('wal_level') AS wal,
                current_setting('max_wal_senders') AS senders, current_setting('data_checksums') AS sums",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let n: i32 = row.get("n");
    assert_eq!(
        n / 10000,
        major as i32,
        "server is the requested major version"
    );
    assert_eq!(row.get::<String, _>("wal"), "logical");
    assert_eq!(row.get::<String, _>("senders"), "7");
    assert_eq!(row.get::<String, _>("sums"), "on");
    pool.close().await;

    // The server must not run as root: PostgreSQL refuses, and we switch accounts.
    let pid: u32 = std::fs::read_to_string(c.pgdata().join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uid: u32 = uid_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(uid, c.account().uid);
    assert_ne!(uid, 0);

    c.stop().await.expect("stop");
    assert_eq!(c.status().await.unwrap(), ClusterStatus::Stopped);
    c.start().await.expect("restart");

    // A second process can open the same cluster from its folder.
    let reopened = Cluster::open(&folder, false).unwrap();
    assert_eq!(reopened.port(), c.port());
    assert_eq!(reopened.status().await.unwrap(), ClusterStatus::Running);

    // Dropping the value that started it stops the server, also in a failed test.
    let pgdata = c.pgdata();
    drop(c);
    assert!(
        !pgdata.join("postmaster.pid").exists(),
        "server stopped on drop"
    );
}
each_major!(lifecycle);

/// A streaming standby made without pg_basebackup replays what the primary writes.
async fn standby(major: u32) {
    let primary = pganalytics_testkit::pg(major).await.expect("primary");
    let standby = primary.standby().await.expect("standby");
    let p = primary.pool("postgres").await.unwrap();
    let s = standby.pool("postgres").await.unwrap();
    sqlx::query("CREATE TABLE t AS SELECT 42 AS answer")
        .execute(&p)
        .await
        .unwrap();
    let in_recovery: bool = sqlx::query("SELECT pg_is_in_recovery()")
        .fetch_one(&s)
        .await
        .unwrap()
        .get(0);
    assert!(in_recovery);
    let mut replayed = None;
    for _ in 0..200 {
        if let Ok(row) = sqlx::query("SELECT answer FROM t").fetch_one(&s).await {
            replayed = Some(row.get::<i32, _>(0));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        replayed,
        Some(42),
        "the standby replays the primary's writes"
    );
    let states: Vec<String> = sqlx::query("SELECT state FROM pg_stat_replication")
        .fetch_all(&p)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(states, vec!["streaming".to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn standby_pg13() {
    standby(13).await
}

#[tokio::test(flavor = "multi_thread")]
async fn standby_pg16() {
    standby(16).await
}

#[tokio::test(flavor = "multi_thread")]
async fn standby_pg18() {
    standby(18).await
}

#[tokio::test(flavor = "multi_thread")]
async fn summarize_wal_on_17_and_later() {
    let c = pganalytics_testkit::pg_with(
        17,
        ClusterOptions::for_tests().setting("summarize_wal", "on"),
    )
    .await
    .unwrap();
    let pool = c.pool("postgres").await.unwrap();
    let v: String = sqlx::query("SHOW summarize_wal")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "on");
}

#[tokio::test(flavor = "multi_thread")]
async fn start_refuses_a_port_held_by_another_program() {
    let holder = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = holder.local_addr().unwrap().port();
    let bins = pganalytics_testkit::pg_binaries(15).unwrap();
    let dir = pganalytics_testkit::temp_dir().unwrap();
    let options = ClusterOptions {
        port: Some(port),
        ..ClusterOptions::for_tests()
    };
    let mut c = Cluster::init(&bins, &dir.path().join("c"), &options)
        .await
        .unwrap();
    let err = c.start().await.expect_err("port is taken");
    assert_eq!(err.code, ErrorCode::PortInUse);
    assert!(
        err.message.contains(&port.to_string()),
        "names the port: {err}"
    );
    assert!(err.hint.is_some());
    assert_eq!(c.status().await.unwrap(), ClusterStatus::Stopped);
}

#[tokio::test(flavor = "multi_thread")]
async fn init_refuses_a_folder_that_is_not_empty() {
    let bins = pganalytics_testkit::pg_binaries(15).unwrap();
    let dir = pganalytics_testkit::temp_dir().unwrap();
    let folder = dir.path().join("c");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("precious.txt"), "keep me").unwrap();
    let err = Cluster::init(&bins, &folder, &ClusterOptions::for_tests())
        .await
        .expect_err("not empty");
    assert_eq!(err.code, ErrorCode::DataDirUnusable);
    assert_eq!(
        std::fs::read_to_string(folder.join("precious.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn missing_binaries_say_how_to_get_them() {
    let err = cluster::binaries::find(Some(9)).expect_err("no PostgreSQL 9 here");
    assert_eq!(err.code, ErrorCode::BinariesMissing);
    assert!(err.hint.unwrap().contains("scripts/fetch-postgres 9"));
}

#[test]
fn finds_every_supported_major() {
    for major in pganalytics_testkit::SUPPORTED_MAJORS {
        let bins = pganalytics_testkit::pg_binaries(major).expect("binaries");
        assert_eq!(bins.major, major);
        assert!(bins.version.starts_with(&format!("{major}.")));
    }
}
