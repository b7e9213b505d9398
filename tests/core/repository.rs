//! The repository: embedded default, external databases, schema, bad input.

use pganalytics_core::api::{Api, ApiOptions, Empty, RepositoryKind};
use pganalytics_core::ErrorCode;
use sqlx::Row;

const BOARD_TABLES: [&str; 9] = [
    "audit_logs",
    "audit_log_verification",
    "audit_log_retention_policy",
    "backup_metadata",
    "backup_schedule",
    "restore_operations",
    "sn_stat_bgwriter",
    "sn_stat_archiver",
    "sn_stat_replication",
];

/// With nothing configured, the first open creates and starts a local cluster; a later open
/// reuses it (same system identifier), also after it was stopped.
#[tokio::test(flavor = "multi_thread")]
async fn embedded_default_is_created_then_reused() {
    let dir = pganalytics_testkit::temp_dir().unwrap();
    let data_dir = dir.path().join("data");
    let options = ApiOptions {
        data_dir: Some(data_dir.clone()),
        repository: None,
        ..Default::default()
    };
    let api = Api::open(options.clone())
        .await
        .expect("first run creates the repository");
    let status = api.repo_status(Empty {}).await.unwrap();
    assert_eq!(status.kind, RepositoryKind::Embedded);
    assert!(status.location.contains(&data_dir.display().to_string()));
    // Every migration file is applied (counted, so a new migration does not break this test).
    let files = pganalytics_testkit::migration_count();
    assert!(files >= 6);
    assert_eq!(status.migrations.len(), files);
    let sysid: i64 = sqlx::query("SELECT system_identifier FROM pg_control_system()")
        .fetch_one(api.repository().pool())
        .await
        .unwrap()
        .get(0);
    api.repository().close().await;
    drop(api);

    // The cluster keeps running for the next process; stopping it is explicit.
    assert!(
        pganalytics_core::api::stop_embedded_repository(Some(&data_dir))
            .await
            .unwrap()
    );
    assert!(
        !pganalytics_core::api::stop_embedded_repository(Some(&data_dir))
            .await
            .unwrap()
    );

    let api = Api::open(options).await.expect("later run starts it again");
    let again: i64 = sqlx::query("SELECT system_identifier FROM pg_control_system()")
        .fetch_one(api.repository().pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(sysid, again, "same cluster, not a new initdb");
    api.repository().close().await;
    pganalytics_core::api::stop_embedded_repository(Some(&data_dir))
        .await
        .unwrap();
}

/// All nine sprint-board tables and the snapshot sequence exist, with the board's defects fixed.
#[tokio::test(flavor = "multi_thread")]
async fn schema_has_the_board_tables_with_fixes() {
    let pg = pganalytics_testkit::pg(13).await.unwrap();
    let (api, _dir) = crate::support::api_on(&pg).await;
    let pool = api.repository().pool();
    for table in BOARD_TABLES {
        let n: i64 =
            sqlx::query("SELECT count(*) FROM information_schema.tables WHERE table_name = $1")
                .bind(table)
                .fetch_one(pool)
                .await
                .unwrap()
                .get(0);
        assert_eq!(n, 1, "table {table} exists");
    }
    let seq: i64 = sqlx::query(
        "SELECT count(*) FROM pg_sequences WHERE sequencename = 'sn_stat_snapshot_seq'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
    .get(0);
    assert_eq!(seq, 1);

    // No timestamp without time zone anywhere in our schema.
    let naive: Vec<String> = sqlx::query(
        "SELECT table_name || '.' || column_name FROM information_schema.columns
         WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert!(naive.is_empty(), "naive timestamps: {naive:?}");

    let column_type = |table: &'static str, column: &'static str| async move {
        sqlx::query("SELECT data_type, is_nullable FROM information_schema.columns WHERE table_name = $1 AND column_name = $2")
            .bind(table)
            .bind(column)
            .fetch_optional(pool)
            .await
            .unwrap()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
    };
    assert_eq!(column_type("sn_stat_replication", "syncstal").await, None);
    assert_eq!(
        column_type("sn_stat_replication", "sync_state")
            .await
            .unwrap()
            .0,
        "text"
    );
    assert_eq!(
        column_type("sn_stat_replication", "client_addr")
            .await
            .unwrap()
            .1,
        "YES"
    );
    assert_eq!(
        column_type("sn_stat_bgwriter", "checkpoint_write_time")
            .await
            .unwrap()
            .0,
        "double precision"
    );

    // A busy server's cumulative checkpoint time (years of milliseconds) fits, and a standby
    // on a unix socket (no client_addr) can be recorded.
    let server_id: uuid::Uuid = sqlx::query(
        "INSERT INTO monitored_servers (name, dsn) VALUES ('s', 'host=x') RETURNING id",
    )
    .fetch_one(pool)
    .await
    .unwrap()
    .get(0);
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO sn_snapshot (server_id, timestamp) VALUES ($1, now())")
        .bind(server_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO sn_stat_bgwriter (server_id, checkpoint_write_time, timestamp) VALUES ($1, 9.5e13, now())")
        .bind(server_id)
        .execute(&mut *tx)
        .await
        .expect("large cumulative times fit");
    for pid in [101, 102] {
        sqlx::query("INSERT INTO sn_stat_replication (server_id, pid, client_addr, sync_state, timestamp) VALUES ($1, $2, NULL, 'potential', now())")
            .bind(server_id)
            .bind(pid)
            .execute(&mut *tx)
            .await
            .expect("two socket standbys in one snapshot");
    }
    tx.commit().await.unwrap();

    // The DSN column refuses a password even if a bug tried to store one.
    let refused = sqlx::query(
        "INSERT INTO monitored_servers (name, dsn) VALUES ('t', 'host=x password=secret')",
    )
    .execute(pool)
    .await;
    assert!(refused.is_err());
}

/// PostgreSQL 12 cannot hold the repository: a clear error, and nothing is written to it.
#[tokio::test(flavor = "multi_thread")]
async fn repository_on_postgres_12_is_refused() {
    let pg12 = pganalytics_testkit::pg(12).await.unwrap();
    let dir = pganalytics_testkit::temp_dir().unwrap();
    let err = match Api::open(ApiOptions {
        data_dir: Some(dir.path().join("data")),
        repository: Some(pg12.dsn("postgres")),
        ..Default::default()
    })
    .await
    {
        Ok(_) => panic!("PostgreSQL 12 must be refused"),
        Err(e) => e,
    };
    assert_eq!(err.code, ErrorCode::UnsupportedVersion);
    assert!(err.message.contains("12."), "names the version: {err}");
    assert!(err.message.contains("13"), "names the minimum: {err}");
    let pool = pg12.pool("postgres").await.unwrap();
    let tables: i64 =
        sqlx::query("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
    assert_eq!(tables, 0, "no migration ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_external_repository_is_a_clear_error() {
    let port = pganalytics_core::cluster::free_port().unwrap();
    let dir = pganalytics_testkit::temp_dir().unwrap();
    let err = match Api::open(ApiOptions {
        data_dir: Some(dir.path().join("data")),
        repository: Some(format!("postgres://postgres@127.0.0.1:{port}/x")),
        ..Default::default()
    })
    .await
    {
        Ok(_) => panic!("nothing listens there"),
        Err(e) => e,
    };
    assert_eq!(err.code, ErrorCode::Unreachable);
    assert!(err.message.contains(&port.to_string()));
}

/// A data directory that belongs to another account is refused before anything is written.
#[tokio::test(flavor = "multi_thread")]
async fn data_dir_owned_by_someone_else_is_refused() {
    let dir = pganalytics_testkit::temp_dir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    if nix::unistd::chown(&data, Some(nobody.uid), Some(nobody.gid)).is_err() {
        // Not root: use a folder that is certainly someone else's.
        let err = pganalytics_core::data_dir::DataDir::resolve(Some(std::path::Path::new("/")))
            .unwrap()
            .ensure()
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::DataDirUnusable);
        return;
    }
    let err = match Api::open(ApiOptions {
        data_dir: Some(data.clone()),
        repository: None,
        ..Default::default()
    })
    .await
    {
        Ok(_) => panic!("must refuse"),
        Err(e) => e,
    };
    assert_eq!(err.code, ErrorCode::DataDirUnusable);
    assert!(err.message.contains("nobody"), "names the owner: {err}");
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "nothing written"
    );
}
