//! `pganalytics bench backup` (hidden): the backup figures of docs/BENCHMARKS.md.
//!
//! One PostgreSQL server (Debian's 15 by default: the same binaries serve every tool, and
//! `pg_basebackup` and `pgbench` come from the same folder) started here, and on it, in the
//! same run, two datasets made here one after the other:
//!
//! - **pgbench**: `pgbench -i -s SCALE` (100 ≈ 1.5 GB): compresses to a few percent;
//! - **random**: random bytes from pgcrypto's `gen_random_bytes` in a `STORAGE EXTERNAL`
//!   column (≈ 1 GB): what TOAST and zstd cannot shrink.
//!
//! For each dataset, full backups of the whole cluster to a local folder, each timed end to
//! end as a command (wall seconds), with the peak memory of the tool's process tree:
//!
//! - **pganalytics**: `pganalytics backup run --compress zstd:1 --encrypt` (the server
//!   compresses when it can), the same with `--compress-on client`, and `--compress none`,
//!   run as a subprocess (this very binary, its own data folder, the repository in a
//!   database of the same server);
//! - **pgBackRest** (`process-max=2`, `start-fast=y`, `archive-check=n`: no WAL archive):
//!   `compress-type=zst compress-level=1 repo1-cipher-type=aes-256-cbc`, and
//!   `compress-type=none`, each into a new repository;
//! - **pg_basebackup** `-Ft -c fast` (WAL streamed): plain, and `--compress=server-zstd:1`;
//!
//! then restores of the last backup of each: `pganalytics backup restore`, `pgbackrest
//! restore`, and `tar -xf` of pg_basebackup's archives. Every measurement runs `--runs`
//! times, in the same order every time (runs interleaved: run 1 of every tool, then run 2 …);
//! the report gives medians. The data files are read once beforehand so that every tool
//! reads them from the page cache; nothing is dropped from it.
//!
//! Memory: the tool's process and all its descendants are sampled every 20 ms (`VmRSS`
//! summed; a single process's own high-water mark `VmHWM` counts too, so a short peak between
//! samples is not missed). On the server side, shared buffers are shared by every process, so
//! what is reported is the growth of the server's private memory (Σ `RssAnon` of the
//! postmaster's processes, peak minus the value just before the command started): the
//! walsender that streams a base backup, and its compression when the server compresses.

use super::Workdir;
use crate::cli::BenchBackupArgs;
use pganalytics_core::cluster::{binaries, Cluster, ClusterOptions, PgBinaries};
use pganalytics_core::{Error, ErrorCode};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SAMPLE_EVERY: Duration = Duration::from_millis(20);
const GB: f64 = 1e9;
const MB: f64 = 1e6;

pub async fn backup(args: BenchBackupArgs, json: bool) -> Result<(), Error> {
    if args.runs == 0 {
        return Err(Error::invalid_input("use at least 1 run"));
    }
    let ours = args.tools.iter().any(|t| t == "pganalytics");
    let pgbackrest = args.tools.iter().any(|t| t == "pgbackrest");
    if pgbackrest {
        ensure_pgbackrest(&args.pgbackrest).await?;
    }
    let bins = binaries::find(Some(args.major)).map_err(|e| {
        e.with_hint(format!(
            "PostgreSQL {} with its client tools: `apt-get install postgresql-{} postgresql-contrib`",
            args.major, args.major
        ))
    })?;
    for tool in ["pg_basebackup", "pgbench"] {
        if !bins.tool(tool).is_file() {
            return Err(Error::new(
                ErrorCode::BinariesMissing,
                format!(
                    "{} has no {tool}: the benchmark runs every tool with the same binaries",
                    bins.bindir.display()
                ),
            )
            .with_hint("use the system's packages (`--major 15` on Debian 12)"));
        }
    }
    let work = Workdir::new()?;
    check_free_space(&args, &work.0)?;
    let options = ClusterOptions {
        listen_tcp: true,
        stop_on_drop: true,
        ..Default::default()
    }
    // Replication is on by default (wal_level replica, 10 WAL senders). No archive: every
    // tool forces its own checkpoint and pgBackRest is told not to wait for WAL.
    .setting("max_wal_size", "8GB")
    .setting("checkpoint_timeout", "1h")
    // The datasets are vacuumed once after loading; nothing must rewrite pages mid-run.
    .setting("autovacuum", "off");
    let mut cluster = Cluster::init(&bins, &work.0.join("cluster"), &options).await?;
    cluster.start().await?;
    let result = run(&args, json, &bins, &cluster, &work, ours, pgbackrest).await;
    if let Err(e) = cluster.stop().await {
        eprintln!("warning: stopping the benchmark's server failed: {e}");
    }
    result
}

/// pgBackRest is the peer: installed here when missing (Debian's package), saying so.
async fn ensure_pgbackrest(path: &Path) -> Result<(), Error> {
    if path.is_file() {
        return Ok(());
    }
    if path != Path::new("/usr/bin/pgbackrest") || !nix::unistd::geteuid().is_root() {
        return Err(Error::new(
            ErrorCode::BinariesMissing,
            format!("{} does not exist", path.display()),
        )
        .with_hint(
            "apt-get install pgbackrest, give --pgbackrest PATH, or leave it out of --tools",
        ));
    }
    eprintln!("bench backup: pgBackRest is missing; installing it: apt-get install -y pgbackrest");
    let status = tokio::process::Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "pgbackrest",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .await
        .map_err(|e| Error::internal(format!("run apt-get: {e}")))?;
    if !status.success() || !path.is_file() {
        return Err(Error::new(
            ErrorCode::BinariesMissing,
            format!("apt-get install pgbackrest failed ({status})"),
        )
        .with_hint("run `apt-get update` first, or install it yourself"));
    }
    Ok(())
}

/// The data, the kept last backup of each kind (two of them uncompressed, three for random
/// data), the one being taken and a restore: about nine times the largest dataset.
fn check_free_space(args: &BenchBackupArgs, dir: &Path) -> Result<(), Error> {
    let largest = args
        .datasets
        .iter()
        .map(|d| match d.as_str() {
            "pgbench" => args.scale as f64 * 0.0155 * GB,
            _ => args.random_gb * 1.2 * GB,
        })
        .fold(0.0, f64::max);
    let needed = largest * 9.0 + 2.0 * GB;
    let stat = nix::sys::statvfs::statvfs(dir)
        .map_err(|e| Error::internal(format!("statvfs {}: {e}", dir.display())))?;
    let free = stat.blocks_available() as f64 * stat.fragment_size() as f64;
    if free < needed {
        return Err(Error::new(
            ErrorCode::DataDirUnusable,
            format!(
                "{} has {:.1} GB free; this run needs about {:.1} GB (datasets, backups kept for the restores, one restore)",
                dir.display(),
                free / GB,
                needed / GB
            ),
        )
        .with_hint("free some space, lower --scale or --random-gb, or point TMPDIR at a larger disk"));
    }
    Ok(())
}

fn internal(what: &str) -> impl Fn(sqlx::Error) -> Error + '_ {
    move |e| Error::internal(format!("{what}: {e}"))
}

/// One kind of backup, and the restore of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    OursZstdEncrypted,
    OursClientZstdEncrypted,
    OursPlain,
    PgbackrestZstEncrypted,
    PgbackrestPlain,
    BasebackupTar,
    BasebackupServerZstd,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::OursZstdEncrypted,
        Kind::OursClientZstdEncrypted,
        Kind::OursPlain,
        Kind::PgbackrestZstEncrypted,
        Kind::PgbackrestPlain,
        Kind::BasebackupTar,
        Kind::BasebackupServerZstd,
    ];

    fn is_ours(self) -> bool {
        matches!(
            self,
            Kind::OursZstdEncrypted | Kind::OursClientZstdEncrypted | Kind::OursPlain
        )
    }

    fn tool(self) -> &'static str {
        match self {
            Kind::OursZstdEncrypted | Kind::OursClientZstdEncrypted | Kind::OursPlain => {
                "pganalytics"
            }
            Kind::PgbackrestZstEncrypted | Kind::PgbackrestPlain => "pgbackrest",
            Kind::BasebackupTar | Kind::BasebackupServerZstd => "pg_basebackup",
        }
    }

    fn backup_label(self) -> &'static str {
        match self {
            Kind::OursZstdEncrypted => "`--compress zstd:1 --encrypt`",
            Kind::OursClientZstdEncrypted => "`--compress zstd:1 --compress-on client --encrypt`",
            Kind::OursPlain => "`--compress none`",
            Kind::PgbackrestZstEncrypted => "zst:1 + aes-256-cbc, process-max 2",
            Kind::PgbackrestPlain => "compress-type none, process-max 2",
            Kind::BasebackupTar => "`-Ft` (plain tar)",
            Kind::BasebackupServerZstd => "`-Ft --compress=server-zstd:1`",
        }
    }

    fn restore_tool(self) -> &'static str {
        match self {
            Kind::OursZstdEncrypted | Kind::OursClientZstdEncrypted | Kind::OursPlain => {
                "pganalytics"
            }
            Kind::PgbackrestZstEncrypted | Kind::PgbackrestPlain => "pgbackrest",
            Kind::BasebackupTar | Kind::BasebackupServerZstd => "tar (pg_basebackup's output)",
        }
    }

    fn restore_label(self) -> &'static str {
        match self {
            Kind::OursZstdEncrypted => "`backup restore` of the zstd:1 + encrypted backup",
            Kind::OursClientZstdEncrypted => {
                "`backup restore` of the client-compressed zstd:1 + encrypted backup"
            }
            Kind::OursPlain => "`backup restore` of the uncompressed backup",
            Kind::PgbackrestZstEncrypted => "`restore` of the zst + aes backup, process-max 2",
            Kind::PgbackrestPlain => "`restore` of the uncompressed backup, process-max 2",
            Kind::BasebackupTar => "`tar -xf` base.tar + pg_wal.tar",
            Kind::BasebackupServerZstd => "`tar --zstd -xf` base.tar.zst + pg_wal.tar",
        }
    }
}

/// One timed command.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    seconds: f64,
    /// Peak of the tool's process tree (Σ VmRSS, or one process's VmHWM if higher).
    peak_rss_bytes: u64,
    /// Peak growth of the server's private memory (Σ RssAnon) during the command.
    server_private_bytes: u64,
    /// Bytes written (backups only).
    stored_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Row {
    operation: &'static str,
    tool: &'static str,
    settings: &'static str,
    median_seconds: f64,
    seconds_per_gb: f64,
    mb_per_second: f64,
    median_peak_rss_mb: f64,
    median_server_private_mb: f64,
    stored_mb: Option<f64>,
    runs: Vec<Sample>,
}

#[derive(Debug, Serialize)]
struct DatasetReport {
    name: String,
    description: String,
    /// `pg_database_size` of the dataset's database.
    database_bytes: i64,
    /// Σ `pg_database_size` over every database: what each tool backs up, WAL aside.
    cluster_bytes: i64,
    load_average_before: String,
    rows: Vec<Row>,
}

#[derive(Debug, Serialize)]
struct Report {
    command: String,
    server_version: String,
    pganalytics_version: &'static str,
    pgbackrest_version: Option<String>,
    pg_basebackup_version: String,
    cpus: usize,
    cpu_model: String,
    memory_gb: f64,
    runs: usize,
    load_average_start: String,
    load_average_end: String,
    datasets: Vec<DatasetReport>,
}

/// What the run needs to reach the server and the tools.
struct Ctx<'a> {
    args: &'a BenchBackupArgs,
    bins: &'a PgBinaries,
    cluster: &'a Cluster,
    work: PathBuf,
    postmaster: i32,
    exe: PathBuf,
    repository: String,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    args: &BenchBackupArgs,
    json: bool,
    bins: &PgBinaries,
    cluster: &Cluster,
    work: &Workdir,
    ours: bool,
    pgbackrest: bool,
) -> Result<(), Error> {
    let control = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(cluster.connect_options("postgres"))
        .await
        .map_err(internal("connect to the benchmark server"))?;
    let server_version: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(&control)
        .await
        .map_err(internal("read the version"))?;
    let postmaster = postmaster_pid(&cluster.pgdata())?;
    let ctx = Ctx {
        args,
        bins,
        cluster,
        work: work.0.clone(),
        postmaster,
        exe: std::env::current_exe()
            .map_err(|e| Error::internal(format!("find the pganalytics binary: {e}")))?,
        repository: format!(
            "postgres://postgres@127.0.0.1:{}/pganalytics_repo",
            cluster.port()
        ),
    };
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| args.tools.iter().any(|t| t == k.tool()))
        .collect();
    if ours {
        setup_ours(&ctx, &control).await?;
    }
    if pgbackrest {
        setup_pgbackrest(&ctx)?;
    }
    let pgbackrest_version = if pgbackrest {
        Some(version_of(&args.pgbackrest, "version").await?)
    } else {
        None
    };
    let pg_basebackup_version = version_of(&bins.tool("pg_basebackup"), "--version").await?;
    let load_average_start = load_average();
    eprintln!(
        "bench backup: {server_version}; {}; {pg_basebackup_version}; load {load_average_start}",
        pgbackrest_version.as_deref().unwrap_or("no pgBackRest")
    );

    let mut datasets = Vec::new();
    for name in &args.datasets {
        let (database, description) = create_dataset(&ctx, &control, name).await?;
        let database_bytes: i64 = sqlx::query_scalar("SELECT pg_database_size($1)")
            .bind(&database)
            .fetch_one(&control)
            .await
            .map_err(internal("read the dataset's size"))?;
        let cluster_bytes: i64 = sqlx::query_scalar(
            "SELECT sum(pg_database_size(oid))::bigint FROM pg_database WHERE datallowconn",
        )
        .fetch_one(&control)
        .await
        .map_err(internal("read the cluster's size"))?;
        eprintln!(
            "bench backup: {description}: database {:.2} GB, cluster {:.2} GB; reading it once into the page cache",
            database_bytes as f64 / GB,
            cluster_bytes as f64 / GB
        );
        let pgdata = cluster.pgdata();
        tokio::task::spawn_blocking(move || read_all(&pgdata))
            .await
            .map_err(|e| Error::internal(format!("warm-up task: {e}")))??;
        let load_average_before = load_average();
        let dir = ctx.work.join(format!("runs-{name}"));
        make_dir(&dir, false, cluster)?;

        let mut backups: Vec<Vec<Sample>> = vec![Vec::new(); kinds.len()];
        let mut kept: Vec<Option<Taken>> = vec![None; kinds.len()];
        for run in 1..=args.runs {
            for (i, kind) in kinds.iter().enumerate() {
                eprintln!(
                    "bench backup: {name}: backup run {run}/{}: {} {}",
                    args.runs,
                    kind.tool(),
                    kind.backup_label()
                );
                settle().await?;
                let (sample, taken) = take_backup(&ctx, *kind, &dir, name, run).await?;
                eprintln!(
                    "    {:.2} s, peak {:.0} MB, server +{:.0} MB, stored {:.0} MB",
                    sample.seconds,
                    sample.peak_rss_bytes as f64 / MB,
                    sample.server_private_bytes as f64 / MB,
                    sample.stored_bytes.unwrap_or(0) as f64 / MB
                );
                backups[i].push(sample);
                // Only the last backup of each kind is restored; the others go at once.
                if let Some(previous) = kept[i].replace(taken) {
                    previous.remove();
                }
            }
        }
        let mut restores: Vec<Vec<Sample>> = vec![Vec::new(); kinds.len()];
        if !args.no_restore {
            for run in 1..=args.runs {
                for (i, kind) in kinds.iter().enumerate() {
                    let Some(taken) = &kept[i] else { continue };
                    eprintln!(
                        "bench backup: {name}: restore run {run}/{}: {} {}",
                        args.runs,
                        kind.restore_tool(),
                        kind.restore_label()
                    );
                    let target = dir.join(format!("restore-{i}-{run}"));
                    settle().await?;
                    let sample = restore(&ctx, *kind, taken, &target).await?;
                    eprintln!(
                        "    {:.2} s, peak {:.0} MB",
                        sample.seconds,
                        sample.peak_rss_bytes as f64 / MB
                    );
                    remove_dir(&target);
                    restores[i].push(sample);
                }
            }
        }
        for taken in kept.into_iter().flatten() {
            taken.remove();
        }
        remove_dir(&dir);

        let mut rows = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            rows.push(row(
                "backup",
                kind.tool(),
                kind.backup_label(),
                std::mem::take(&mut backups[i]),
                cluster_bytes,
            ));
        }
        for (i, kind) in kinds.iter().enumerate() {
            if !restores[i].is_empty() {
                rows.push(row(
                    "restore",
                    kind.restore_tool(),
                    kind.restore_label(),
                    std::mem::take(&mut restores[i]),
                    cluster_bytes,
                ));
            }
        }
        datasets.push(DatasetReport {
            name: name.clone(),
            description,
            database_bytes,
            cluster_bytes,
            load_average_before,
            rows,
        });
        drop_dataset(&control, &database).await?;
    }
    control.close().await;

    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        server_version,
        pganalytics_version: env!("CARGO_PKG_VERSION"),
        pgbackrest_version,
        pg_basebackup_version,
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model: cpu_model(),
        memory_gb: memory_total() as f64 / GB,
        runs: args.runs,
        load_average_start,
        load_average_end: load_average(),
        datasets,
    };
    if json {
        // The table too, on stderr: one run gives both.
        eprint!("{}", markdown(&report));
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::internal(format!("serialize the report: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", markdown(&report));
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn row(
    operation: &'static str,
    tool: &'static str,
    settings: &'static str,
    runs: Vec<Sample>,
    cluster_bytes: i64,
) -> Row {
    let seconds = median(&mut runs.iter().map(|s| s.seconds).collect::<Vec<_>>());
    let rss = median(
        &mut runs
            .iter()
            .map(|s| s.peak_rss_bytes as f64)
            .collect::<Vec<_>>(),
    );
    let server = median(
        &mut runs
            .iter()
            .map(|s| s.server_private_bytes as f64)
            .collect::<Vec<_>>(),
    );
    let stored = runs.last().and_then(|s| s.stored_bytes);
    let gb = cluster_bytes as f64 / GB;
    Row {
        operation,
        tool,
        settings,
        median_seconds: seconds,
        seconds_per_gb: if gb > 0.0 { seconds / gb } else { 0.0 },
        mb_per_second: if seconds > 0.0 {
            cluster_bytes as f64 / MB / seconds
        } else {
            0.0
        },
        median_peak_rss_mb: rss / MB,
        median_server_private_mb: server / MB,
        stored_mb: stored.map(|b| b as f64 / MB),
        runs,
    }
}

fn markdown(report: &Report) -> String {
    let mut out = format!(
        "# pganalytics bench backup\n\n{}\n\npg_basebackup: {}; pgBackRest: {}; pganalytics {}\n\n{} CPUs ({}), {:.0} GB RAM; load average at start {}, at end {}; median of {} runs\n",
        report.server_version,
        report.pg_basebackup_version,
        report.pgbackrest_version.as_deref().unwrap_or("not measured"),
        report.pganalytics_version,
        report.cpus,
        report.cpu_model,
        report.memory_gb,
        report.load_average_start,
        report.load_average_end,
        report.runs,
    );
    for d in &report.datasets {
        out.push_str(&format!(
            "\n## {}: {:.2} GB (all databases {:.2} GB; s/GB and MB/s per the latter)\n\nLoad average before: {}\n\n",
            d.description,
            d.database_bytes as f64 / GB,
            d.cluster_bytes as f64 / GB,
            d.load_average_before
        ));
        out.push_str("| operation | tool | settings | seconds | runs (s) | s/GB | MB/s | peak RSS MB | server +MB | stored MB |\n");
        out.push_str("|---|---|---|---:|---|---:|---:|---:|---:|---:|\n");
        for r in &d.rows {
            let runs: Vec<String> = r.runs.iter().map(|s| format!("{:.2}", s.seconds)).collect();
            out.push_str(&format!(
                "| {} | {} | {} | {:.2} | {} | {:.2} | {:.0} | {:.0} | {:.0} | {} |\n",
                r.operation,
                r.tool,
                r.settings,
                r.median_seconds,
                runs.join(" / "),
                r.seconds_per_gb,
                r.mb_per_second,
                r.median_peak_rss_mb,
                r.median_server_private_mb,
                r.stored_mb
                    .map_or_else(|| "—".to_string(), |m| format!("{m:.0}")),
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Set-up

/// The repository in a database of the benchmarked server (a few MB, in every tool's
/// backup alike), the installation's signing key and the backup key in files, the server.
async fn setup_ours(ctx: &Ctx<'_>, control: &sqlx::PgPool) -> Result<(), Error> {
    sqlx::query("CREATE DATABASE pganalytics_repo")
        .execute(control)
        .await
        .map_err(internal("create the repository database"))?;
    let keys = ctx.work.join("ours");
    make_dir(&keys, false, ctx.cluster)?;
    let signing = keys.join("signing.pem").display().to_string();
    let backup_key = keys.join("backup.key").display().to_string();
    let dsn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        ctx.cluster.port()
    );
    for args in [
        vec!["audit", "keygen", "--key-file", signing.as_str()],
        vec!["backup", "keygen", "--key-file", backup_key.as_str()],
        vec!["server", "add", "bench", "--dsn", dsn.as_str()],
    ] {
        quiet(
            ours_command(ctx, &args),
            &format!("pganalytics {}", args.join(" ")),
        )
        .await?;
    }
    Ok(())
}

fn ours_command(ctx: &Ctx<'_>, args: &[&str]) -> Command {
    let mut cmd = Command::new(&ctx.exe);
    cmd.arg("--data-dir")
        .arg(ctx.work.join("ours/data"))
        .arg("--repository")
        .arg(&ctx.repository)
        .args(args);
    cmd
}

fn pgbackrest_config(ctx: &Ctx<'_>, encrypted: bool) -> PathBuf {
    ctx.work.join(if encrypted {
        "pgbackrest/encrypted.conf"
    } else {
        "pgbackrest/plain.conf"
    })
}

/// Two configuration files (the cipher is a repository's property): every run then gets a
/// new repository through `--repo1-path`.
fn setup_pgbackrest(ctx: &Ctx<'_>) -> Result<(), Error> {
    let dir = ctx.work.join("pgbackrest");
    make_dir(&dir, true, ctx.cluster)?;
    for sub in ["lock", "spool", "log"] {
        make_dir(&dir.join(sub), true, ctx.cluster)?;
    }
    let common = format!(
        "[global]\nprocess-max={}\nstart-fast=y\narchive-check=n\nrepo1-retention-full=99\nlog-level-console=warn\nlog-level-stderr=warn\nlog-level-file=off\nlock-path={}\nspool-path={}\nlog-path={}\n",
        ctx.args.process_max,
        dir.join("lock").display(),
        dir.join("spool").display(),
        dir.join("log").display(),
    );
    let stanza = format!(
        "\n[bench]\npg1-path={}\npg1-port={}\npg1-socket-path={}\npg1-user=postgres\n",
        ctx.cluster.pgdata().display(),
        ctx.cluster.port(),
        ctx.cluster.socket_dir().display()
    );
    let cipher_pass =
        uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string();
    for encrypted in [true, false] {
        let settings = if encrypted {
            format!("compress-type=zst\ncompress-level=1\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass={cipher_pass}\n")
        } else {
            "compress-type=none\n".to_string()
        };
        let path = pgbackrest_config(ctx, encrypted);
        write_private(&path, &format!("{common}{settings}{stanza}"), ctx.cluster)?;
    }
    Ok(())
}

/// Create a dataset's database and fill it; returns its name and a description.
async fn create_dataset(
    ctx: &Ctx<'_>,
    control: &sqlx::PgPool,
    name: &str,
) -> Result<(String, String), Error> {
    let database = format!("bench_{name}");
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(control)
        .await
        .map_err(internal("create the dataset's database"))?;
    let started = Instant::now();
    let description = match name {
        "pgbench" => {
            eprintln!(
                "bench backup: creating the pgbench dataset (pgbench -i -s {})",
                ctx.args.scale
            );
            let mut cmd = Command::new(ctx.bins.tool("pgbench"));
            cmd.args(["-i", "-q", "-s", &ctx.args.scale.to_string()])
                .args(["-h", "127.0.0.1", "-p", &ctx.cluster.port().to_string()])
                .args(["-U", "postgres", &database]);
            quiet(cmd, "pgbench -i").await?;
            format!("pgbench -i -s {}", ctx.args.scale)
        }
        _ => {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(ctx.cluster.connect_options(&database))
                .await
                .map_err(internal("connect to the dataset's database"))?;
            for sql in [
                "CREATE EXTENSION pgcrypto",
                "CREATE TABLE noise (id bigint, payload bytea)",
                // Never compressed by TOAST; 1 KiB values stay in line anyway.
                "ALTER TABLE noise ALTER payload SET STORAGE EXTERNAL",
            ] {
                sqlx::query(sql)
                    .execute(&pool)
                    .await
                    .map_err(|e| Error::internal(format!("{sql}: {e}")))?;
            }
            // Seven 1 KiB rows fill an 8 KiB page.
            let rows = (ctx.args.random_gb * GB / 8192.0 * 7.0) as i64;
            eprintln!(
                "bench backup: creating the random dataset ({rows} rows of 1 KiB from gen_random_bytes)"
            );
            let batch = 100_000i64;
            let mut from = 1i64;
            while from <= rows {
                let to = (from + batch - 1).min(rows);
                sqlx::query(
                    "INSERT INTO noise SELECT g, gen_random_bytes(1024) FROM generate_series($1::bigint, $2::bigint) g",
                )
                .bind(from)
                .bind(to)
                .execute(&pool)
                .await
                .map_err(internal("insert random rows"))?;
                from = to + 1;
            }
            sqlx::query("VACUUM (FREEZE, ANALYZE) noise")
                .execute(&pool)
                .await
                .map_err(internal("vacuum the random dataset"))?;
            pool.close().await;
            format!(
                "random bytea, {:.1} GB requested (pgcrypto gen_random_bytes, STORAGE EXTERNAL)",
                ctx.args.random_gb
            )
        }
    };
    sqlx::query("CHECKPOINT")
        .execute(control)
        .await
        .map_err(internal("checkpoint"))?;
    eprintln!(
        "bench backup: dataset ready in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok((database, description))
}

async fn drop_dataset(control: &sqlx::PgPool, database: &str) -> Result<(), Error> {
    for sql in [
        format!("DROP DATABASE {database}"),
        "CHECKPOINT".to_string(),
    ] {
        sqlx::query(&sql)
            .execute(control)
            .await
            .map_err(|e| Error::internal(format!("{sql}: {e}")))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Backups and restores

/// Where a backup went, to restore it and then remove it.
#[derive(Debug, Clone)]
struct Taken {
    /// The folder holding everything the backup wrote.
    dir: PathBuf,
    /// Our backup's id.
    id: Option<String>,
}

impl Taken {
    fn remove(self) {
        remove_dir(&self.dir);
    }
}

/// Each run starts with nothing left for the disk to write: the previous tool's gigabyte of
/// dirty pages (or the removal of its output) otherwise slows whichever run comes next (seen:
/// the same backup in 3.9 s right after pg_basebackup and in 2.0 s after our own).
async fn settle() -> Result<(), Error> {
    tokio::task::spawn_blocking(nix::unistd::sync)
        .await
        .map_err(|e| Error::internal(format!("sync the disks: {e}")))
}

async fn take_backup(
    ctx: &Ctx<'_>,
    kind: Kind,
    dir: &Path,
    dataset: &str,
    run: usize,
) -> Result<(Sample, Taken), Error> {
    let out = dir.join(format!("backup-{}-{run}", kind_slug(kind)));
    let log = dir.join(format!("backup-{}-{run}.log", kind_slug(kind)));
    let port = ctx.cluster.port().to_string();
    let mut id = None;
    let cmd = match kind {
        Kind::OursZstdEncrypted | Kind::OursClientZstdEncrypted | Kind::OursPlain => {
            make_dir(&out, false, ctx.cluster)?;
            let storage = format!("{dataset}-{}-{run}", kind_slug(kind));
            let url = format!("file://{}", out.display());
            quiet(
                ours_command(ctx, &["storage", "add", &storage, "--url", &url]),
                "pganalytics storage add",
            )
            .await?;
            let mut args = vec!["--json", "backup", "run", "--server", "bench"];
            args.extend(["--storage", storage.as_str()]);
            if kind == Kind::OursZstdEncrypted {
                args.extend(["--compress", "zstd:1", "--encrypt"]);
            } else if kind == Kind::OursClientZstdEncrypted {
                args.extend([
                    "--compress",
                    "zstd:1",
                    "--compress-on",
                    "client",
                    "--encrypt",
                ]);
            } else {
                args.extend(["--compress", "none"]);
            }
            ours_command(ctx, &args)
        }
        Kind::PgbackrestZstEncrypted | Kind::PgbackrestPlain => {
            let encrypted = kind == Kind::PgbackrestZstEncrypted;
            make_dir(&out, true, ctx.cluster)?;
            let mut create = pgbackrest(ctx, encrypted, &out);
            create.arg("stanza-create");
            quiet(create, "pgbackrest stanza-create").await?;
            let mut cmd = pgbackrest(ctx, encrypted, &out);
            cmd.args(["--type=full", "backup"]);
            cmd
        }
        Kind::BasebackupTar | Kind::BasebackupServerZstd => {
            let mut cmd = Command::new(ctx.bins.tool("pg_basebackup"));
            cmd.args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D"])
                .arg(&out)
                .args(["-Ft", "-c", "fast"]);
            if kind == Kind::BasebackupServerZstd {
                cmd.arg("--compress=server-zstd:1");
            }
            cmd
        }
    };
    let (mut sample, stdout) = measure(ctx, cmd, &log).await?;
    if kind.is_ours() {
        let value: serde_json::Value = serde_json::from_str(&stdout).map_err(|e| {
            Error::internal(format!("read `backup run --json`'s output ({e}): {stdout}"))
        })?;
        id = value.get("id").and_then(|v| v.as_str()).map(str::to_string);
        if id.is_none() {
            return Err(Error::internal(format!(
                "`backup run --json` printed no id: {stdout}"
            )));
        }
    }
    sample.stored_bytes = Some(dir_size(&out));
    Ok((sample, Taken { dir: out, id }))
}

fn kind_slug(kind: Kind) -> &'static str {
    match kind {
        Kind::OursZstdEncrypted => "ours-zstd-enc",
        Kind::OursClientZstdEncrypted => "ours-client-zstd-enc",
        Kind::OursPlain => "ours-none",
        Kind::PgbackrestZstEncrypted => "pgbackrest-zst-enc",
        Kind::PgbackrestPlain => "pgbackrest-none",
        Kind::BasebackupTar => "basebackup-tar",
        Kind::BasebackupServerZstd => "basebackup-server-zstd",
    }
}

/// pgBackRest as the server's account (it reads the data folder itself).
fn pgbackrest(ctx: &Ctx<'_>, encrypted: bool, repo: &Path) -> Command {
    let mut cmd = ctx.cluster.account().command(&ctx.args.pgbackrest);
    cmd.arg(format!(
        "--config={}",
        pgbackrest_config(ctx, encrypted).display()
    ))
    .arg("--stanza=bench")
    .arg(format!("--repo1-path={}", repo.display()));
    cmd
}

async fn restore(ctx: &Ctx<'_>, kind: Kind, taken: &Taken, target: &Path) -> Result<Sample, Error> {
    let log = target.with_extension("log");
    let cmd = match kind {
        Kind::OursZstdEncrypted | Kind::OursClientZstdEncrypted | Kind::OursPlain => {
            let id = taken.id.as_deref().unwrap_or_default();
            let target = target.display().to_string();
            ours_command(
                ctx,
                &["--json", "backup", "restore", id, "--target-dir", &target],
            )
        }
        Kind::PgbackrestZstEncrypted | Kind::PgbackrestPlain => {
            make_dir(target, true, ctx.cluster)?;
            let mut cmd = pgbackrest(ctx, kind == Kind::PgbackrestZstEncrypted, &taken.dir);
            cmd.arg(format!("--pg1-path={}", target.display()))
                .arg("restore");
            cmd
        }
        Kind::BasebackupTar | Kind::BasebackupServerZstd => {
            make_dir(target, false, ctx.cluster)?;
            let mut script = String::from("set -e\n");
            let mut names: Vec<String> = std::fs::read_dir(&taken.dir)
                .map_err(|e| Error::internal(format!("read {}: {e}", taken.dir.display())))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".tar"))
                .collect();
            names.sort();
            for name in names {
                let into = if name.starts_with("pg_wal.") {
                    target.join("pg_wal")
                } else {
                    target.to_path_buf()
                };
                let zstd = if name.ends_with(".zst") {
                    "--zstd "
                } else {
                    ""
                };
                script.push_str(&format!(
                    "mkdir -p '{into}'\ntar {zstd}-xf '{archive}' -C '{into}'\n",
                    into = into.display(),
                    archive = taken.dir.join(&name).display()
                ));
            }
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(script);
            cmd
        }
    };
    let (sample, _) = measure(ctx, cmd, &log).await?;
    let _ = std::fs::remove_file(&log);
    Ok(sample)
}

/// Run a command to completion, timing it and sampling its memory and the server's.
/// Returns its standard output; fails with the end of its standard error.
async fn measure(ctx: &Ctx<'_>, mut cmd: Command, log: &Path) -> Result<(Sample, String), Error> {
    let out_path = log.with_extension("out");
    let stdout = std::fs::File::create(&out_path)
        .map_err(|e| Error::internal(format!("create {}: {e}", out_path.display())))?;
    let stderr = std::fs::File::create(log)
        .map_err(|e| Error::internal(format!("create {}: {e}", log.display())))?;
    cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let postmaster = ctx.postmaster;
    let program = format!("{:?}", cmd.get_program());
    let log = log.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let baseline = server_private(postmaster);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::internal(format!("start {program}: {e}")))?;
        let root = child.id() as i32;
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = stop.clone();
            std::thread::spawn(move || sample_until(&stop, root, postmaster))
        };
        let status = child.wait();
        let seconds = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let (client, server) = sampler
            .join()
            .map_err(|_| Error::internal("the memory sampler panicked"))?;
        let status = status.map_err(|e| Error::internal(format!("wait for {program}: {e}")))?;
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&out_path) {
            let _ = f.read_to_string(&mut text);
        }
        let _ = std::fs::remove_file(&out_path);
        if !status.success() {
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = err.lines().collect();
            return Err(Error::internal(format!(
                "{program} failed ({status}):\n{}\n{}",
                lines[lines.len().saturating_sub(15)..].join("\n"),
                text.trim()
            )));
        }
        let _ = std::fs::remove_file(&log);
        Ok((
            Sample {
                seconds,
                peak_rss_bytes: client,
                server_private_bytes: server.saturating_sub(baseline),
                stored_bytes: None,
            },
            text,
        ))
    })
    .await
    .map_err(|e| Error::internal(format!("measurement task: {e}")))?
}

/// Sample until told to stop: (peak Σ VmRSS of `root`'s tree, or one process's VmHWM if
/// higher; peak Σ RssAnon of the server's processes).
fn sample_until(stop: &AtomicBool, root: i32, postmaster: i32) -> (u64, u64) {
    let mut client = 0u64;
    let mut server = 0u64;
    let mut high_water: HashMap<i32, u64> = HashMap::new();
    loop {
        let mut sum = 0;
        for pid in tree(root) {
            if let Some(m) = memory(pid) {
                sum += m.rss;
                let hwm = high_water.entry(pid).or_default();
                *hwm = (*hwm).max(m.hwm);
            }
        }
        client = client.max(sum);
        server = server.max(server_private(postmaster));
        if stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    let single = high_water.values().copied().max().unwrap_or(0);
    (client.max(single), server)
}

#[derive(Debug, Default, Clone, Copy)]
struct Memory {
    rss: u64,
    hwm: u64,
    anon: u64,
}

fn memory(pid: i32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut m = Memory::default();
    for line in text.lines() {
        let kb = || {
            line.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        if line.starts_with("VmRSS:") {
            m.rss = kb();
        } else if line.starts_with("VmHWM:") {
            m.hwm = kb();
        } else if line.starts_with("RssAnon:") {
            m.anon = kb();
        }
    }
    Some(m)
}

/// A process and all its descendants (through every thread's `children`).
fn tree(root: i32) -> Vec<i32> {
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() {
        let pid = all[i];
        i += 1;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                    all.extend(
                        text.split_whitespace()
                            .filter_map(|p| p.parse::<i32>().ok()),
                    );
                }
            }
        }
    }
    all
}

fn server_private(postmaster: i32) -> u64 {
    tree(postmaster)
        .into_iter()
        .filter_map(memory)
        .map(|m| m.anon)
        .sum()
}

fn postmaster_pid(pgdata: &Path) -> Result<i32, Error> {
    let path = pgdata.join("postmaster.pid");
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
        .ok_or_else(|| Error::internal(format!("read the server's pid from {}", path.display())))
}

// ---------------------------------------------------------------------------------------
// Small helpers

/// Run a set-up command; fails with its output.
async fn quiet(cmd: Command, what: &str) -> Result<String, Error> {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdin(Stdio::null());
    let out = cmd
        .output()
        .await
        .map_err(|e| Error::internal(format!("run {what}: {e}")))?;
    if !out.status.success() {
        return Err(Error::internal(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn version_of(program: &Path, arg: &str) -> Result<String, Error> {
    let mut cmd = Command::new(program);
    cmd.arg(arg);
    let what = format!("{} {arg}", program.display());
    Ok(quiet(cmd, &what).await?.trim().to_string())
}

/// A folder; `server` gives it to the server's account (for pgBackRest).
fn make_dir(dir: &Path, server: bool, cluster: &Cluster) -> Result<(), Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::internal(format!("create {}: {e}", dir.display())))?;
    if server {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::internal(format!("restrict {}: {e}", dir.display())))?;
        cluster.account().own(dir)?;
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
            .map_err(|e| Error::internal(format!("open {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// A file only the server's account reads (pgBackRest's configuration holds the cipher pass).
fn write_private(path: &Path, text: &str, cluster: &Cluster) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text)
        .and_then(|_| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)))
        .map_err(|e| Error::internal(format!("write {}: {e}", path.display())))?;
    cluster.account().own(path)
}

fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("warning: remove {}: {e}", dir.display());
        }
    }
}

/// Bytes of the files under `dir` (not following links).
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

/// Read every file under `dir` once, so that every tool finds the data in the page cache.
fn read_all(dir: &Path) -> Result<(), Error> {
    let mut buf = vec![0u8; 1 << 20];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| Error::internal(format!("read {}: {e}", d.display())))?;
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = path.symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                // Files may vanish (temporary files, recycled WAL): skip those.
                if let Ok(mut f) = std::fs::File::open(&path) {
                    while matches!(f.read(&mut buf), Ok(n) if n > 0) {}
                }
            }
        }
    }
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn memory_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}
