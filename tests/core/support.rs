//! Helpers shared by the core tests.

use pganalytics_core::api::{Api, ApiOptions, MetricsSnapshotRequest, ServerAddRequest};
use pganalytics_testkit::TestCluster;

/// Repeat an `async fn(major: u32)` test on every supported major version.
#[macro_export]
macro_rules! each_major {
    ($test:ident) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread")]
            async fn pg13() {
                super::$test(13).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn pg14() {
                super::$test(14).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn pg15() {
                super::$test(15).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn pg16() {
                super::$test(16).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn pg17() {
                super::$test(17).await
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn pg18() {
                super::$test(18).await
            }
        }
    };
}

/// An Api over a fresh data directory whose repository is a database in `repo_cluster`
/// (cheaper than an embedded cluster per test; the embedded path has its own tests).
pub async fn api_on(repo_cluster: &TestCluster) -> (Api, tempfile::TempDir) {
    let dir = pganalytics_testkit::temp_dir().expect("temp dir");
    let db = format!("repo_{}", uuid::Uuid::new_v4().simple());
    let pool = repo_cluster.pool("postgres").await.expect("pool");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&pool)
        .await
        .expect("create repository database");
    pool.close().await;
    let api = Api::open(ApiOptions {
        data_dir: Some(dir.path().join("data")),
        repository: Some(repo_cluster.dsn(&db)),
        ..Default::default()
    })
    .await
    .expect("open api");
    (api, dir)
}

/// A request to register `name` at `dsn`, connecting first.
pub fn add(name: &str, dsn: &str) -> ServerAddRequest {
    ServerAddRequest {
        name: name.into(),
        dsn: dsn.into(),
        skip_check: None,
    }
}

/// A request for one snapshot of `server`.
pub fn snap(server: &str) -> MetricsSnapshotRequest {
    MetricsSnapshotRequest {
        server: server.into(),
    }
}
