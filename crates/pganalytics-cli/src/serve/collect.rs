//! The daemon's collection: every registered server on its interval, one task per server so
//! that a slow, unreachable or under-privileged server never delays or stops the others.
//! The latest outcome of each server is kept in memory ([`Registry`]); `GET /metrics` renders
//! it without touching any database. Servers added while the daemon runs are picked up at the
//! next round, removed ones are dropped. Snapshot retention runs once an hour.

use pganalytics_core::api::{Api, Empty};
use pganalytics_core::metrics::prometheus::{self, ServerState};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

/// The latest collection outcome of every server, by name.
pub type Registry = Arc<RwLock<BTreeMap<String, ServerState>>>;

/// Collect until the returned future is dropped (the daemon stops).
pub async fn run(api: Arc<Api>, registry: Registry, interval: Duration, keep: String) {
    let mut tasks: HashMap<String, (uuid::Uuid, JoinHandle<()>)> = HashMap::new();
    let pruner = tokio::spawn(crate::collect::prune_hourly(api.clone(), keep, |e| {
        tracing::warn!("snapshot retention failed: {}", e.message)
    }));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Abort the per-server tasks and the pruner when the daemon drops this future.
    let mut guard = AbortOnDrop(vec![pruner.abort_handle()]);
    loop {
        ticker.tick().await;
        let servers = match api.server_list(Empty {}).await {
            Ok(s) => s,
            Err(e) => {
                // The repository is down: collection tasks report their own failures; try
                // to learn about new servers again next round.
                tracing::warn!("cannot list the registered servers: {}", e.message);
                continue;
            }
        };
        let current: HashMap<String, uuid::Uuid> =
            servers.into_iter().map(|s| (s.name, s.id)).collect();
        // Removed (or removed and registered again under the same name): stop the old task.
        let stale: Vec<String> = tasks
            .iter()
            .filter(|(name, (id, _))| current.get(*name) != Some(id))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some((_, task)) = tasks.remove(&name) {
                task.abort();
            }
            registry.write().await.remove(&name);
            tracing::info!(server = %name, "server removed: collection stopped");
        }
        for (name, id) in current {
            if tasks.contains_key(&name) {
                continue;
            }
            tracing::info!(server = %name, "collecting every {interval:?}");
            let task = tokio::spawn(collect_server(
                api.clone(),
                registry.clone(),
                name.clone(),
                interval,
            ));
            guard.0.push(task.abort_handle());
            tasks.insert(name, (id, task));
        }
    }
}

struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

async fn collect_server(api: Arc<Api>, registry: Registry, name: String, interval: Duration) {
    let mut state = ServerState::new(name.clone());
    let mut collector = match api.metrics_collector(&name).await {
        Ok(c) => c,
        Err(e) => {
            // Removed between the listing and now: the next round drops it.
            tracing::warn!(server = %name, "cannot collect: {}", e.message);
            return;
        }
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        let was_up = state.attempted_at.is_none() || state.up();
        let outcome = prometheus::collect_into(&mut collector, api.repository(), &mut state).await;
        // Log changes only: a server down for a day must not write a line every 15 s.
        match outcome {
            Err(e) if was_up => {
                tracing::warn!(server = %name, code = ?e.code, "collection failing: {}", e.message)
            }
            Ok(_) if !was_up => tracing::info!(server = %name, "collection recovered"),
            _ => {}
        }
        registry.write().await.insert(name.clone(), state.clone());
    }
}

pub async fn render(registry: &Registry) -> String {
    let states: Vec<ServerState> = registry.read().await.values().cloned().collect();
    prometheus::render(&states)
}
