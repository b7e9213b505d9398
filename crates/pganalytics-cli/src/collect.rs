//! `pganalytics metrics collect`: one task per server, each with its own interval, so a slow
//! or failing server never delays or stops the others. Failures are printed and retried at the
//! next interval; Ctrl-C ends collection.

use crate::cli::CollectArgs;
use crate::output::Output;
use pganalytics_core::api::{Api, Empty, MetricsPruneRequest};
use pganalytics_core::{Error, ErrorCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub async fn run(api: Arc<Api>, args: CollectArgs, out: Output) -> Result<(), Error> {
    let interval = pganalytics_core::metrics::parse_duration(&args.interval)?;
    if let Some(keep) = &args.keep {
        // Refuse a bad retention before collecting anything.
        pganalytics_core::metrics::parse_duration(keep)?;
    }
    let servers = if args.server.is_empty() {
        api.server_list(Empty {})
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect()
    } else {
        args.server.clone()
    };
    if servers.is_empty() {
        return Err(Error::new(ErrorCode::NotFound, "no servers to collect")
            .with_hint("register one with `pganalytics server add NAME --dsn URI`"));
    }
    // Unknown names fail now, not in a background task.
    let mut collectors = Vec::new();
    for name in &servers {
        collectors.push(api.metrics_collector(name).await?);
    }
    let successes = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for mut collector in collectors {
        let api = api.clone();
        let successes = successes.clone();
        let count = args.count;
        tasks.spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut rounds = 0u64;
            loop {
                ticker.tick().await;
                match collector.snapshot(api.repository()).await {
                    Ok(result) => {
                        successes.fetch_add(1, Ordering::Relaxed);
                        out.collected(&result);
                    }
                    Err(e) => out.collect_failed(collector.server(), &e),
                }
                rounds += 1;
                if count.is_some_and(|c| rounds >= c) {
                    break;
                }
            }
            collector.close().await;
        });
    }
    let pruner = async {
        match args.keep.clone() {
            Some(keep) => {
                prune_hourly(api.clone(), keep, |e| out.collect_failed("(retention)", e)).await
            }
            None => std::future::pending::<()>().await,
        }
    };
    let all_done = async { while tasks.join_next().await.is_some() {} };
    tokio::select! {
        _ = all_done => {}
        _ = pruner => {}
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted; collection stopped");
        }
    }
    if args.count.is_some() && successes.load(Ordering::Relaxed) == 0 {
        return Err(Error::new(
            ErrorCode::Unreachable,
            "no snapshot could be taken",
        ));
    }
    Ok(())
}

/// Apply snapshot retention now and every hour (`metrics collect --keep`, `serve --keep`).
pub(crate) async fn prune_hourly(api: Arc<Api>, keep: String, on_error: impl Fn(&Error)) {
    let mut ticker = tokio::time::interval(Duration::from_secs(3600));
    loop {
        ticker.tick().await;
        let req = MetricsPruneRequest {
            keep: keep.clone(),
            server: None,
        };
        match api.metrics_prune(req).await {
            Ok(r) if r.deleted_snapshots > 0 => tracing::info!(
                deleted = r.deleted_snapshots,
                "pruned snapshots older than {}",
                r.cutoff
            ),
            Ok(_) => {}
            Err(e) => on_error(&e),
        }
    }
}
