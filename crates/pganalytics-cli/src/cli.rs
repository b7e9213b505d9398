//! The command line, declared with clap. Global options may come from the environment.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "pganalytics",
    version,
    about = "PostgreSQL DBA console: engine metrics, tamper-evident audit log, backup and recovery"
)]
pub struct Cli {
    /// Folder with config, the embedded repository cluster and local state.
    #[arg(long, global = true, env = "PGANALYTICS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL database to use as the repository instead of the embedded cluster
    /// (libpq URI or key=value; passwords from ~/.pgpass or PGPASSWORD).
    #[arg(
        long,
        global = true,
        env = "PGANALYTICS_REPOSITORY",
        value_name = "URI",
        hide_env_values = true
    )]
    pub repository: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Monitored PostgreSQL servers.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Storage targets for backups and WAL: a folder (local or NFS), S3, GCS, Azure Blob.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// The repository that holds pgAnalytics' state.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// API tokens for the daemon.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Engine metrics: snapshots of the statistics views, rates and advice.
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// The tamper-evident audit log: record, query, verify, prove; keys and retention.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Physical backups: take, list, verify, restore, prune; the encryption key.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Grafana dashboards and alert rules over the repository.
    #[command(subcommand)]
    Grafana(GrafanaCommand),
    /// Run the headless daemon: HTTP API, collection of every server, Prometheus `/metrics`.
    Serve(ServeArgs),
    /// Benchmarks (for developers; results go to docs/BENCHMARKS.md).
    #[command(subcommand, hide = true)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum GrafanaCommand {
    /// Write the three dashboards and the WAL archiver alert rules under DIR (prints the paths).
    Export {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Snapshot latency and CPU against prometheus-postgres-exporter on the same server.
    Metrics(BenchMetricsArgs),
    /// Audit Log throughput, call and durability latency against plain INSERTs; verification speed.
    Audit(BenchAuditArgs),
    /// Backup and restore time and memory against pgBackRest and pg_basebackup.
    Backup(BenchBackupArgs),
}

#[derive(Debug, Args)]
pub struct BenchBackupArgs {
    /// Major version of the server the benchmark starts; its folder must hold pg_basebackup
    /// and pgbench (Debian's 15: every tool then uses the same binaries).
    #[arg(long, default_value_t = 15)]
    pub major: u32,
    /// pgbench scale of the compressible dataset (100 ≈ 1.5 GB, 350 ≈ 5 GB).
    #[arg(long, default_value_t = 100)]
    pub scale: u32,
    /// Size of the poorly compressible dataset (random bytes), in GB.
    #[arg(long, default_value_t = 1.0)]
    pub random_gb: f64,
    /// Datasets to measure, in this order.
    #[arg(long, value_delimiter = ',', default_value = "pgbench,random", value_parser = ["pgbench", "random"])]
    pub datasets: Vec<String>,
    /// Tools to measure.
    #[arg(long, value_delimiter = ',', default_value = "pganalytics,pgbackrest,pg_basebackup", value_parser = ["pganalytics", "pgbackrest", "pg_basebackup"])]
    pub tools: Vec<String>,
    /// Runs of every measurement (the report gives medians).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// pgBackRest's process-max.
    #[arg(long, default_value_t = 2)]
    pub process_max: u32,
    /// pgBackRest's binary (installed with apt-get when missing at the default path).
    #[arg(long, default_value = "/usr/bin/pgbackrest")]
    pub pgbackrest: PathBuf,
    /// Backups only.
    #[arg(long)]
    pub no_restore: bool,
}

#[derive(Debug, Args)]
pub struct BenchAuditArgs {
    /// Major version of the PostgreSQL server the benchmark starts.
    #[arg(long, default_value_t = 16)]
    pub major: u32,
    /// Events per writer count in the max-throughput load.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Length of the paced load (offered rate: half of what plain INSERT sustained).
    #[arg(long, default_value_t = 10.0)]
    pub paced_seconds: f64,
    /// Events in the log when verification is timed.
    #[arg(long, default_value_t = 500_000)]
    pub verify_events: usize,
    /// The server's `shared_buffers` (PostgreSQL's default when not given). A log larger
    /// than it is read through the kernel's page cache, page by page, during verification.
    #[arg(long)]
    pub shared_buffers: Option<String>,
    /// Time verification only (the log is still filled to `--verify-events`): for working
    /// on verification's speed.
    #[arg(long)]
    pub verification_only: bool,
    /// End-to-end verification runs to time.
    #[arg(long, default_value_t = 3)]
    pub verify_runs: usize,
}

#[derive(Debug, Args)]
pub struct BenchMetricsArgs {
    /// Major version of the PostgreSQL server the benchmark starts.
    #[arg(long, default_value_t = 16)]
    pub major: u32,
    /// Snapshots and scrapes to time (after a warm-up of 20 each).
    #[arg(long, default_value_t = 500)]
    pub runs: usize,
    /// The exporter's binary.
    #[arg(long, default_value = "/usr/bin/prometheus-postgres-exporter")]
    pub exporter: PathBuf,
    /// Load pg_stat_statements and print where the server time of each side goes (adds a
    /// little overhead to both).
    #[arg(long)]
    pub statements: bool,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Register a server (connects first; a password in the DSN moves to the OS keyring).
    Add(ServerAddArgs),
    /// List registered servers.
    List,
    /// Forget a server.
    Remove { name: String },
    /// Connect and report version, privileges and what each feature needs.
    Check { name: String },
}

#[derive(Debug, Args)]
pub struct ServerAddArgs {
    pub name: String,
    /// libpq connection string: `postgres://user@host:5432/db` or `host=… port=… dbname=…`.
    #[arg(long)]
    pub dsn: String,
    /// Register without connecting first.
    #[arg(long)]
    pub skip_check: bool,
}

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Register a storage target after writing, reading, listing and deleting a probe object.
    /// Credentials come from the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
    /// GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT/AZURE_STORAGE_KEY) or, with
    /// --secret-from-env, are copied from it into the OS keyring; never into the repository.
    Add(StorageAddArgs),
    /// List storage targets (never their credentials).
    List,
    /// Forget a storage target and its keyring entry (its objects stay).
    Remove { name: String },
    /// Write, read back, list and delete a probe object; names the step that failed.
    Check { name: String },
}

#[derive(Debug, Args)]
pub struct StorageAddArgs {
    pub name: String,
    /// `file:///abs/folder`, `s3://bucket/prefix`, `gcs://bucket/prefix` or
    /// `azblob://container/prefix`.
    #[arg(long)]
    pub url: String,
    /// Service address for S3-compatible stores, emulators, other clouds (http(s)://host:port).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3 region (required on AWS; `us-east-1` when --endpoint is given).
    #[arg(long)]
    pub region: Option<String>,
    /// Azure storage account (else AZURE_STORAGE_ACCOUNT).
    #[arg(long)]
    pub account: Option<String>,
    /// Send unsigned requests (public buckets, emulators).
    #[arg(long)]
    pub anonymous: bool,
    /// Copy this kind's credentials from the environment into the OS keyring (entry
    /// `storage:<id>`), so later commands need no environment variables.
    #[arg(long)]
    pub secret_from_env: bool,
    /// Register without the probe.
    #[arg(long)]
    pub skip_check: bool,
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Kind, location, server version and applied migrations.
    Status,
    /// Stop the embedded repository cluster.
    Stop,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once.
    Create { name: String },
    /// List tokens (names only).
    List,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8432", value_name = "ADDR")]
    pub listen: String,
    /// Time between two collections of each registered server (e.g. 15s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub interval: String,
    /// Snapshot retention: older snapshots are deleted once an hour (e.g. 30d).
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub keep: String,
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Read a server's statistics views once and store a snapshot; prints its snap_id
    /// (`--json`: every value).
    Snapshot {
        #[arg(long, value_name = "NAME")]
        server: String,
    },
    /// Latest values, rates and advice over a window, and the collection status.
    Show {
        #[arg(long, value_name = "NAME")]
        server: String,
        /// Window for rates and advice (e.g. 15m, 1h, 2d).
        #[arg(long, value_name = "DURATION", default_value = "1h")]
        since: String,
    },
    /// Take snapshots every interval until interrupted (Ctrl-C). A failing server is reported
    /// and retried at the next interval; other servers go on.
    Collect(CollectArgs),
    /// Collect fresh values once and print them in the Prometheus text format (one scrape);
    /// the snapshot is stored like any other. Exits 1 when a server could not be collected;
    /// its `pganalytics_up 0` and the reason are printed all the same.
    Export {
        /// Server to export; repeat for several.
        #[arg(long, value_name = "NAME", required = true)]
        server: Vec<String>,
        #[arg(long, value_enum, default_value_t = ExportFormat::Prometheus)]
        format: ExportFormat,
    },
    /// Delete snapshots older than a retention period (with all their rows).
    Prune {
        /// Keep this much history (e.g. 30d).
        #[arg(long, value_name = "DURATION")]
        keep: String,
        /// Only this server (default: all).
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// The Prometheus text exposition format 0.0.4.
    Prometheus,
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Server to collect; repeat for several (default: every registered server).
    #[arg(long, value_name = "NAME")]
    pub server: Vec<String>,
    /// Time between snapshots (e.g. 15s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub interval: String,
    /// Prune snapshots older than this, once an hour while collecting (e.g. 30d).
    #[arg(long, value_name = "DURATION")]
    pub keep: Option<String>,
    /// Stop after this many rounds (for scripts and tests).
    #[arg(long, hide = true)]
    pub count: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Record an event that happened outside pgAnalytics (who did what to which resource);
    /// prints the new event's id once it is durable.
    Log(AuditLogArgs),
    /// Events, newest first, filtered and paged.
    Logs(AuditLogsArgs),
    /// One event with every field: before/after values, address, hashes.
    Show {
        /// The event's id (its position in the chain).
        id: i64,
    },
    /// Everything one actor did (or that concerned them), oldest first.
    Activity {
        /// Actor id (UUID) or name, as `audit logs` shows it.
        actor: String,
        #[command(flatten)]
        window: TimeWindow,
    },
    /// Check the log against the signed external checkpoints. Exits 3 when it is not intact,
    /// naming the first bad event and what is wrong with it.
    Verify(AuditVerifyArgs),
    /// Inclusion proof of one event in the newest signed checkpoint that covers it.
    Prove {
        /// The event's id.
        id: i64,
    },
    /// Create the checkpoint signing key (in the OS keyring, or a file) and sign a first
    /// checkpoint of what is already logged.
    Keygen(AuditKeygenArgs),
    /// Write the public key that verifies the checkpoints (PEM) to a file.
    ExportPublicKey {
        /// Where to write the PEM public key.
        #[arg(long, value_name = "FILE")]
        out: String,
    },
    /// Sign a checkpoint of the log now (normally every 10 s while events arrive, and at exit).
    Checkpoint,
    /// Events, signing key, newest checkpoint, retention policy and the repository role.
    Status,
    /// GDPR erasure: remove one actor's personal data (name, address, user agent, personal
    /// details) from every event; the log still verifies.
    EraseSubject {
        /// Actor id (UUID) or name.
        actor: String,
    },
    /// The retention policy: how long events are kept and whether old ones may be deleted.
    #[command(subcommand)]
    Retention(AuditRetentionCommand),
    /// Log events from concurrent writers and print `durable ID` as each is acknowledged
    /// (for developers: the kill -9 test).
    #[command(hide = true)]
    Load {
        /// Concurrent writers.
        #[arg(long, default_value_t = 8)]
        writers: usize,
        /// Events in total.
        #[arg(long, default_value_t = 10_000)]
        events: u64,
    },
}

#[derive(Debug, Args)]
pub struct AuditLogArgs {
    /// Who acted: a person's login or a system's name.
    #[arg(long)]
    pub actor: String,
    /// Verb, e.g. `approve`, `deploy`, `update`.
    #[arg(long)]
    pub action: String,
    /// Kind of thing acted upon, e.g. `change_request`, `database`.
    #[arg(long, value_name = "TYPE")]
    pub resource_type: String,
    /// Which one, e.g. `CHG-1234`.
    #[arg(long, value_name = "ID")]
    pub resource_id: Option<String>,
    /// Dotted event name (default `external.<action>`).
    #[arg(long, value_name = "NAME")]
    pub event_type: Option<String>,
    #[arg(long, value_enum, default_value_t = Outcome::Success)]
    pub outcome: Outcome,
    /// A JSON object of non-personal details, e.g. '{"ticket": "CHG-1234"}'.
    #[arg(long, value_name = "JSON")]
    pub details: Option<String>,
    /// Value before the change (any JSON).
    #[arg(long, value_name = "JSON")]
    pub old: Option<String>,
    /// Value after the change (any JSON).
    #[arg(long, value_name = "JSON")]
    pub new: Option<String>,
    /// Personal data about the actor, a JSON object (erased with `audit erase-subject`).
    #[arg(long, value_name = "JSON")]
    pub personal: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Outcome {
    Success,
    Failure,
    /// Refused for lack of authority.
    Denied,
}

#[derive(Debug, Args)]
pub struct AuditLogsArgs {
    /// Actor id (UUID) or name.
    #[arg(long)]
    pub actor: Option<String>,
    /// Verb, e.g. `read`, `create`, `login`.
    #[arg(long)]
    pub action: Option<String>,
    #[arg(long, value_name = "TYPE")]
    pub resource_type: Option<String>,
    /// Dotted event name, e.g. `auth.token_rejected`.
    #[arg(long, value_name = "NAME")]
    pub event_type: Option<String>,
    #[command(flatten)]
    pub window: TimeWindow,
    /// At most this many events (1 to 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// Skip this many of the newest matching events (paging).
    #[arg(long, default_value_t = 0)]
    pub offset: i64,
}

#[derive(Debug, Args)]
pub struct TimeWindow {
    /// From this time: RFC 3339 (`2026-11-29T08:00:00Z`) or a duration back from now (`2h`, `7d`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Before this time: RFC 3339 or a duration back from now.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// First event to check (default: the oldest).
    #[arg(long, value_name = "ID")]
    pub from: Option<i64>,
    /// Last event to check (default: the newest).
    #[arg(long, value_name = "ID")]
    pub to: Option<i64>,
    /// PEM public key to verify the checkpoints with (default: the configured one).
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<String>,
    /// Folder of the external checkpoints (default: the configured one).
    #[arg(long, value_name = "DIR")]
    pub checkpoints: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditKeygenArgs {
    /// Signature algorithm of the checkpoints.
    #[arg(long, default_value = "rsa-2048", value_parser = ["rsa-2048", "ed25519"])]
    pub algorithm: String,
    /// Keep the private key in this file (mode 0600) instead of the OS keyring.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<String>,
    /// Folder for the external checkpoints, outside the database (default
    /// `<data-dir>/audit-checkpoints`).
    #[arg(long, value_name = "DIR")]
    pub checkpoints: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuditRetentionCommand {
    /// Set the policy (a new policy replaces the previous one; both stay in the history).
    Set {
        /// Keep events this many days.
        #[arg(long)]
        days: i32,
        /// Archive events older than this many days.
        #[arg(long, value_name = "DAYS")]
        archive_after_days: Option<i32>,
        /// Allow `retention apply` to delete events older than --days (after sealing them).
        #[arg(long)]
        allow_deletion: bool,
        /// The compliance framework the policy follows.
        #[arg(long, value_parser = ["GDPR", "HIPAA", "SOX", "PCI-DSS"])]
        framework: Option<String>,
    },
    /// The policy in force.
    Show,
    /// Seal the events older than the policy keeps with a signed checkpoint, then delete them.
    Apply {
        /// Only say which events would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Create the key that wraps each encrypted backup's data key (in the OS keyring, or a
    /// file). Prints where it is and its fingerprint, never the key.
    Keygen {
        /// Keep the key in this file (created 0600) instead of the OS keyring.
        #[arg(long, value_name = "FILE")]
        key_file: Option<String>,
        /// Replace an existing key (backups made with the old one then need the old key).
        #[arg(long)]
        replace: bool,
    },
    /// Check the backup key here: where it is, its fingerprint, and whether it opens every
    /// encrypted backup on record. Exits 3 when some cannot be opened with it.
    Key,
    /// Take a full physical backup of a server into a storage target; prints the backup's id
    /// once it is complete (`--json`: the backup). Needs the signing key (`audit keygen`).
    Run(BackupRunArgs),
    /// Backups, newest first.
    List {
        /// Only this server's backups.
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
        /// Include pruned (deleted) backups.
        #[arg(long)]
        all: bool,
    },
    /// One backup: sizes, LSNs, archives, keys, restores.
    Show {
        /// The backup's id (as `backup list` shows it).
        id: uuid::Uuid,
    },
    /// Check every stored object against the signed catalogue and the server's manifest.
    /// Exits 3 when the backup is not intact, naming the first damaged object.
    Verify {
        /// The backup's id.
        id: uuid::Uuid,
        /// Also restore into a temporary cluster, start it, read its catalogs and remove it
        /// (records the measured restore time).
        #[arg(long)]
        restore_test: bool,
    },
    /// Restore a backup into an empty (or absent) folder, optionally starting the server.
    Restore {
        /// The backup's id.
        id: uuid::Uuid,
        /// The folder that becomes the restored data directory (must be empty or absent).
        #[arg(long, value_name = "DIR")]
        target_dir: String,
        /// Start the restored server afterwards (with the matching PostgreSQL binaries).
        #[arg(long)]
        start: bool,
        /// Port for --start (default: a free one).
        #[arg(long, requires = "start")]
        port: Option<u16>,
    },
    /// Record the backups a storage target holds, from their signed catalogues: after the
    /// repository was lost, or to restore them on another machine. Exits 3 when a catalogue
    /// was refused (bad signature, changed); backups already on record are left alone.
    Import {
        /// Registered storage target to read (`storage add` it first).
        #[arg(long, value_name = "NAME")]
        storage: String,
        /// Registered server to attach the backups to.
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
        /// Days `backup prune` keeps them (default: the retention each backup was taken
        /// with, 30 for catalogues that name none).
        #[arg(long, value_name = "DAYS")]
        retention_days: Option<i32>,
        /// Public key (PEM) that must have signed the catalogues (default: this
        /// installation's).
        #[arg(long, value_name = "FILE")]
        public_key: Option<String>,
    },
    /// Remove a server's expired backups and their objects (never its last good one).
    Prune {
        #[arg(long, value_name = "NAME")]
        server: String,
        /// Keep the newest N completed full backups.
        #[arg(long, value_name = "N")]
        keep_full: Option<u32>,
        /// Keep backups younger than D days (default: each backup's own retention).
        #[arg(long, value_name = "D")]
        keep_days: Option<u32>,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct BackupRunArgs {
    /// Registered server to back up (its role needs REPLICATION).
    #[arg(long, value_name = "NAME")]
    pub server: String,
    /// Registered storage target to write to.
    #[arg(long, value_name = "NAME")]
    pub storage: String,
    /// `none`, `zstd` or `zstd:LEVEL` (1–19); default `zstd:1`.
    #[arg(long, value_name = "METHOD")]
    pub compress: Option<String>,
    /// Encrypt with AES-256-GCM under a fresh data key wrapped by the backup key
    /// (`backup keygen`).
    #[arg(long)]
    pub encrypt: bool,
    /// Days `backup prune` keeps this backup (default 30).
    #[arg(long, value_name = "N")]
    pub retention_days: Option<i32>,
    /// Spread the start checkpoint over checkpoint_timeout instead of forcing it at once.
    #[arg(long)]
    pub spread_checkpoint: bool,
    /// Where zstd runs: `auto` (the server when it can: PostgreSQL 15+ built with zstd, else
    /// here), `server` (refuse when it cannot) or `client` (leave the server's CPUs alone).
    #[arg(long, value_name = "WHERE", value_parser = ["auto", "server", "client"])]
    pub compress_on: Option<String>,
}
