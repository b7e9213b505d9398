//! `pganalytics bench audit` (hidden): the audit-log figures of docs/BENCHMARKS.md.
//!
//! One PostgreSQL server started here with durable settings (fsync on, synchronous commit),
//! holding the repository. On it, in the same run, with 1 and 8 concurrent writers:
//!
//! - **plain**: single-row `INSERT`s of the same rows into an unprotected copy of `audit_logs`
//!   (same columns and indexes, no triggers), one connection per writer, autocommit. The
//!   INSERT returns when the row is durable: "call" is the INSERT's own time.
//! - **ours**: `AuditLog::log_with_receipt` (the `Log` call), whose receipt resolves when the
//!   batch holding the event has committed ("durable").
//!
//! Two loads: *max* (every writer as fast as it can: throughput) and *paced* (both sides
//! offered the same rate, half of what plain INSERT sustained: latency at equal load).
//! Then verification throughput over the whole log.
//!
//! Paced, "durable" runs from an event's **arrival** to its commit on both sides: one pacer
//! task per writer releases the events at their times (tokio's timer has a 1 ms grain, so
//! events due together are released together, alike for both sides) and stamps them. Ours
//! calls `Log` at once; the plain writer INSERTs them in order on its connection, so an event
//! that arrives while the previous INSERT runs waits, and that wait counts — as an event
//! arriving during our commit in progress waits for it. (Until 2026-11-30 the plain side timed
//! each INSERT from its own start, leaving that wait out: it compared our arrival-to-durable
//! with its service time alone.)

use super::Workdir;
use crate::cli::BenchAuditArgs;
use pganalytics_core::api::{Api, ApiOptions, AuditKeygenRequest, AuditVerifyRequest};
use pganalytics_core::audit::{Actor, Caller, NewEvent, Source};
use pganalytics_core::cluster::{binaries, Cluster, ClusterOptions};
use pganalytics_core::Error;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn audit(args: BenchAuditArgs) -> Result<(), Error> {
    let bins = binaries::find(Some(args.major)).map_err(|e| {
        e.with_hint(format!(
            "fetch the binaries with `scripts/fetch-postgres {}`",
            args.major
        ))
    })?;
    let work = Workdir::new()?;
    // Durable like production: no `for_tests()` (which turns fsync off).
    let mut options = ClusterOptions {
        listen_tcp: true,
        stop_on_drop: true,
        ..Default::default()
    };
    if let Some(size) = &args.shared_buffers {
        options = options.setting("shared_buffers", size.as_str());
    }
    let mut cluster = Cluster::init(&bins, &work.0.join("cluster"), &options).await?;
    cluster.start().await?;
    let result = run(&args, &cluster, &work).await;
    if let Err(e) = cluster.stop().await {
        eprintln!("warning: stopping the benchmark's server failed: {e}");
    }
    result
}

fn internal(what: &str) -> impl Fn(sqlx::Error) -> Error + '_ {
    move |e| Error::internal(format!("{what}: {e}"))
}

async fn run(args: &BenchAuditArgs, cluster: &Cluster, work: &Workdir) -> Result<(), Error> {
    let control = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(cluster.connect_options("postgres"))
        .await
        .map_err(internal("connect to the benchmark server"))?;
    sqlx::query("CREATE DATABASE pganalytics_repo")
        .execute(&control)
        .await
        .map_err(internal("create the repository database"))?;
    let api = Api::open(ApiOptions {
        data_dir: Some(work.0.join("data")),
        // Over the unix socket, as the plain INSERTs below (this side went over TCP until
        // 2026-11-29: ~0.1 ms more a round trip than the INSERTs it was compared with).
        repository: Some(cluster.dsn("pganalytics_repo")),
        ..Default::default()
    })
    .await?;
    // Checkpoints are signed every 10 s while events arrive, as in production.
    api.audit_keygen(AuditKeygenRequest {
        algorithm: Some("rsa-2048".into()),
        key_file: Some(work.0.join("signing.pem").display().to_string()),
        checkpoints: None,
    })
    .await?;
    let repo = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(cluster.connect_options("pganalytics_repo"))
        .await
        .map_err(internal("connect to the repository"))?;
    sqlx::query("CREATE TABLE plain_audit (LIKE audit_logs INCLUDING DEFAULTS INCLUDING INDEXES)")
        .execute(&repo)
        .await
        .map_err(internal("create the plain table"))?;
    let (version, shared_buffers): (String, String) = sqlx::query_as(
        "SELECT current_setting('server_version'), current_setting('shared_buffers')",
    )
    .fetch_one(&control)
    .await
    .map_err(internal("read the version"))?;
    println!(
        "# pganalytics bench audit: PostgreSQL {version}, fsync on, shared_buffers {shared_buffers}, {} events per load, {} CPUs\n",
        args.events,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| writers | load | side | events/s | call p50 | call p99 | durable p50 | durable p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let api = Arc::new(api);
    // The plain side's rows name the same actor as ours.
    api.audit_log()
        .actor_id(&Actor::external("bench-writer"))
        .await?;
    let loads: &[usize] = if args.verification_only { &[] } else { &[1, 8] };
    for &writers in loads {
        let mut plain_max = plain(&repo, writers, args.events, None).await?;
        plain_max.print(writers, "max", "plain INSERT");
        let mut ours_max = ours(&api, writers, args.events, None).await?;
        ours_max.print(writers, "max", "pganalytics Log");
        let rate = plain_max.throughput() / 2.0;
        let paced_events = ((rate * args.paced_seconds) as usize).max(writers * 50);
        let mut plain_paced = plain(&repo, writers, paced_events, Some(rate)).await?;
        plain_paced.print(writers, &format!("{rate:.0}/s"), "plain INSERT");
        let mut ours_paced = ours(&api, writers, paced_events, Some(rate)).await?;
        ours_paced.print(writers, &format!("{rate:.0}/s"), "pganalytics Log");
    }
    // Verification throughput over a log of at least `verify_events` events.
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_logs")
        .fetch_one(&repo)
        .await
        .map_err(internal("count events"))?;
    if (have as usize) < args.verify_events {
        ours(&api, 8, args.verify_events - have as usize, None).await?;
    }
    api.audit_log().flush().await?;
    println!("\n| verification run | events | seconds | events/s |");
    println!("|---|---|---|---|");
    for run in 1..=args.verify_runs {
        let started = Instant::now();
        let report = api.audit_verify(AuditVerifyRequest::default()).await?;
        let seconds = started.elapsed().as_secs_f64();
        if !report.intact {
            return Err(Error::internal(format!(
                "the benchmark's log does not verify: {report:?}"
            )));
        }
        println!(
            "| {run} | {} | {seconds:.3} | {:.0} |",
            report.events_checked,
            report.events_checked as f64 / seconds
        );
    }
    // The same, split: reading the rows from the server, and the core's own work on them.
    let max: i64 = sqlx::query_scalar("SELECT max(id) FROM audit_logs")
        .fetch_one(&repo)
        .await
        .map_err(internal("read the log size"))?;
    let started = Instant::now();
    let chunks =
        pganalytics_core::audit::verify::timing::read(api.repository().pool(), 1, max).await?;
    let read = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let intact = tokio::task::spawn_blocking(move || {
        pganalytics_core::audit::verify::timing::check(&chunks)
    })
    .await
    .map_err(|e| Error::internal(format!("check task: {e}")))?;
    let check = started.elapsed().as_secs_f64();
    println!(
        "\n| verification part | events | seconds | events/s |\n|---|---|---|---|\n| read (COPY from the server) | {max} | {read:.3} | {:.0} |\n| hash, chain and personal digests (core, in memory, all cores) | {intact} | {check:.3} | {:.0} |",
        max as f64 / read,
        intact as f64 / check
    );
    api.close().await;
    repo.close().await;
    Ok(())
}

struct Sample {
    events: usize,
    elapsed: Duration,
    call: Vec<Duration>,
    durable: Vec<Duration>,
}

impl Sample {
    fn throughput(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&mut self, writers: usize, load: &str, side: &str) {
        self.call.sort();
        self.durable.sort();
        println!(
            "| {writers} | {load} | {side} | {:.0} | {} | {} | {} | {} |",
            self.throughput(),
            fmt(pct(&self.call, 50.0)),
            fmt(pct(&self.call, 99.0)),
            fmt(pct(&self.durable, 50.0)),
            fmt(pct(&self.durable, 99.0)),
        );
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

/// When writer `w` of `writers` should send its `i`th event at total rate `rate`.
fn schedule(start: Instant, rate: f64, writers: usize, w: usize, i: usize) -> Instant {
    let per_writer = rate / writers as f64;
    start + Duration::from_secs_f64((i as f64 + w as f64 / writers as f64) / per_writer)
}

async fn plain(
    pool: &sqlx::PgPool,
    writers: usize,
    events: usize,
    rate: Option<f64>,
) -> Result<Sample, Error> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let pool = pool.clone();
        let n = events / writers;
        let arrivals = arrivals(start, rate, writers, w, n);
        tasks.push(tokio::spawn(async move {
            plain_writer(pool, w, n, arrivals).await
        }));
    }
    let mut call = Vec::new();
    let mut durable = Vec::new();
    for t in tasks {
        let (c, d) = t
            .await
            .map_err(|e| Error::internal(format!("writer task: {e}")))?
            .map_err(internal("plain INSERT"))?;
        call.extend(c);
        durable.extend(d);
    }
    let elapsed = start.elapsed();
    Ok(Sample {
        events: call.len(),
        elapsed,
        call,
        durable,
    })
}

/// The events of writer `w`. Paced, a pacer task releases them at their scheduled times,
/// stamped with the instant each arrived. At max load there is no arrival process: the writer
/// takes the next one as soon as it is free (no stamp), and its time counts from then.
fn arrivals(
    start: Instant,
    rate: Option<f64>,
    writers: usize,
    w: usize,
    n: usize,
) -> tokio::sync::mpsc::UnboundedReceiver<(usize, Option<Instant>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for i in 0..n {
            let arrived = match rate {
                Some(rate) => {
                    tokio::time::sleep_until(schedule(start, rate, writers, w, i).into()).await;
                    Some(Instant::now())
                }
                None => None,
            };
            if tx.send((i, arrived)).is_err() {
                return;
            }
        }
    });
    rx
}

/// One plain writer: INSERTs its events in arrival order on one connection. Returns each
/// INSERT's own time and each event's time from arrival to durable.
async fn plain_writer(
    pool: sqlx::PgPool,
    w: usize,
    n: usize,
    mut arrivals: tokio::sync::mpsc::UnboundedReceiver<(usize, Option<Instant>)>,
) -> Result<(Vec<Duration>, Vec<Duration>), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut calls = Vec::with_capacity(n);
    let mut durable = Vec::with_capacity(n);
    while let Some((i, arrived)) = arrivals.recv().await {
        let t = Instant::now();
        let arrived = arrived.unwrap_or(t);
        sqlx::query(
            "INSERT INTO plain_audit (event_id, event_type, resource_type, resource_id,
                 action, outcome, source, actor_id, changes, old_values, new_values,
                 ip_address, user_agent, personal_salt, personal_digest, content_hash,
                 previous_hash, created_at)
             SELECT $1, 'bench.event', 'table', $2, 'update', 'success', 'api', a.id,
                 $3, $4, $5, '10.0.0.1', 'bench/1', $6, $7, $8, $9, now()
             FROM actors a WHERE a.kind = 'external' AND a.name = 'bench-writer'",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(format!("public.t{i}"))
        .bind(serde_json::json!({ "n": i, "writer": w }))
        .bind(serde_json::json!({ "rows": i }))
        .bind(serde_json::json!({ "rows": i + 1 }))
        .bind(vec![7u8; 16])
        .bind("0".repeat(64))
        .bind("1".repeat(64))
        .bind("2".repeat(64))
        .execute(&mut *conn)
        .await?;
        calls.push(t.elapsed());
        durable.push(arrived.elapsed());
    }
    Ok((calls, durable))
}

async fn ours(
    api: &Arc<Api>,
    writers: usize,
    events: usize,
    rate: Option<f64>,
) -> Result<Sample, Error> {
    let caller = Caller {
        actor: Actor::external("bench-writer"),
        source: Source::Api,
        ip_address: Some("10.0.0.1".parse().map_err(|_| Error::internal("ip"))?),
        user_agent: Some("bench/1".into()),
    };
    // The plain side reads this actor's id; resolving it first also keeps the first Log call
    // from paying for the actor lookup.
    api.audit_log().actor_id(&caller.actor).await?;
    let start = Instant::now();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let api = api.clone();
        let caller = caller.clone();
        let done_tx = done_tx.clone();
        let n = events / writers;
        let mut arrivals = arrivals(start, rate, writers, w, n);
        tasks.push(tokio::spawn(async move {
            let mut calls = Vec::with_capacity(n);
            while let Some((i, arrived)) = arrivals.recv().await {
                let event = NewEvent::new("bench.event", "update", "table")
                    .resource(format!("public.t{i}"))
                    .changes(serde_json::json!({ "n": i, "writer": w }))
                    .old(serde_json::json!({ "rows": i }))
                    .new_values(serde_json::json!({ "rows": i + 1 }));
                let t = Instant::now();
                let arrived = arrived.unwrap_or(t);
                let receipt = api.audit_log().log_with_receipt(&caller, event).await?;
                calls.push(t.elapsed());
                let done_tx = done_tx.clone();
                tokio::spawn(async move {
                    let ok = matches!(receipt.await, Ok(Ok(_)));
                    let _ = done_tx.send((ok, arrived.elapsed()));
                });
            }
            Ok::<_, Error>(calls)
        }));
    }
    drop(done_tx);
    let mut call = Vec::new();
    for t in tasks {
        call.extend(
            t.await
                .map_err(|e| Error::internal(format!("writer task: {e}")))??,
        );
    }
    let mut durable = Vec::with_capacity(call.len());
    while let Some((ok, d)) = done_rx.recv().await {
        if !ok {
            return Err(Error::internal("an audit event was not written"));
        }
        durable.push(d);
    }
    let elapsed = start.elapsed();
    Ok(Sample {
        events: durable.len(),
        elapsed,
        call,
        durable,
    })
}
