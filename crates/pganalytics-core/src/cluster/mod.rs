//! Local PostgreSQL clusters: create (`initdb`), start, stop and inspect a cluster in a folder,
//! and make a streaming standby of a running one. The embedded repository and every test use
//! this module, so it works with the system's packages and the relocatable binaries alike.
//!
//! A cluster folder holds `pgdata/` (PGDATA), `run/` (the unix socket), `postgres.log` and
//! `cluster.json` (how we made it: binaries, port, socket), so a later process can open it.

mod account;
pub mod binaries;
mod standby;

pub use account::ServerAccount;
pub use binaries::{PgBinaries, SUPPORTED_MAJORS};

use crate::error::{Error, ErrorCode, Result};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The superuser every cluster made here has (trust authentication, local access only).
pub const SUPERUSER: &str = "postgres";

/// How to create and run a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// TCP port; `None` picks a free one. Also names the unix socket.
    pub port: Option<u16>,
    /// Listen on 127.0.0.1 as well as the unix socket (tests); `false` keeps the cluster
    /// reachable only through the socket in its own folder (embedded repository).
    pub listen_tcp: bool,
    /// `postgresql.conf` settings, e.g. `wal_level`, `archive_mode`, `summarize_wal`.
    pub settings: BTreeMap<String, String>,
    /// `initdb --no-sync` and `fsync = off`: for throw-away test clusters only.
    pub no_sync: bool,
    /// `initdb --data-checksums`.
    pub data_checksums: bool,
    /// Stop the server when the [`Cluster`] value is dropped (tests); the embedded repository
    /// keeps running for the next process.
    pub stop_on_drop: bool,
    /// Authentication method for TCP connections (e.g. `scram-sha-256`); `None` keeps
    /// initdb's `trust`. Unix-socket connections always use `trust` (the socket folder is
    /// private to the server's account).
    pub tcp_auth: Option<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            port: None,
            listen_tcp: false,
            settings: BTreeMap::new(),
            no_sync: false,
            data_checksums: true,
            stop_on_drop: true,
            tcp_auth: None,
        }
    }
}

impl ClusterOptions {
    /// Options for a disposable test cluster: TCP on 127.0.0.1, no fsync, stopped on drop.
    pub fn for_tests() -> Self {
        ClusterOptions {
            listen_tcp: true,
            no_sync: true,
            ..Default::default()
        }
    }

    pub fn setting(mut self, name: &str, value: impl Into<String>) -> Self {
        self.settings.insert(name.to_string(), value.into());
        self
    }
}

/// Saved beside the data folder so another process can open the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClusterFile {
    bindir: PathBuf,
    major: u32,
    version: String,
    port: u16,
    listen_tcp: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterStatus {
    Running,
    Stopped,
}

/// A local cluster. Dropping it stops the server if this value started it and
/// `stop_on_drop` was set, also when a test panics.
#[derive(Debug)]
pub struct Cluster {
    folder: PathBuf,
    bins: PgBinaries,
    account: ServerAccount,
    port: u16,
    listen_tcp: bool,
    stop_on_drop: bool,
    started_here: bool,
}

impl Cluster {
    /// `initdb` a new cluster in `folder` (created if missing, must be empty).
    pub async fn init(
        bins: &PgBinaries,
        folder: &Path,
        options: &ClusterOptions,
    ) -> Result<Cluster> {
        let account = ServerAccount::for_current_process()?;
        prepare_folder(folder, &account)?;
        let pgdata = folder.join("pgdata");
        let run = folder.join("run");
        for dir in [&pgdata, &run] {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            account.own(dir)?;
        }
        account.check_reachable(&pgdata)?;

        let mut initdb = account.command(bins.tool("initdb"));
        initdb.arg("-D").arg(&pgdata).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        if options.no_sync {
            initdb.arg("--no-sync");
        }
        if options.data_checksums {
            initdb.arg("--data-checksums");
        }
        run_checked(initdb, "initdb").await?;

        let port = match options.port {
            Some(p) => p,
            None => free_port()?,
        };
        let mut settings = BTreeMap::new();
        settings.insert(
            "listen_addresses".to_string(),
            if options.listen_tcp { "127.0.0.1" } else { "" }.to_string(),
        );
        settings.insert("port".to_string(), port.to_string());
        settings.insert(
            "unix_socket_directories".to_string(),
            run.display().to_string(),
        );
        settings.insert("unix_socket_permissions".to_string(), "0700".to_string());
        if options.no_sync {
            settings.insert("fsync".to_string(), "off".to_string());
            settings.insert("synchronous_commit".to_string(), "off".to_string());
        }
        settings.extend(options.settings.clone());
        append_settings(&pgdata.join("postgresql.conf"), &settings)?;
        if let Some(method) = &options.tcp_auth {
            let hba = format!(
                "# Written by pgAnalytics\nlocal all all trust\nlocal replication all trust\nhost all all 127.0.0.1/32 {method}\nhost replication all 127.0.0.1/32 {method}\n"
            );
            let path = pgdata.join("pg_hba.conf");
            std::fs::write(&path, hba).with_context(|| format!("write {}", path.display()))?;
        }

        let cluster = Cluster {
            folder: folder.to_path_buf(),
            bins: bins.clone(),
            account,
            port,
            listen_tcp: options.listen_tcp,
            stop_on_drop: options.stop_on_drop,
            started_here: false,
        };
        cluster.save()?;
        Ok(cluster)
    }

    /// Open a cluster made earlier by [`Cluster::init`].
    pub fn open(folder: &Path, stop_on_drop: bool) -> Result<Cluster> {
        let path = folder.join("cluster.json");
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let file: ClusterFile = serde_json::from_str(&text)
            .map_err(|e| Error::internal(format!("{} is malformed: {e}", path.display())))?;
        let bins = PgBinaries::probe(&file.bindir).ok_or_else(|| {
            Error::new(
                ErrorCode::BinariesMissing,
                format!(
                    "the PostgreSQL {} binaries that created {} are gone from {}",
                    file.version,
                    folder.display(),
                    file.bindir.display()
                ),
            )
            .with_hint(format!(
                "reinstall them (`scripts/fetch-postgres {}`)",
                file.major
            ))
        })?;
        Ok(Cluster {
            folder: folder.to_path_buf(),
            bins,
            account: ServerAccount::for_current_process()?,
            port: file.port,
            listen_tcp: file.listen_tcp,
            stop_on_drop,
            started_here: false,
        })
    }

    /// Whether `folder` holds a cluster made by [`Cluster::init`].
    pub fn exists(folder: &Path) -> bool {
        folder.join("cluster.json").is_file() && folder.join("pgdata/PG_VERSION").is_file()
    }

    fn save(&self) -> Result<()> {
        let file = ClusterFile {
            bindir: self.bins.bindir.clone(),
            major: self.bins.major,
            version: self.bins.version.clone(),
            port: self.port,
            listen_tcp: self.listen_tcp,
        };
        let text = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::internal(format!("serialize cluster.json: {e}")))?;
        crate::data_dir::write_atomically(&self.folder.join("cluster.json"), &text)?;
        Ok(())
    }

    pub fn folder(&self) -> &Path {
        &self.folder
    }

    pub fn pgdata(&self) -> PathBuf {
        self.folder.join("pgdata")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.folder.join("run")
    }

    pub fn log_file(&self) -> PathBuf {
        self.folder.join("postgres.log")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn binaries(&self) -> &PgBinaries {
        &self.bins
    }

    pub fn major(&self) -> u32 {
        self.bins.major
    }

    pub fn account(&self) -> &ServerAccount {
        &self.account
    }

    /// libpq keyword/value connection string over the unix socket.
    pub fn dsn(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user={SUPERUSER} dbname={dbname}",
            self.socket_dir().display(),
            self.port
        )
    }

    /// libpq URI: over TCP when the cluster listens on it, else over the socket.
    pub fn url(&self, dbname: &str) -> String {
        if self.listen_tcp {
            format!("postgres://{SUPERUSER}@127.0.0.1:{}/{dbname}", self.port)
        } else {
            let host = self.socket_dir().display().to_string().replace('/', "%2F");
            format!("postgres://{SUPERUSER}@{host}:{}/{dbname}", self.port)
        }
    }

    pub fn connect_options(&self, dbname: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(self.socket_dir())
            .port(self.port)
            .username(SUPERUSER)
            .database(dbname)
    }

    /// Start the server and wait until it accepts connections. A no-op when it already runs.
    pub async fn start(&mut self) -> Result<()> {
        if self.status().await? == ClusterStatus::Running {
            return Ok(());
        }
        if self.listen_tcp {
            check_port_free(self.port)?;
        }
        let mut pg_ctl = self.account.command(self.bins.tool("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(self.pgdata())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "120", "start"]);
        if let Err(err) = run_checked(pg_ctl, "pg_ctl start").await {
            let log = tail(&self.log_file(), 15);
            return Err(Error::new(
                err.code,
                format!("PostgreSQL {} in {} did not start: {}\n--- last lines of {} ---\n{log}", self.bins.version, self.pgdata().display(), err.message, self.log_file().display()),
            )
            .with_hint("read the server log above; a stale postmaster.pid or a full disk are common causes"));
        }
        self.started_here = true;
        self.wait_until_ready().await
    }

    /// `pg_ctl -w` waits for the postmaster; connecting proves the socket and auth work.
    async fn wait_until_ready(&self) -> Result<()> {
        let opts = self.connect_options("postgres");
        let mut last_err = String::new();
        for _ in 0..200 {
            match sqlx::ConnectOptions::connect(&opts).await {
                Ok(conn) => {
                    let _ = sqlx::Connection::close(conn).await;
                    return Ok(());
                }
                Err(e) => last_err = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(Error::new(
            ErrorCode::Unreachable,
            format!(
                "PostgreSQL in {} started but does not accept connections: {last_err}",
                self.pgdata().display()
            ),
        ))
    }

    /// Fast shutdown, waiting until the server is gone.
    pub async fn stop(&mut self) -> Result<()> {
        if self.status().await? == ClusterStatus::Stopped {
            self.started_here = false;
            return Ok(());
        }
        let mut pg_ctl = self.account.command(self.bins.tool("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(self.pgdata())
            .args(["-w", "-t", "120", "-m", "fast", "stop"]);
        run_checked(pg_ctl, "pg_ctl stop").await?;
        self.started_here = false;
        Ok(())
    }

    pub async fn status(&self) -> Result<ClusterStatus> {
        let mut pg_ctl = self.account.command(self.bins.tool("pg_ctl"));
        pg_ctl.arg("-D").arg(self.pgdata()).arg("status");
        let out = tokio::process::Command::from(pg_ctl)
            .output()
            .await
            .context("run pg_ctl status")?;
        // pg_ctl status: 0 running, 3 not running, 4 no accessible data directory.
        match out.status.code() {
            Some(0) => Ok(ClusterStatus::Running),
            Some(3) => Ok(ClusterStatus::Stopped),
            _ => Err(Error::new(
                ErrorCode::DataDirUnusable,
                format!(
                    "{} is not a usable PostgreSQL data directory: {}",
                    self.pgdata().display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            )),
        }
    }

    /// Make a streaming standby of this running cluster in `folder` and start it.
    /// Works without `pg_basebackup`: a physical slot, a non-exclusive backup, a file copy.
    pub async fn create_standby(&self, folder: &Path, options: &ClusterOptions) -> Result<Cluster> {
        standby::create(self, folder, options).await
    }

    fn stop_now_blocking(&mut self) {
        let mut pg_ctl = self.account.command(self.bins.tool("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(self.pgdata())
            .args(["-w", "-t", "60", "-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let _ = pg_ctl.status();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.stop_on_drop && self.started_here {
            self.stop_now_blocking();
        }
    }
}

/// Create `folder` if needed; it must be empty, and owned by the server account.
fn prepare_folder(folder: &Path, account: &ServerAccount) -> Result<()> {
    if folder.exists() {
        let mut entries =
            std::fs::read_dir(folder).with_context(|| format!("read {}", folder.display()))?;
        if entries.next().is_some() {
            return Err(Error::new(
                ErrorCode::DataDirUnusable,
                format!(
                    "{} is not empty; refusing to create a cluster there",
                    folder.display()
                ),
            )
            .with_hint("choose an empty or new folder"));
        }
    } else {
        std::fs::create_dir_all(folder).with_context(|| format!("create {}", folder.display()))?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restrict {}", folder.display()))?;
    account.own(folder)?;
    Ok(())
}

fn append_settings(conf: &Path, settings: &BTreeMap<String, String>) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(conf)
        .with_context(|| format!("open {}", conf.display()))?;
    let mut text = String::from("\n# Added by pgAnalytics\n");
    for (name, value) in settings {
        text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
    }
    file.write_all(text.as_bytes())
        .with_context(|| format!("write {}", conf.display()))?;
    Ok(())
}

/// A TCP port on 127.0.0.1 that nobody listens on right now.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("find a free TCP port")?;
    Ok(listener.local_addr().context("read local address")?.port())
}

/// Refuse a port another program holds, with a message that says so (PostgreSQL's own
/// message would be buried in its log).
pub fn check_port_free(port: u16) -> Result<()> {
    match TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::new(
            ErrorCode::PortInUse,
            format!("port {port} on 127.0.0.1 is already used by another program"),
        )
        .with_hint("choose another port, or stop the program that holds it (`ss -ltnp`)")),
        Err(e) => Err(Error::internal(format!("check port {port}: {e}"))),
    }
}

pub(crate) async fn run_checked(cmd: std::process::Command, what: &str) -> Result<()> {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(std::process::Stdio::null());
    let out = cmd.output().await.with_context(|| format!("run {what}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        return Err(Error::internal(format!(
            "{what} failed ({}): {}",
            out.status,
            if stderr.trim().is_empty() {
                stdout.trim()
            } else {
                stderr.trim()
            }
        )));
    }
    Ok(())
}

pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
