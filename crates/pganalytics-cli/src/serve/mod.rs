//! `pganalytics serve`: the headless daemon. It collects the engine metrics of every
//! registered server on its interval ([`collect`]) and serves the HTTP API and the Prometheus
//! `/metrics`; each handler only translates HTTP to one `Api` call (or, for `/metrics`, renders
//! what the collection holds in memory).

mod collect;
mod error;
mod routes;

use crate::cli::ServeArgs;
use pganalytics_core::api::Api;
use pganalytics_core::{Error, ErrorCode};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;

pub use routes::router;

/// Serve until SIGINT or SIGTERM; the Api is closed on every path (audit events flushed and
/// signed).
pub async fn run(api: Arc<Api>, args: ServeArgs) -> Result<(), Error> {
    let result = serve(api.clone(), args).await;
    api.close().await;
    result
}

async fn serve(api: Arc<Api>, args: ServeArgs) -> Result<(), Error> {
    // Bad durations are refused before anything starts.
    let interval = pganalytics_core::metrics::parse_duration(&args.interval)?;
    pganalytics_core::metrics::parse_duration(&args.keep)?;
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(Error::new(
                ErrorCode::PortInUse,
                format!(
                    "cannot listen on {}: the port is already used by another program",
                    args.listen
                ),
            )
            .with_hint("choose another address with --listen HOST:PORT"))
        }
        Err(e) => {
            return Err(
                Error::invalid_input(format!("cannot listen on {}: {e}", args.listen))
                    .with_hint("give --listen as HOST:PORT, e.g. 127.0.0.1:8432"),
            )
        }
    };
    let local = listener
        .local_addr()
        .map_err(|e| Error::internal(format!("read the listening address: {e}")))?;
    tracing::info!(address = %local, repository = %api.repository().location(), "pganalytics daemon listening");
    // Tests and scripts read this line to learn the port when --listen used port 0.
    println!("listening on http://{local}");
    let registry = collect::Registry::default();
    let collection = collect::run(api.clone(), registry.clone(), interval, args.keep.clone());
    // The peer's address is recorded in the audit events of each request.
    let app = router(api.clone(), registry).into_make_service_with_connect_info::<SocketAddr>();
    let serving = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .into_future();
    // Collection never ends on its own; when serving stops, dropping it stops every task.
    tokio::select! {
        served = serving => served.map_err(|e| Error::internal(format!("serve HTTP: {e}")))?,
        _ = collection => {}
        _ = audit_retention_hourly(api.clone()) => {}
    }
    tracing::info!("pganalytics daemon stopped");
    Ok(())
}

/// Apply the audit retention policy once an hour when it allows deletion (the removed range is
/// sealed with a signed checkpoint first; runs that remove nothing are not recorded).
async fn audit_retention_hourly(api: Arc<Api>) {
    use pganalytics_core::api::{AuditRetentionApplyRequest, Empty};
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        ticker.tick().await;
        let allowed = match api.audit_status(Empty {}).await {
            Ok(status) => status.retention.is_some_and(|p| p.deletion_allowed),
            Err(e) => {
                tracing::warn!("audit retention skipped: {}", e.message);
                continue;
            }
        };
        if !allowed {
            continue;
        }
        match api
            .audit_retention_apply(AuditRetentionApplyRequest { dry_run: None })
            .await
        {
            Ok(r) if r.removed > 0 => tracing::info!(
                removed = r.removed,
                "audit events up to {} sealed and removed by the retention policy",
                r.through_id.unwrap_or(0)
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("audit retention failed: {}", e.message),
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("failed to listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
