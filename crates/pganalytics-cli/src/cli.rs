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
    /// The repository that holds pgAnalytics' state.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// API tokens for the daemon.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Engine metrics: snapshots of the statistics views, rates and advice.
    #[command(subcommand)]
    Metrics(MetricsCommand),
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
