//! `pganalytics bench metrics` (hidden): the engine-metrics figures of docs/BENCHMARKS.md.
//!
//! One PostgreSQL server started here (cluster manager, throw-away folder) is both the
//! monitored server and, in another database, the repository. On it, in the same run:
//!
//! - our snapshot: [`Collector::snapshot`] as the daemon runs it (every view in one round trip,
//!   then the repository transaction), timed end to end;
//! - one scrape of Debian's `prometheus-postgres-exporter` over HTTP, timed end to end.
//!
//! CPU is read from `/proc/<pid>/stat` (utime + stime) before and after all timed runs and
//! divided by their number: our process, the exporter's process, and the server backends
//! that worked for each (the collector's connection via `pg_backend_pid()`, the repository's
//! connections, the exporter's connections). Machines are shared and noisy: compare the two
//! tools of the same run, not absolute numbers across runs.

use super::Workdir;
use crate::cli::BenchMetricsArgs;
use pganalytics_core::api::{Api, ApiOptions, ServerAddRequest};
use pganalytics_core::cluster::{binaries, Cluster, ClusterOptions};
use pganalytics_core::{Error, ErrorCode};
use sqlx::Row;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WARM_UP: usize = 20;
/// Linux reports CPU times in USER_HZ ticks, 100 per second on every mainstream architecture.
const TICKS_PER_SECOND: f64 = 100.0;

pub async fn metrics(args: BenchMetricsArgs) -> Result<(), Error> {
    if args.runs < 10 {
        return Err(Error::invalid_input("use at least 10 runs"));
    }
    if !args.exporter.exists() {
        return Err(Error::new(
            ErrorCode::BinariesMissing,
            format!("{} does not exist", args.exporter.display()),
        )
        .with_hint("apt-get install prometheus-postgres-exporter, or give --exporter PATH"));
    }
    let bins = binaries::find(Some(args.major)).map_err(|e| {
        e.with_hint(format!(
            "fetch the binaries with `scripts/fetch-postgres {}`",
            args.major
        ))
    })?;
    let work = Workdir::new()?;
    let mut options = ClusterOptions::for_tests();
    if args.statements {
        options = options
            .setting("shared_preload_libraries", "pg_stat_statements")
            .setting("pg_stat_statements.track_planning", "on");
    }
    let mut cluster = Cluster::init(&bins, &work.0.join("cluster"), &options).await?;
    cluster.start().await?;
    let result = run(&args, &cluster, &work.0).await;
    if let Err(e) = cluster.stop().await {
        eprintln!("warning: stopping the benchmark's server failed: {e}");
    }
    result
}

struct Figures {
    latencies: Vec<Duration>,
    /// CPU seconds per run.
    client_cpu: f64,
    server_cpu: f64,
    /// Repository backends (ours only).
    repository_cpu: f64,
}

async fn run(args: &BenchMetricsArgs, cluster: &Cluster, work: &Path) -> Result<(), Error> {
    let port = cluster.port();
    let control = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(cluster.connect_options("postgres"))
        .await
        .map_err(|e| Error::internal(format!("connect to the benchmark server: {e}")))?;
    let q = |sql: &'static str| sqlx::query(sql);
    for sql in [
        "CREATE DATABASE pganalytics_repo",
        // Some activity, so that the views have something to report.
        "CREATE TABLE bench AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g",
        "CHECKPOINT",
    ] {
        q(sql)
            .execute(&control)
            .await
            .map_err(|e| Error::internal(format!("{sql}: {e}")))?;
    }
    let version: String = q("SELECT current_setting('server_version')")
        .fetch_one(&control)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| Error::internal(format!("read the version: {e}")))?;

    let api = Api::open(ApiOptions {
        data_dir: Some(work.join("data")),
        repository: Some(format!(
            "postgres://postgres@127.0.0.1:{port}/pganalytics_repo"
        )),
        ..Default::default()
    })
    .await?;
    api.server_add(ServerAddRequest {
        name: "bench".into(),
        dsn: format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        skip_check: Some(false),
    })
    .await?;

    if args.statements {
        for sql in [
            "CREATE EXTENSION pg_stat_statements",
            // Only the benchmark's statements, not the set-up's.
            "SELECT pg_stat_statements_reset()",
        ] {
            q(sql)
                .execute(&control)
                .await
                .map_err(|e| Error::internal(format!("{sql}: {e}")))?;
        }
    }
    let ours = bench_ours(&api, &control, args.runs).await;
    api.repository().close().await;
    let ours = ours?;
    let our_statements = if args.statements {
        statements(&control, args.runs).await?
    } else {
        String::new()
    };
    let theirs = bench_exporter(args, &control, port).await?;
    let their_statements = if args.statements {
        statements(&control, args.runs).await?
    } else {
        String::new()
    };
    control.close().await;

    print_report(args, &version, &ours, &theirs);
    if args.statements {
        println!("\nServer time per snapshot, by statement (pg_stat_statements):\n");
        print!("{our_statements}");
        println!("\nServer time per exporter scrape, by statement:\n");
        print!("{their_statements}");
    }
    Ok(())
}

/// The statements of the last phase by server time (planning + execution) per run, then
/// reset for the next phase.
async fn statements(control: &sqlx::PgPool, runs: usize) -> Result<String, Error> {
    let rows = sqlx::query(
        "SELECT d.datname, s.calls, (s.total_plan_time + s.total_exec_time) / $1 AS per_run,
                s.total_plan_time / $1 AS plan_per_run,
                regexp_replace(left(s.query, 90), '\\s+', ' ', 'g') AS query
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
         WHERE s.query NOT LIKE '%pg_stat_statements%'
         ORDER BY per_run DESC LIMIT 8",
    )
    .bind((runs + WARM_UP) as f64)
    .fetch_all(control)
    .await
    .map_err(|e| Error::internal(format!("read pg_stat_statements: {e}")))?;
    let mut out = String::from(
        "| database | calls | ms per run | of which planning | statement |\n|---|---:|---:|---:|---|\n",
    );
    for r in rows {
        let db: String = r.try_get(0).unwrap_or_default();
        let calls: i64 = r.try_get(1).unwrap_or_default();
        let per_run: f64 = r.try_get(2).unwrap_or_default();
        let plan: f64 = r.try_get(3).unwrap_or_default();
        let query: String = r.try_get(4).unwrap_or_default();
        out.push_str(&format!(
            "| {db} | {calls} | {per_run:.3} | {plan:.3} | `{}` |\n",
            query.replace('|', "\\|")
        ));
    }
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(control)
        .await
        .map_err(|e| Error::internal(format!("reset pg_stat_statements: {e}")))?;
    Ok(out)
}

async fn bench_ours(api: &Api, control: &sqlx::PgPool, runs: usize) -> Result<Figures, Error> {
    let mut collector = api.metrics_collector("bench").await?;
    for _ in 0..WARM_UP {
        collector.snapshot(api.repository()).await?;
    }
    let backend = collector.backend_pid(api.repository()).await?;
    let repo_pids = backends(control, "datname = 'pganalytics_repo'").await?;
    let (self_before, server_before, repo_before) = (
        cpu_ticks("self")?,
        cpu_ticks(&backend.to_string())?,
        sum_ticks(&repo_pids),
    );
    let mut latencies = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        collector.snapshot(api.repository()).await?;
        latencies.push(start.elapsed());
    }
    let (self_after, server_after, repo_after) = (
        cpu_ticks("self")?,
        cpu_ticks(&backend.to_string())?,
        sum_ticks(&repo_pids),
    );
    collector.close().await;
    let per_run = |after: u64, before: u64| {
        after.saturating_sub(before) as f64 / TICKS_PER_SECOND / runs as f64
    };
    Ok(Figures {
        latencies,
        client_cpu: per_run(self_after, self_before),
        server_cpu: per_run(server_after, server_before),
        repository_cpu: per_run(repo_after, repo_before),
    })
}

async fn bench_exporter(
    args: &BenchMetricsArgs,
    control: &sqlx::PgPool,
    port: u16,
) -> Result<Figures, Error> {
    let http_port = pganalytics_core::cluster::free_port()?;
    let mut child = tokio::process::Command::new(&args.exporter)
        .arg(format!("--web.listen-address=127.0.0.1:{http_port}"))
        .arg("--log.level=error")
        .env(
            "DATA_SOURCE_NAME",
            format!("postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::internal(format!("start {}: {e}", args.exporter.display())))?;
    let pid = child
        .id()
        .ok_or_else(|| Error::internal("the exporter exited at once"))?;
    // Wait until it answers, then check that it really reads the server.
    let mut body = String::new();
    for _ in 0..100 {
        match scrape(http_port).await {
            Ok(b) => {
                body = b;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    if !body.lines().any(|l| l == "pg_up 1") {
        return Err(Error::internal(
            "the exporter does not report pg_up 1: it cannot read the server",
        ));
    }
    for _ in 0..WARM_UP {
        scrape(http_port).await?;
    }
    // The exporter keeps its connection(s); every client backend of `postgres` other than
    // our control connection is the exporter's.
    let pids = backends(
        control,
        "datname = 'postgres' AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    .await?;
    let (self_before, server_before) = (cpu_ticks(&pid.to_string())?, sum_ticks(&pids));
    let mut latencies = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let start = Instant::now();
        scrape(http_port).await?;
        latencies.push(start.elapsed());
    }
    let (self_after, server_after) = (cpu_ticks(&pid.to_string())?, sum_ticks(&pids));
    let _ = child.kill().await;
    let per_run = |after: u64, before: u64| {
        after.saturating_sub(before) as f64 / TICKS_PER_SECOND / args.runs as f64
    };
    Ok(Figures {
        latencies,
        client_cpu: per_run(self_after, self_before),
        server_cpu: per_run(server_after, server_before),
        repository_cpu: 0.0,
    })
}

/// One HTTP GET of /metrics, read to the end (HTTP/1.0: the server closes).
async fn scrape(port: u16) -> Result<String, Error> {
    let io = |e: std::io::Error| Error::new(ErrorCode::Unreachable, format!("scrape: {e}"));
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(io)?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .map_err(io)?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.map_err(io)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    if !text.starts_with("HTTP/1.0 200") && !text.starts_with("HTTP/1.1 200") {
        return Err(Error::internal(format!(
            "scrape answered: {}",
            text.lines().next().unwrap_or_default()
        )));
    }
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

async fn backends(control: &sqlx::PgPool, filter: &str) -> Result<Vec<i32>, Error> {
    let sql = format!("SELECT pid FROM pg_stat_activity WHERE {filter}");
    sqlx::query(&sql)
        .fetch_all(control)
        .await
        .and_then(|rows| rows.iter().map(|r| r.try_get(0)).collect())
        .map_err(|e| Error::internal(format!("list backends: {e}")))
}

/// utime + stime of a process (`self` or a pid), in ticks.
fn cpu_ticks(pid: &str) -> Result<u64, Error> {
    let path = format!("/proc/{pid}/stat");
    let text =
        std::fs::read_to_string(&path).map_err(|e| Error::internal(format!("read {path}: {e}")))?;
    // The command name (field 2) may contain spaces: fields are counted after its `)`.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| Error::internal(format!("unexpected {path}")))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After `)`: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let get = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (get(11), get(12)) {
        (Some(u), Some(s)) => Ok(u + s),
        _ => Err(Error::internal(format!("unexpected {path}"))),
    }
}

/// Sum over processes; one that exited in between counts as 0 (rare: connections are kept).
fn sum_ticks(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|p| cpu_ticks(&p.to_string()).ok())
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn print_report(args: &BenchMetricsArgs, version: &str, ours: &Figures, theirs: &Figures) {
    let mut a = ours.latencies.clone();
    a.sort();
    let mut b = theirs.latencies.clone();
    b.sort();
    let cpu = |s: f64| format!("{:.2}", s * 1000.0);
    println!(
        "PostgreSQL {version}, {} timed runs each after {WARM_UP} warm-up runs",
        args.runs
    );
    println!();
    println!("| per snapshot / scrape | p50 ms | p99 ms | max ms | own CPU ms | server CPU ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| pgAnalytics snapshot (read + store) | {} | {} | {} | {} | {} (+ {} repository) |",
        ms(percentile(&a, 0.5)),
        ms(percentile(&a, 0.99)),
        ms(percentile(&a, 1.0)),
        cpu(ours.client_cpu),
        cpu(ours.server_cpu),
        cpu(ours.repository_cpu),
    );
    println!(
        "| prometheus-postgres-exporter scrape | {} | {} | {} | {} | {} |",
        ms(percentile(&b, 0.5)),
        ms(percentile(&b, 0.99)),
        ms(percentile(&b, 1.0)),
        cpu(theirs.client_cpu),
        cpu(theirs.server_cpu),
    );
}
