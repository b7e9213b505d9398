//! Fixtures for tests: real PostgreSQL clusters of any supported major version, started in
//! temporary folders on free ports and stopped when dropped (also when a test panics).
//! Missing binaries are fetched with `scripts/fetch-postgres`: a test never skips for lack
//! of a server.

use anyhow::{bail, Context, Result};
use pganalytics_core::cluster::{binaries, Cluster, ClusterOptions, PgBinaries};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub mod storage;

pub use pganalytics_core::cluster::SUPPORTED_MAJORS;

/// Repository root (for scripts and artefacts).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// How many migrations the repository has (the `.sql` files in `migrations/`), so tests that
/// check "all applied" need no update when a migration is added.
pub fn migration_count() -> usize {
    std::fs::read_dir(repo_root().join("migrations"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
                .count()
        })
        .unwrap_or(0)
}

static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// Binaries of `major`, fetched into the cache when missing.
pub fn pg_binaries(major: u32) -> Result<PgBinaries> {
    if let Ok(b) = binaries::find(Some(major)) {
        return Ok(b);
    }
    let _guard = FETCH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Ok(b) = binaries::find(Some(major)) {
        return Ok(b);
    }
    let script = repo_root().join("scripts/fetch-postgres");
    let status = std::process::Command::new(&script)
        .arg(major.to_string())
        .status()
        .with_context(|| format!("run {}", script.display()))?;
    if !status.success() {
        bail!("{} {major} failed ({status})", script.display());
    }
    binaries::find(Some(major)).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A temporary folder the unprivileged server account can pass through (as root, the
/// servers do not run as us).
pub fn temp_dir() -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("pga-test-")
        .tempdir()
        .context("create a temporary folder")?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
        .context("allow search in the temporary folder")?;
    Ok(dir)
}

/// A running test cluster; dropping it stops the server and removes its folder.
pub struct TestCluster {
    // Field order matters: the server stops before its folder is removed.
    pub cluster: Cluster,
    dir: tempfile::TempDir,
}

impl TestCluster {
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// libpq keyword/value DSN over TCP (127.0.0.1) as the superuser.
    pub fn dsn(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname}",
            self.cluster.port()
        )
    }

    pub fn url(&self, dbname: &str) -> String {
        self.cluster.url(dbname)
    }

    /// A streaming standby of this cluster, in its own temporary folder.
    pub async fn standby(&self) -> Result<TestCluster> {
        let dir = temp_dir()?;
        let cluster = self
            .cluster
            .create_standby(&dir.path().join("standby"), &ClusterOptions::for_tests())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(TestCluster { cluster, dir })
    }

    /// A connection pool to `dbname` as the superuser.
    pub async fn pool(&self, dbname: &str) -> Result<sqlx_pool::PgPool> {
        sqlx_pool::PgPoolOptions::new()
            .max_connections(4)
            .connect_with(self.cluster.connect_options(dbname))
            .await
            .context("connect to the test cluster")
    }
}

/// Re-exported so tests need not name sqlx's module path.
pub mod sqlx_pool {
    pub use sqlx::postgres::{PgPool, PgPoolOptions};
}

/// A started cluster of `major` with the test defaults (TCP on 127.0.0.1, no fsync).
pub async fn pg(major: u32) -> Result<TestCluster> {
    pg_with(major, ClusterOptions::for_tests()).await
}

/// A started cluster of `major` whose TCP connections need a password (SCRAM), with a login
/// role `role` (optionally a member of `member_of`, e.g. `pg_monitor`).
pub async fn pg_with_login(
    major: u32,
    role: &str,
    password: &str,
    member_of: Option<&str>,
) -> Result<TestCluster> {
    let cluster = pg_with(
        major,
        ClusterOptions {
            tcp_auth: Some("scram-sha-256".into()),
            ..ClusterOptions::for_tests()
        },
    )
    .await?;
    let admin = cluster.pool("postgres").await?;
    let grant = member_of
        .map(|r| format!(" IN ROLE {r}"))
        .unwrap_or_default();
    sqlx::query(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{}'{grant}",
        password.replace('\'', "''")
    ))
    .execute(&admin)
    .await
    .context("create the login role")?;
    admin.close().await;
    Ok(cluster)
}

/// A started cluster of `major` with the given options.
pub async fn pg_with(major: u32, options: ClusterOptions) -> Result<TestCluster> {
    let bins = tokio::task::spawn_blocking(move || pg_binaries(major)).await??;
    let dir = temp_dir()?;
    let mut cluster = Cluster::init(&bins, &dir.path().join("cluster"), &options)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    cluster.start().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(TestCluster { cluster, dir })
}
