//! Verification: needs only the public key and the external checkpoints. The checkpoints'
//! signatures authenticate their Merkle roots, the roots authenticate the external event
//! hashes (`.leaves`), and each event in the database is then recomputed and compared with
//! them in order. Beyond the newest checkpoint only the chain itself can be checked.
//!
//! The first event that does not match is named, with what happened to it (see
//! [`AuditProblem`]); classification looks at where the authentic event went.

use super::checkpoint::{Checkpoint, Kind, Statement, Store};
use super::keys::VerifyingKey;
use super::merkle::{self, leaf_hash, Frontier, Hash};
use crate::api::{AuditCheckpointInfo, AuditProblem, AuditVerification};
use crate::error::{Error, Result};
use rayon::prelude::*;
use sqlx::{PgPool, Row};
use std::collections::HashSet;
use std::time::Instant;
use uuid::Uuid;

mod authentic;
mod classify;
mod rows;
pub mod timing;

use authentic::{check_database_checkpoints, erased_subjects, load_authentic};
use classify::walk_one;
use futures_util::StreamExt;
use rows::{actor_names, read_chunk, split_rows, ActorNames, RowCheck};

/// Events fetched and hashed per round trip.
const CHUNK: i64 = 20_000;
/// Chunks being read or hashed at once (each read on its own connection).
const IN_FLIGHT: usize = 3;

pub struct Request<'a> {
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// `None`: no signing key exists yet, so only the chain can be checked.
    pub key: Option<&'a VerifyingKey>,
    pub store: &'a Store,
    /// Called with (events checked, events to check).
    pub progress: &'a (dyn Fn(u64, u64) + Send + Sync),
}

/// Events authenticated by the external checkpoints: hashes of events `offset+1 ..`.
struct Authentic {
    offset: u64,
    hashes: Vec<Hash>,
    /// Newest valid checkpoint.
    newest: Option<(Checkpoint, Statement)>,
    /// Newest seal: events up to it may have been removed by retention.
    seal: Option<Statement>,
}

impl Authentic {
    fn size(&self) -> u64 {
        self.offset + self.hashes.len() as u64
    }

    fn get(&self, id: i64) -> Option<&Hash> {
        let i = u64::try_from(id).ok()?.checked_sub(self.offset + 1)?;
        self.hashes.get(i as usize)
    }
}

fn failed(problem: AuditProblem, first_bad_id: Option<i64>, detail: String) -> Verdict {
    Verdict::Failed {
        problem,
        first_bad_id,
        detail,
    }
}

enum Verdict {
    Intact,
    Failed {
        problem: AuditProblem,
        first_bad_id: Option<i64>,
        detail: String,
    },
}

/// The chunks `from..=to` is read in: `(first id, last id)` of each.
fn chunks_of(from: i64, to: i64) -> impl Iterator<Item = (i64, i64)> {
    (from..=to)
        .step_by(CHUNK as usize)
        .map(move |next| (next, (next + CHUNK - 1).min(to)))
}

/// One chunk of events being read (on its own connection) and hashed (on every core) in its
/// own task. Dropping it stops the task: verification ended early, or the chunk was started
/// on a guessed range that turned out wrong.
struct ChunkTask(tokio::task::JoinHandle<Result<Vec<RowCheck>>>);

impl ChunkTask {
    fn spawn(pool: &PgPool, actors: &std::sync::Arc<ActorNames>, (from, to): (i64, i64)) -> Self {
        let (pool, actors) = (pool.clone(), actors.clone());
        ChunkTask(tokio::spawn(async move {
            let raw = read_chunk(pool, from, to).await?;
            tokio::task::spawn_blocking(move || {
                split_rows(&raw)?
                    .par_iter()
                    .map(|fields| RowCheck::of(fields, &actors))
                    .collect::<std::result::Result<Vec<_>, String>>()
            })
            .await
            .map_err(|e| Error::internal(format!("verification task failed: {e}")))?
            .map_err(|e| Error::internal(format!("read the audit log: {e}")))
        }))
    }

    async fn rows(mut self) -> Result<Vec<RowCheck>> {
        (&mut self.0)
            .await
            .map_err(|e| Error::internal(format!("verification task failed: {e}")))?
    }
}

impl Drop for ChunkTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub async fn verify(pool: &PgPool, request: Request<'_>) -> Result<AuditVerification> {
    let started = Instant::now();
    let mut scope = Scope::default();
    let verdict = check(pool, request, &mut scope).await?;
    Ok(scope.report(verdict, started))
}

/// What a run looked at, filled in as it goes; with the verdict it becomes the report.
#[derive(Default)]
struct Scope {
    checkpoint: Option<AuditCheckpointInfo>,
    checked: u64,
    from: i64,
    to: i64,
    unsealed: u64,
    warnings: Vec<String>,
}

async fn check(pool: &PgPool, request: Request<'_>, scope: &mut Scope) -> Result<Verdict> {
    // Phase times go to the debug log (`PGANALYTICS_LOG=pganalytics_core::audit=debug`).
    let begun = Instant::now();
    let (min_id, max_id): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT min(id), max(id) FROM audit_logs")
            .fetch_one(pool)
            .await?;
    let actors = std::sync::Arc::new(actor_names(pool).await?);
    let from = request.from.unwrap_or(1).max(1);
    // Reading and hashing events needs nothing from the checkpoints: the first chunks start
    // now, so the server formats rows while the external checkpoints are read and checked
    // (a tenth of the run on 600,000 events). The range is a guess (no seal, no tail past the
    // database's end); chunks it got wrong are dropped, which stops their tasks.
    let guessed_start = from.max(min_id.unwrap_or(1));
    let guessed_to = request.to.unwrap_or(i64::MAX).min(max_id.unwrap_or(0));
    let mut early: Vec<((i64, i64), ChunkTask)> = chunks_of(guessed_start, guessed_to)
        .take(IN_FLIGHT)
        .map(|range| (range, ChunkTask::spawn(pool, &actors, range)))
        .collect();
    let loaded = match request.key {
        // Reads and checks every external checkpoint file: blocking work.
        Some(key) => {
            let (store, key) = (request.store.clone(), key.clone());
            tokio::task::spawn_blocking(move || load_authentic(&store, &key))
                .await
                .map_err(|e| Error::internal(format!("verification task failed: {e}")))?
        }
        None => Ok(Authentic {
            offset: 0,
            hashes: Vec::new(),
            newest: None,
            seal: None,
        }),
    };
    let authentic = match loaded {
        Ok(a) => a,
        Err(verdict) => return Ok(verdict),
    };
    if authentic.newest.is_none() {
        scope.warnings.push(format!(
            "no signed checkpoint in {}: only the hash chain was checked, so a truncated tail or a rewritten chain would not be detected (run `pganalytics audit keygen`)",
            request.store.dir().display()
        ));
    }
    tracing::debug!(
        ms = begun.elapsed().as_millis() as u64,
        events = authentic.hashes.len(),
        "audit verification: external checkpoints read and checked"
    );
    scope.checkpoint = authentic.newest.as_ref().map(|(c, s)| info(c, s));
    if let Some(key) = request.key {
        let external_size = authentic.newest.as_ref().map_or(0, |(_, s)| s.size);
        if let Some(v) = check_database_checkpoints(pool, key, request.store, external_size).await?
        {
            return Ok(v);
        }
    }
    let sealed = authentic.seal.as_ref().map_or(0, |s| s.size as i64);
    let signed = authentic.size() as i64;
    let last = max_id.unwrap_or(0).max(signed);
    let to = request.to.unwrap_or(last).min(last);
    // Events that retention removed under a seal are not missing.
    let start = from.max(match min_id {
        Some(min) if min > 1 && min - 1 <= sealed => min,
        _ => 1,
    });
    let unsealed = (max_id.unwrap_or(0) - signed).max(0) as u64;
    (scope.from, scope.to, scope.unsealed) = (start, to, unsealed);
    let total = (to - start + 1).max(0) as u64;
    // The hash the first checked event must chain to.
    let mut expected_previous: Option<String> = if start <= 1 {
        None
    } else if let Some(h) = authentic.get(start - 1) {
        Some(hex::encode(h))
    } else if start - 1 == sealed {
        authentic.seal.as_ref().and_then(|s| s.head.clone())
    } else {
        sqlx::query_scalar("SELECT content_hash::text FROM audit_logs WHERE id = $1")
            .bind(start - 1)
            .fetch_optional(pool)
            .await?
    };
    let erased = erased_subjects(pool).await?;
    // Read again for the chunks started from here on: they may go past `max_id` (up to a
    // checkpoint signed since), to events whose actors are newer than the first read. The
    // early chunks stop at `max_id`, read before the first.
    let actors = std::sync::Arc::new(actor_names(pool).await?);
    tracing::debug!(
        ms = begun.elapsed().as_millis() as u64,
        "audit verification: ready to read the events"
    );
    // Each chunk is read on its own connection and then hashed (on every core) in its own
    // task; IN_FLIGHT chunks are at some stage at once, so the server formats rows while
    // earlier ones are hashed. The chain is then walked in order here.
    let first: Vec<_> = chunks_of(start, to).take(IN_FLIGHT).collect();
    early.retain(|(range, _)| first.contains(range));
    let pool_for_reads = pool.clone();
    let mut chunks = futures_util::stream::iter(chunks_of(start, to))
        .map(move |range| {
            let task = match early.iter().position(|(r, _)| *r == range) {
                Some(i) => early.swap_remove(i).1,
                None => ChunkTask::spawn(&pool_for_reads, &actors, range),
            };
            async move { Ok::<_, Error>((range.0, range.1, task.rows().await?)) }
        })
        .buffered(IN_FLIGHT);
    while let Some(chunk) = chunks.next().await {
        let (next, upto, results) = chunk?;
        let mut expected_id = next;
        for row in &results {
            if let Some(v) = walk_one(
                row,
                expected_id,
                &expected_previous,
                &authentic,
                &erased,
                pool,
            )
            .await?
            {
                return Ok(v);
            }
            // Reuses the allocation: once per event.
            match &mut expected_previous {
                Some(previous) => previous.clone_from(&row.stored_hash),
                None => expected_previous = Some(row.stored_hash.clone()),
            }
            expected_id += 1;
            scope.checked += 1;
        }
        if expected_id <= upto {
            // The chunk ended early: the events from here on are gone.
            let problem = if max_id.is_none_or(|m| expected_id > m) {
                AuditProblem::TailMissing
            } else {
                AuditProblem::EventMissing
            };
            let detail = match problem {
                AuditProblem::TailMissing => format!(
                    "events {expected_id}..{last} are missing: the newest checkpoint covers {signed} events but the database ends at {}",
                    max_id.unwrap_or(0)
                ),
                _ => format!("event {expected_id} is missing"),
            };
            return Ok(failed(problem, Some(expected_id), detail));
        }
        (request.progress)(scope.checked, total);
    }
    tracing::debug!(
        ms = begun.elapsed().as_millis() as u64,
        events = scope.checked,
        "audit verification: events read and checked"
    );
    if unsealed > 0 && authentic.newest.is_some() {
        scope.warnings.push(format!(
            "{} not yet covered by a signed checkpoint; only the chain was checked there",
            if unsealed == 1 {
                "the newest event is".to_string()
            } else {
                format!("the {unsealed} newest events are")
            }
        ));
    }
    Ok(Verdict::Intact)
}

impl Scope {
    fn report(self, verdict: Verdict, started: Instant) -> AuditVerification {
        let seconds = started.elapsed().as_secs_f64();
        let (intact, problem, first_bad_id, detail) = match verdict {
            Verdict::Intact => (true, None, None, None),
            Verdict::Failed {
                problem,
                first_bad_id,
                detail,
            } => (false, Some(problem), first_bad_id, Some(detail)),
        };
        AuditVerification {
            intact,
            problem,
            first_bad_id,
            detail,
            checked_from: self.from,
            checked_to: self.to,
            events_checked: self.checked as i64,
            unsealed_events: self.unsealed as i64,
            checkpoint: self.checkpoint,
            warnings: self.warnings,
            seconds,
            events_per_second: if seconds > 0.0 {
                self.checked as f64 / seconds
            } else {
                0.0
            },
        }
    }
}

pub fn info(c: &Checkpoint, s: &Statement) -> AuditCheckpointInfo {
    AuditCheckpointInfo {
        kind: s.kind.as_str().to_string(),
        tree_size: s.size as i64,
        root_hash: hex::encode(s.root),
        chain_head: s.head.clone(),
        signed_at: s.time,
        algorithm: c.algorithm.to_string(),
        key_fingerprint: c.key_fingerprint.clone(),
    }
}
