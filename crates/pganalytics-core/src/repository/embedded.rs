//! The embedded repository: a cluster in `<data-dir>/embedded`, created on first use and
//! started by whichever process (app, CLI, daemon) needs it first. It listens only on a unix
//! socket inside its own folder (mode 0700), so trust authentication admits only its owner,
//! and no TCP port can clash. It keeps running after the process exits so that the next
//! command starts fast; `pganalytics repo stop` stops it.

use crate::cluster::{self, Cluster, ClusterOptions};
use crate::data_dir::DataDir;
use crate::error::{Error, Result};
use anyhow::Context;
use sqlx::{ConnectOptions, Connection};

pub const EMBEDDED_DATABASE: &str = "pganalytics";

/// Unix socket paths are limited to 107 bytes; PostgreSQL adds `/.s.PGSQL.NNNNN`.
const MAX_SOCKET_DIR_LEN: usize = 90;

/// Create (first run) or start (later runs) the embedded cluster; it keeps running.
pub async fn ensure_running(data_dir: &DataDir) -> Result<Cluster> {
    let folder = data_dir.embedded_dir();
    let socket_dir_len = folder.join("run").as_os_str().len();
    if socket_dir_len > MAX_SOCKET_DIR_LEN {
        return Err(Error::new(
            crate::ErrorCode::DataDirUnusable,
            format!(
                "the data directory path {} is too long for the embedded cluster's unix socket",
                data_dir.path().display()
            ),
        )
        .with_hint("choose a shorter --data-dir (at most about 80 characters)"));
    }
    // Two processes starting at once (app and CLI) must not both run initdb or pg_ctl.
    let lock_path = data_dir.path().join("embedded.lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("open {}", lock_path.display()))?;
    let lock = tokio::task::spawn_blocking(move || {
        nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::internal(format!("lock the embedded cluster: {e}")))
    })
    .await
    .map_err(|e| Error::internal(format!("lock task failed: {e}")))??;

    let mut cluster = if Cluster::exists(&folder) {
        Cluster::open(&folder, false)?
    } else {
        if folder.exists() {
            // A previous first run died during initdb: start over.
            std::fs::remove_dir_all(&folder)
                .with_context(|| format!("remove incomplete {}", folder.display()))?;
        }
        let bins = cluster::binaries::find_for_embedded()?;
        tracing::info!(version = %bins.version, folder = %folder.display(), "creating the embedded repository cluster");
        let options = ClusterOptions {
            listen_tcp: false,
            stop_on_drop: false,
            ..Default::default()
        }
        .setting("shared_buffers", "32MB")
        .setting("max_connections", "50")
        .setting("max_wal_size", "256MB");
        let mut cluster = Cluster::init(&bins, &folder, &options).await?;
        cluster.start().await?;
        create_database(&cluster).await?;
        cluster
    };
    cluster.start().await?;
    drop(lock);
    Ok(cluster)
}

async fn create_database(cluster: &Cluster) -> Result<()> {
    let mut conn = cluster
        .connect_options("postgres")
        .connect()
        .await
        .context("connect to the embedded cluster")?;
    sqlx::query(&format!("CREATE DATABASE {EMBEDDED_DATABASE}"))
        .execute(&mut conn)
        .await
        .context("create the repository database")?;
    let _ = conn.close().await;
    Ok(())
}

/// Stop the embedded cluster if it runs (`pganalytics repo stop`).
pub async fn stop(data_dir: &DataDir) -> Result<bool> {
    let folder = data_dir.embedded_dir();
    if !Cluster::exists(&folder) {
        return Ok(false);
    }
    let mut cluster = Cluster::open(&folder, false)?;
    let was_running = cluster.status().await? == cluster::ClusterStatus::Running;
    cluster.stop().await?;
    Ok(was_running)
}
