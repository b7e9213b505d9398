//! The tamper-evident audit log (specification: docs/AUDIT_LOGGING.md).
//!
//! - [`event`]: what an event holds and the canonical form its hashes cover.
//! - [`writer`]: one task per process sequences, hashes and batch-writes events.
//! - [`merkle`], [`keys`], [`checkpoint`], [`sealing`]: the RFC 6962 tree, signing keys, and
//!   signed checkpoints written outside the database.
//! - [`verify`]: offline verification from the public key and the external checkpoints.
//! - [`query`]: reading the log.
//! - `signing`, `proof`, `removal`: creating the key, inclusion proofs, retention and erasure.
//! - this file: [`AuditLog`], the handle the [`crate::api::Api`] holds: logging, flushing,
//!   checkpoints on demand, status.

pub mod canonical;
pub mod checkpoint;
pub mod event;
mod jcs;
pub mod keys;
pub mod merkle;
mod proof;
pub mod query;
mod removal;
pub mod sealing;
mod signing;
pub mod verify;
mod writer;

pub use event::{Actor, Caller, NewEvent, Source};

use crate::api::{
    AuditCheckpointInfo, AuditErased, AuditKeyInfo, AuditProof, AuditRetentionPolicy,
    AuditRetentionResult, AuditRetentionSetRequest, AuditStatus,
};
use crate::data_dir::{AuditConfig, DataDir};
use crate::error::{Error, ErrorCode, Result};
use crate::repository::Repository;
use checkpoint::Store;
use keys::{Algorithm, KeyLocation, SigningKey, VerifyingKey};
use sealing::Sealer;
use sqlx::{PgPool, Row};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;
use writer::{Msg, Writer};

pub use removal::{retention_policy, set_retention};
pub use signing::parse_algorithm;

/// Events queued before `Log` waits for the writer (backpressure instead of unbounded memory).
const QUEUE: usize = 65_536;
/// A checkpoint is signed at least this often while events arrive.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    pool: PgPool,
    log_id: Uuid,
    sealer: Sealer,
    actors: ActorCache,
}

/// Actor → id, shared by the handle (lookups) and the writer (which re-resolves actors erased
/// by another process).
pub(crate) type ActorCache = std::sync::Arc<Mutex<HashMap<Actor, Uuid>>>;

/// The id of the actor (kind, name), created on first use; an erased actor's name was
/// replaced, so the same name later gets a new id.
pub(crate) async fn upsert_actor<'c, E>(executor: E, kind: &str, name: &str) -> Result<Uuid>
where
    E: sqlx::PgExecutor<'c>,
{
    Ok(sqlx::query_scalar(
        "INSERT INTO actors (kind, name) VALUES ($1, $2)
         ON CONFLICT (kind, name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
    )
    .bind(kind)
    .bind(name)
    .fetch_one(executor)
    .await?)
}

/// Where the external checkpoints of a data directory go by default.
pub fn default_checkpoints(data_dir: &DataDir) -> PathBuf {
    data_dir.path().join("audit-checkpoints")
}

fn key_location(config: &AuditConfig, log_id: Uuid) -> Option<KeyLocation> {
    match (&config.key_file, config.key_in_keyring) {
        (Some(path), _) => Some(KeyLocation::File(path.clone())),
        (None, true) => Some(KeyLocation::Keyring {
            account: format!("audit-signing-key:{log_id}"),
        }),
        (None, false) => None,
    }
}

impl AuditLog {
    /// Start the writer of this process. Needs a tokio runtime.
    pub async fn open(
        repo: &Repository,
        data_dir: &DataDir,
        config: &AuditConfig,
    ) -> Result<AuditLog> {
        let log_id: Uuid = sqlx::query_scalar("SELECT log_id FROM audit_log_state")
            .fetch_one(repo.pool())
            .await?;
        let root = config
            .checkpoints
            .clone()
            .unwrap_or_else(|| default_checkpoints(data_dir));
        let sealer = Sealer::new(
            log_id,
            Store::new(&root, log_id),
            key_location(config, log_id),
        );
        let (tx, rx) = mpsc::channel(QUEUE);
        let actors = ActorCache::default();
        let writer = Writer::new(
            repo.pool().clone(),
            actors.clone(),
            sealer.clone(),
            CHECKPOINT_INTERVAL,
        );
        tokio::spawn(writer.run(rx));
        Ok(AuditLog {
            tx,
            pool: repo.pool().clone(),
            log_id,
            sealer,
            actors,
        })
    }

    pub fn log_id(&self) -> Uuid {
        self.log_id
    }

    /// The installation's signing key (it signs the log's checkpoints and backup
    /// catalogues); an error with a hint when none was created.
    pub async fn signing_key(&self) -> Result<std::sync::Arc<SigningKey>> {
        self.sealer.key().await
    }

    /// The external checkpoint folder of this log.
    pub fn store(&self) -> Store {
        self.sealer.store()
    }

    /// The actor's stable id (created on first use).
    pub async fn actor_id(&self, actor: &Actor) -> Result<Uuid> {
        if let Some(id) = self.cached_actor(actor) {
            return Ok(id);
        }
        let id = upsert_actor(&self.pool, actor.kind, &actor.name).await?;
        self.actors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(actor.clone(), id);
        Ok(id)
    }

    fn cached_actor(&self, actor: &Actor) -> Option<Uuid> {
        self.actors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(actor)
            .copied()
    }

    /// Queue an event; returns its event id at once. It is durable after [`AuditLog::flush`]
    /// (or within milliseconds, when the writer's current batch commits).
    pub async fn log(&self, caller: &Caller, event: NewEvent) -> Result<Uuid> {
        let actor_id = self.actor_id(&caller.actor).await?;
        let prepared = event::prepare(event, caller, actor_id)?;
        let event_id = prepared.event_id;
        self.send(Msg::Event {
            event: Box::new(prepared),
            durable: None,
        })
        .await?;
        Ok(event_id)
    }

    /// Queue an event and wait until it is committed; returns its position and event id.
    pub async fn log_durable(&self, caller: &Caller, event: NewEvent) -> Result<(i64, Uuid)> {
        let actor_id = self.actor_id(&caller.actor).await?;
        let prepared = event::prepare(event, caller, actor_id)?;
        let event_id = prepared.event_id;
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Event {
            event: Box::new(prepared),
            durable: Some(tx),
        })
        .await?;
        let id = rx.await.map_err(|_| writer_gone())??;
        Ok((id, event_id))
    }

    /// Queue an event and return at once with a receipt that resolves to its position when it
    /// is committed (the benchmark times both moments; callers that must wait use
    /// [`AuditLog::log_durable`]).
    pub async fn log_with_receipt(
        &self,
        caller: &Caller,
        event: NewEvent,
    ) -> Result<oneshot::Receiver<Result<i64>>> {
        let actor_id = self.actor_id(&caller.actor).await?;
        let prepared = event::prepare(event, caller, actor_id)?;
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Event {
            event: Box::new(prepared),
            durable: Some(tx),
        })
        .await?;
        Ok(rx)
    }

    /// Wait until every event queued so far is committed and covered by a signed checkpoint
    /// (when a signing key is configured).
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Flush {
            checkpoint: true,
            done: tx,
        })
        .await?;
        rx.await.map_err(|_| writer_gone())?
    }

    /// Wait until every event queued so far is committed (no checkpoint).
    pub async fn sync(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Flush {
            checkpoint: false,
            done: tx,
        })
        .await?;
        rx.await.map_err(|_| writer_gone())?
    }

    async fn send(&self, msg: Msg) -> Result<()> {
        self.tx.send(msg).await.map_err(|_| writer_gone())
    }

    /// Sign a checkpoint now (after committing what is queued).
    pub async fn checkpoint(&self) -> Result<Option<AuditCheckpointInfo>> {
        self.sync().await?;
        let mut conn = self.pool.acquire().await?;
        let sealed = self.sealer.checkpoint(&mut conn, None).await?;
        Ok(sealed.map(|s| self.info_of(&s.statement)))
    }

    fn info_of(&self, statement: &checkpoint::Statement) -> AuditCheckpointInfo {
        match self.newest_checkpoint_matching(statement) {
            Some(info) => info,
            None => AuditCheckpointInfo {
                kind: statement.kind.as_str().to_string(),
                tree_size: statement.size as i64,
                root_hash: hex::encode(statement.root),
                chain_head: statement.head.clone(),
                signed_at: statement.time,
                algorithm: String::new(),
                key_fingerprint: String::new(),
            },
        }
    }

    fn newest_checkpoint_matching(
        &self,
        statement: &checkpoint::Statement,
    ) -> Option<AuditCheckpointInfo> {
        let list = self.store().list().ok()?;
        list.iter()
            .rev()
            .find(|c| c.statement().ok().as_ref() == Some(statement))
            .map(|c| verify::info(c, statement))
    }

    pub async fn status(&self, repo: &Repository) -> Result<AuditStatus> {
        let row = sqlx::query("SELECT count(*) AS n, max(id) AS last FROM audit_logs")
            .fetch_one(&self.pool)
            .await?;
        let events: i64 = row.try_get("n")?;
        let last_id: Option<i64> = row.try_get("last")?;
        let newest = self
            .store()
            .list()?
            .into_iter()
            .filter_map(|c| c.statement().ok().map(|s| verify::info(&c, &s)))
            .next_back();
        let unsealed = last_id.unwrap_or(0) - newest.as_ref().map_or(0, |c| c.tree_size);
        let restricted: bool = sqlx::query_scalar("SELECT current_user = 'pganalytics_app'")
            .fetch_one(repo.pool())
            .await?;
        Ok(AuditStatus {
            log_id: self.log_id,
            events,
            last_id,
            signing_key: if self.sealer.has_key() {
                Some(
                    self.sealer
                        .key()
                        .await
                        .map(|k| format!("{} {}", k.algorithm(), k.verifying_key().fingerprint()))
                        .unwrap_or_else(|e| format!("configured but unreadable: {}", e.message)),
                )
            } else {
                None
            },
            checkpoints: self.store().dir().display().to_string(),
            newest_checkpoint: newest,
            unsealed_events: unsealed.max(0),
            retention: retention_policy(&self.pool).await?,
            restricted_role: restricted,
        })
    }
}

fn writer_gone() -> Error {
    Error::internal("the audit writer stopped; events cannot be recorded")
        .with_hint("see the log above for why; restart pganalytics")
}
