//! The one task per process that puts events into the chain. `Log` hands it an event and
//! returns; the task takes everything queued, numbers and hashes it in order, and writes it
//! in one multi-row INSERT (one commit, so one WAL flush, for the whole batch). While a batch
//! commits the next one queues: group commit without a timer.
//!
//! Several processes may write to one repository (daemon, CLI, desktop). Positions are dense,
//! so two writers that both think the chain ends at N collide on the primary key: the loser's
//! transaction fails as a whole, it re-reads the tail and hashes its batch again. No lock, and
//! no read of the tail while this process is the only writer.

use super::event::PreparedEvent;
use super::sealing::Sealer;
use crate::error::{Error, Result};
use sqlx::postgres::PgConnection;
use sqlx::{PgPool, Row};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Events taken into one INSERT at most (a batch of this size is ~1 MB of parameters).
const MAX_BATCH: usize = 4096;
/// Attempts of a batch before its events are reported lost to their callers.
const ATTEMPTS: u32 = 6;

pub enum Msg {
    Event {
        event: Box<PreparedEvent>,
        /// Answered with the event's id once it is committed.
        durable: Option<oneshot::Sender<Result<i64>>>,
    },
    /// Answered once everything queued before it is committed (and, with `checkpoint`, a
    /// signed checkpoint covers it when a key is configured).
    Flush {
        checkpoint: bool,
        done: oneshot::Sender<Result<()>>,
    },
}

pub struct Writer {
    pool: PgPool,
    /// The actor cache shared with the `AuditLog` handle.
    actors: super::ActorCache,
    conn: Option<PgConnection>,
    /// Last position and content hash, as far as this process knows.
    tail: Option<(i64, Option<String>)>,
    sealer: Sealer,
    interval: Duration,
    last_checkpoint: Instant,
    /// Events written since the last checkpoint.
    dirty: bool,
    /// Held by the checkpoint being signed.
    gate: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Writer {
    pub fn new(
        pool: PgPool,
        actors: super::ActorCache,
        sealer: Sealer,
        interval: Duration,
    ) -> Writer {
        Writer {
            pool,
            actors,
            conn: None,
            tail: None,
            sealer,
            interval,
            last_checkpoint: Instant::now(),
            dirty: false,
            gate: Default::default(),
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut queue = Vec::with_capacity(MAX_BATCH);
        loop {
            let due = self.last_checkpoint + self.interval;
            let first = tokio::select! {
                msg = rx.recv() => msg,
                _ = tokio::time::sleep_until(due.into()), if self.dirty && self.sealer.has_key() => {
                    self.spawn_checkpoint(Vec::new());
                    continue;
                }
            };
            let Some(first) = first else { break };
            queue.push(first);
            while queue.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(msg) => queue.push(msg),
                    Err(_) => break,
                }
            }
            self.handle(&mut queue).await;
        }
        // Every sender is gone: the process is closing. Seal what this process wrote.
        if self.dirty && self.sealer.has_key() {
            let (tx, rx) = oneshot::channel();
            self.spawn_checkpoint(vec![tx]);
            let _ = rx.await;
        }
    }

    async fn handle(&mut self, queue: &mut Vec<Msg>) {
        let mut events = Vec::new();
        let mut flushes = Vec::new();
        for msg in queue.drain(..) {
            match msg {
                Msg::Event { event, durable } => events.push((event, durable)),
                Msg::Flush { checkpoint, done } => flushes.push((checkpoint, done)),
            }
        }
        let written = if events.is_empty() {
            Ok(Vec::new())
        } else {
            let mut batch: Vec<&mut PreparedEvent> =
                events.iter_mut().map(|(e, _)| e.as_mut()).collect();
            self.write_with_retry(&mut batch).await
        };
        let failed = written.as_ref().err().cloned();
        match written {
            Ok(ids) => {
                if !ids.is_empty() {
                    self.dirty = true;
                }
                for ((_, durable), id) in events.into_iter().zip(ids) {
                    if let Some(tx) = durable {
                        let _ = tx.send(Ok(id));
                    }
                }
            }
            Err(e) => {
                let unacknowledged = events.iter().filter(|(_, d)| d.is_none()).count();
                if unacknowledged > 0 {
                    tracing::error!(
                        events = unacknowledged,
                        "audit events could not be written and are lost: {}",
                        e.message
                    );
                }
                for (_, durable) in events {
                    if let Some(tx) = durable {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
            }
        }
        if flushes.is_empty() {
            if self.dirty
                && self.last_checkpoint.elapsed() >= self.interval
                && self.sealer.has_key()
            {
                self.spawn_checkpoint(Vec::new());
            }
            return;
        }
        if let Some(e) = failed {
            for (_, done) in flushes {
                let _ = done.send(Err(e.clone()));
            }
            return;
        }
        let (sealed, plain): (Vec<_>, Vec<_>) = flushes.into_iter().partition(|(c, _)| *c);
        for (_, done) in plain {
            let _ = done.send(Ok(()));
        }
        if !sealed.is_empty() {
            let waiters = sealed.into_iter().map(|(_, done)| done).collect();
            if self.sealer.has_key() {
                self.spawn_checkpoint(waiters);
            } else {
                for done in waiters {
                    let _ = done.send(Ok(()));
                }
            }
        }
    }

    /// Sign a checkpoint on its own connection, off the writer's path (signing, reading the
    /// new hashes and syncing the external files take milliseconds that events must not wait
    /// for); `waiters` are answered when it is done. Checkpoints run one at a time, so a
    /// waiter is answered only after every earlier one finished too.
    ///
    /// A failed checkpoint never loses events: they stay in the chain and the next checkpoint
    /// covers them. It is reported, and `audit status` shows how many events are unsealed.
    fn spawn_checkpoint(&mut self, waiters: Vec<oneshot::Sender<Result<()>>>) {
        self.last_checkpoint = Instant::now();
        self.dirty = false;
        let sealer = self.sealer.clone();
        let pool = self.pool.clone();
        let gate = self.gate.clone();
        tokio::spawn(async move {
            let _turn = gate.lock().await;
            if pool.is_closed() {
                // The process closed after a later flush's checkpoint (which ran first) sealed
                // everything this one would have: nothing is left to do.
                for done in waiters {
                    let _ = done.send(Ok(()));
                }
                return;
            }
            let begun = Instant::now();
            let result = async {
                let mut conn = pool.acquire().await?;
                sealer.checkpoint(&mut conn, None).await
            }
            .await;
            match &result {
                Ok(sealed) => tracing::debug!(
                    ms = begun.elapsed().as_secs_f64() * 1e3,
                    size = sealed.as_ref().map(|s| s.statement.size),
                    "audit checkpoint signed"
                ),
                Err(e) => tracing::warn!("audit checkpoint failed: {e}"),
            }
            // The events are durable either way; the warning says why they are not sealed.
            for done in waiters {
                let _ = done.send(Ok(()));
            }
        });
    }

    async fn connection(&mut self) -> Result<&mut PgConnection> {
        if self.conn.is_none() {
            let conn = self.pool.acquire().await?.detach();
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| Error::internal("audit writer has no connection"))
    }

    async fn write_with_retry(&mut self, batch: &mut [&mut PreparedEvent]) -> Result<Vec<i64>> {
        let mut delay = Duration::from_millis(50);
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            match self.write(batch).await {
                Ok(ids) => return Ok(ids),
                Err(WriteError::ErasedActor) => {
                    // Another process erased an actor this one still had cached.
                    if let Err(e) = self.reassign_erased_actors(batch).await {
                        self.conn = None;
                        last_error = Some(e);
                    }
                }
                Err(WriteError::Conflict) => {
                    // Another process extended the chain: read its tail and hash again.
                    self.tail = None;
                }
                Err(WriteError::Other(e)) => {
                    self.tail = None;
                    self.conn = None;
                    last_error = Some(e);
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            Error::internal(
                "audit events could not be appended: other writers kept extending the chain",
            )
        }))
    }

    /// Events of an erased actor get the actor's new id (a new pseudonym for the same name):
    /// nothing new may be recorded under an erased subject.
    async fn reassign_erased_actors(&mut self, batch: &mut [&mut PreparedEvent]) -> Result<()> {
        let ids: Vec<uuid::Uuid> = batch.iter().map(|e| e.actor_id).collect();
        let cache = self.actors.clone();
        let conn = self.connection().await?;
        let erased: Vec<(uuid::Uuid,)> =
            sqlx::query_as("SELECT id FROM actors WHERE id = ANY($1) AND erased_at IS NOT NULL")
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await?;
        for (old,) in erased {
            let mut renamed: Option<uuid::Uuid> = None;
            for event in batch.iter_mut().filter(|e| e.actor_id == old) {
                let new = match renamed {
                    Some(id) => id,
                    None => {
                        let id =
                            super::upsert_actor(&mut *conn, event.actor.kind, &event.actor.name)
                                .await?;
                        cache
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(event.actor.clone(), id);
                        renamed = Some(id);
                        id
                    }
                };
                event.actor_id = new;
            }
        }
        Ok(())
    }

    async fn write(
        &mut self,
        batch: &[&mut PreparedEvent],
    ) -> std::result::Result<Vec<i64>, WriteError> {
        if self.tail.is_none() {
            let conn = self.connection().await.map_err(WriteError::Other)?;
            self.tail = Some(read_tail(conn).await.map_err(WriteError::Other)?);
        }
        let (mut last_id, mut previous) = self.tail.clone().unwrap_or((0, None));
        let n = batch.len();
        let mut rows = Columns::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        for event in batch {
            let id = last_id + 1;
            let hash = event.hashed(id, previous.as_deref());
            rows.push(id, event, &hash, previous.as_deref())
                .map_err(WriteError::Other)?;
            ids.push(id);
            last_id = id;
            previous = Some(hash);
        }
        let conn = self.connection().await.map_err(WriteError::Other)?;
        match rows.insert(conn).await {
            Ok(0) => Err(WriteError::ErasedActor),
            Ok(_) => {
                self.tail = Some((last_id, previous));
                Ok(ids)
            }
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
                Err(WriteError::Conflict)
            }
            Err(e) => Err(WriteError::Other(Error::internal(format!(
                "append audit events: {e}"
            )))),
        }
    }
}

enum WriteError {
    Conflict,
    /// The batch names an actor erased meanwhile (nothing was written).
    ErasedActor,
    Other(Error),
}

/// The chain's last position and hash: the newest event, or the newest seal when retention
/// removed every event.
pub async fn read_tail(conn: &mut PgConnection) -> Result<(i64, Option<String>)> {
    let row =
        sqlx::query("SELECT id, content_hash::text AS h FROM audit_logs ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(row) = row {
        return Ok((row.try_get("id")?, Some(row.try_get("h")?)));
    }
    let seal = sqlx::query(
        "SELECT sealed_through, chain_head FROM audit_log_verification
         WHERE kind = 'seal' ORDER BY sealed_through DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match seal {
        Some(row) => (row.try_get("sealed_through")?, row.try_get("chain_head")?),
        None => (0, None),
    })
}

/// One INSERT … SELECT FROM UNNEST(arrays): a batch costs one statement and one commit.
struct Columns {
    id: Vec<i64>,
    event_id: Vec<uuid::Uuid>,
    event_type: Vec<String>,
    resource_type: Vec<String>,
    resource_id: Vec<Option<String>>,
    action: Vec<String>,
    outcome: Vec<&'static str>,
    source: Vec<&'static str>,
    actor_id: Vec<uuid::Uuid>,
    subject_id: Vec<Option<uuid::Uuid>>,
    changes: Vec<String>,
    old_values: Vec<Option<String>>,
    new_values: Vec<Option<String>>,
    ip_address: Vec<Option<String>>,
    user_agent: Vec<Option<String>>,
    personal_details: Vec<Option<String>>,
    personal_salt: Vec<Vec<u8>>,
    personal_digest: Vec<String>,
    content_hash: Vec<String>,
    previous_hash: Vec<Option<String>>,
    created_at: Vec<chrono::DateTime<chrono::Utc>>,
}

impl Columns {
    fn with_capacity(n: usize) -> Columns {
        Columns {
            id: Vec::with_capacity(n),
            event_id: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            resource_type: Vec::with_capacity(n),
            resource_id: Vec::with_capacity(n),
            action: Vec::with_capacity(n),
            outcome: Vec::with_capacity(n),
            source: Vec::with_capacity(n),
            actor_id: Vec::with_capacity(n),
            subject_id: Vec::with_capacity(n),
            changes: Vec::with_capacity(n),
            old_values: Vec::with_capacity(n),
            new_values: Vec::with_capacity(n),
            ip_address: Vec::with_capacity(n),
            user_agent: Vec::with_capacity(n),
            personal_details: Vec::with_capacity(n),
            personal_salt: Vec::with_capacity(n),
            personal_digest: Vec::with_capacity(n),
            content_hash: Vec::with_capacity(n),
            previous_hash: Vec::with_capacity(n),
            created_at: Vec::with_capacity(n),
        }
    }

    fn push(
        &mut self,
        id: i64,
        e: &PreparedEvent,
        hash: &str,
        previous: Option<&str>,
    ) -> Result<()> {
        self.id.push(id);
        self.event_id.push(e.event_id);
        self.event_type.push(e.event_type.clone());
        self.resource_type.push(e.resource_type.clone());
        self.resource_id.push(e.resource_id.clone());
        self.action.push(e.action.clone());
        self.outcome.push(e.outcome.as_str());
        self.source.push(e.source.as_str());
        self.actor_id.push(e.actor_id);
        self.subject_id.push(e.subject_id);
        self.changes.push(e.changes.clone());
        self.old_values.push(e.old_values.clone());
        self.new_values.push(e.new_values.clone());
        self.ip_address.push(e.ip_address.clone());
        self.user_agent.push(e.user_agent.clone());
        self.personal_details.push(e.personal_details.clone());
        self.personal_salt.push(e.personal_salt.to_vec());
        self.personal_digest.push(e.personal_digest.clone());
        self.content_hash.push(hash.to_string());
        self.previous_hash.push(previous.map(str::to_string));
        self.created_at.push(e.created_at);
        Ok(())
    }

    /// The rows inserted: all of them, or none when an actor of the batch was erased.
    async fn insert(self, conn: &mut PgConnection) -> std::result::Result<u64, sqlx::Error> {
        if self.id.len() == 1 {
            return self.insert_one(conn).await;
        }
        sqlx::query(
            "INSERT INTO audit_logs (id, event_id, event_type, resource_type, resource_id, action,
                 outcome, source, actor_id, subject_id, changes, old_values, new_values,
                 ip_address, user_agent, personal_details, personal_salt, personal_digest,
                 content_hash, previous_hash, created_at)
             SELECT id, event_id, event_type, resource_type, resource_id, action,
                 outcome, source, actor_id, subject_id, changes::jsonb, old_values::jsonb,
                 new_values::jsonb, ip_address::inet, user_agent, personal_details::jsonb,
                 personal_salt, personal_digest, content_hash, previous_hash, created_at
             FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                 $7::text[], $8::text[], $9::uuid[], $10::uuid[], $11::text[], $12::text[],
                 $13::text[], $14::text[], $15::text[], $16::text[], $17::bytea[], $18::text[],
                 $19::text[], $20::text[], $21::timestamptz[])
               AS t(id, event_id, event_type, resource_type, resource_id, action, outcome,
                 source, actor_id, subject_id, changes, old_values, new_values, ip_address,
                 user_agent, personal_details, personal_salt, personal_digest, content_hash,
                 previous_hash, created_at)
             WHERE NOT EXISTS (SELECT 1 FROM actors WHERE id = ANY($9) AND erased_at IS NOT NULL)",
        )
        .bind(self.id)
        .bind(self.event_id)
        .bind(self.event_type)
        .bind(self.resource_type)
        .bind(self.resource_id)
        .bind(self.action)
        .bind(self.outcome)
        .bind(self.source)
        .bind(self.actor_id)
        .bind(self.subject_id)
        .bind(self.changes)
        .bind(self.old_values)
        .bind(self.new_values)
        .bind(self.ip_address)
        .bind(self.user_agent)
        .bind(self.personal_details)
        .bind(self.personal_salt)
        .bind(self.personal_digest)
        .bind(self.content_hash)
        .bind(self.previous_hash)
        .bind(self.created_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    }

    /// A batch of one (the common case at low rates) as a plain single-row INSERT: the
    /// server decodes no arrays (measured in `bench audit`, one-event batches: INSERT and
    /// commit p50 337 µs / p99 539 µs this way, 349 µs / 640 µs through UNNEST).
    async fn insert_one(self, conn: &mut PgConnection) -> std::result::Result<u64, sqlx::Error> {
        fn one<T>(v: Vec<T>) -> std::result::Result<T, sqlx::Error> {
            v.into_iter()
                .next()
                .ok_or_else(|| sqlx::Error::Protocol("an empty audit batch".into()))
        }
        sqlx::query(
            "INSERT INTO audit_logs (id, event_id, event_type, resource_type, resource_id, action,
                 outcome, source, actor_id, subject_id, changes, old_values, new_values,
                 ip_address, user_agent, personal_details, personal_salt, personal_digest,
                 content_hash, previous_hash, created_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb, $13::jsonb,
                 $14::inet, $15, $16::jsonb, $17, $18, $19, $20, $21
             WHERE NOT EXISTS (SELECT 1 FROM actors WHERE id = $9 AND erased_at IS NOT NULL)",
        )
        .bind(one(self.id)?)
        .bind(one(self.event_id)?)
        .bind(one(self.event_type)?)
        .bind(one(self.resource_type)?)
        .bind(one(self.resource_id)?)
        .bind(one(self.action)?)
        .bind(one(self.outcome)?)
        .bind(one(self.source)?)
        .bind(one(self.actor_id)?)
        .bind(one(self.subject_id)?)
        .bind(one(self.changes)?)
        .bind(one(self.old_values)?)
        .bind(one(self.new_values)?)
        .bind(one(self.ip_address)?)
        .bind(one(self.user_agent)?)
        .bind(one(self.personal_details)?)
        .bind(one(self.personal_salt)?)
        .bind(one(self.personal_digest)?)
        .bind(one(self.content_hash)?)
        .bind(one(self.previous_hash)?)
        .bind(one(self.created_at)?)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    }
}
