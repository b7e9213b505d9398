//! Making checkpoints: under an advisory lock (one checkpointer at a time per repository),
//! continue the Merkle tree from the newest external checkpoint with the events written since,
//! check that those events still link to it, sign, write outside the database, then record.

use super::checkpoint::{parse_hash, Checkpoint, Kind, Statement, Store};
use super::keys::{KeyLocation, SigningKey};
use super::merkle::{leaf_hash, Frontier, Hash};
use crate::error::{Error, ErrorCode, Result};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};
use std::sync::Arc;
use tokio::sync::Mutex;
use uuid::Uuid;

/// Key of the advisory lock that serialises checkpointers of one repository ("pgaaudit").
const CHECKPOINT_LOCK: i64 = 0x7067_6161_7564_6974;

/// What a new checkpoint says.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub statement: Statement,
    pub path: std::path::PathBuf,
}

#[derive(Clone)]
pub struct Sealer {
    log_id: Uuid,
    store: Arc<std::sync::RwLock<Store>>,
    key: Arc<std::sync::RwLock<Option<KeyLocation>>>,
    loaded: Arc<Mutex<Option<Arc<SigningKey>>>>,
}

impl Sealer {
    pub fn new(log_id: Uuid, store: Store, key: Option<KeyLocation>) -> Sealer {
        Sealer {
            log_id,
            store: Arc::new(std::sync::RwLock::new(store)),
            key: Arc::new(std::sync::RwLock::new(key)),
            loaded: Arc::new(Mutex::new(None)),
        }
    }

    pub fn location(&self) -> Option<KeyLocation> {
        self.key
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn has_key(&self) -> bool {
        self.location().is_some()
    }

    /// Use a key created after the log was opened (`audit keygen`).
    pub async fn set_key(&self, location: KeyLocation, key: SigningKey) {
        match self.key.write() {
            Ok(mut k) => *k = Some(location),
            Err(p) => *p.into_inner() = Some(location),
        }
        *self.loaded.lock().await = Some(Arc::new(key));
    }

    /// The signing key, loaded once.
    pub async fn key(&self) -> Result<Arc<SigningKey>> {
        self.signing_key().await
    }

    /// The external checkpoint folder (a copy: it may be replaced by `audit keygen`).
    pub fn store(&self) -> Store {
        self.store
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Write checkpoints to another folder from now on (`audit keygen --checkpoints`).
    pub fn set_store(&self, store: Store) {
        match self.store.write() {
            Ok(mut s) => *s = store,
            Err(p) => *p.into_inner() = store,
        }
    }

    async fn signing_key(&self) -> Result<Arc<SigningKey>> {
        let mut loaded = self.loaded.lock().await;
        if let Some(key) = loaded.as_ref() {
            return Ok(key.clone());
        }
        let location = self.location().ok_or_else(|| {
            Error::not_found("the audit log has no signing key yet")
                .with_hint("create one with `pganalytics audit keygen`")
        })?;
        let key = Arc::new(super::keys::load(&location).await?);
        *loaded = Some(key.clone());
        Ok(key)
    }

    /// Sign a checkpoint of the whole log (`seal_at = None`; nothing is done when no event was
    /// added since the newest checkpoint) or a seal at position `seal_at`.
    pub async fn checkpoint(
        &self,
        conn: &mut PgConnection,
        seal_at: Option<i64>,
    ) -> Result<Option<Sealed>> {
        let key = self.signing_key().await?;
        let mut tx = conn.begin().await?;
        // End the transaction explicitly on every path: a dropped one would keep the advisory
        // lock until the connection's next use and stall every other checkpointer.
        match self.checkpoint_in(&mut tx, key, seal_at).await {
            Ok(sealed) => {
                tx.commit().await?;
                Ok(sealed)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn checkpoint_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        key: Arc<SigningKey>,
        seal_at: Option<i64>,
    ) -> Result<Option<Sealed>> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CHECKPOINT_LOCK)
            .execute(&mut **tx)
            .await?;
        let target: i64 = match seal_at {
            Some(n) => n,
            None => {
                sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM audit_logs")
                    .fetch_one(&mut **tx)
                    .await?
            }
        };
        let target = u64::try_from(target)
            .map_err(|_| Error::invalid_input("a checkpoint position cannot be negative"))?;
        // Continue from the newest external checkpoint at or below the target: the external
        // copy, not the database row, is what we trust.
        let public = key.verifying_key();
        // Only the newest one at or below the target is read and checked (by file name), so
        // signing stays cheap however many checkpoints exist; `audit verify` checks them all.
        let mut base: Option<(Checkpoint, Statement)> = None;
        if let Some(c) = self.store().newest_at_most(target)? {
            let statement = c.verified(&public).map_err(|why| {
                Error::new(
                    ErrorCode::VerificationFailed,
                    format!(
                        "an external audit checkpoint in {} is not valid: {why}",
                        self.store().dir().display()
                    ),
                )
                .with_hint(
                    "run `pganalytics audit verify` and investigate before signing anything new",
                )
            })?;
            base = Some((c, statement));
        }
        if let Some((_, s)) = &base {
            if s.size == target && (seal_at.is_none() || s.kind == Kind::Seal) {
                return Ok(None);
            }
        }
        let (mut frontier, from, mut head) = match &base {
            Some((c, s)) => (
                c.frontier().map_err(Error::internal)?,
                s.size,
                s.head.clone(),
            ),
            None => (Frontier::new(), 0, None),
        };
        let rows = sqlx::query(
            "SELECT id, content_hash::text AS h, previous_hash::text AS p FROM audit_logs
             WHERE id > $1 AND id <= $2 ORDER BY id",
        )
        .bind(from as i64)
        .bind(target as i64)
        .fetch_all(&mut **tx)
        .await?;
        let mut leaves: Vec<Hash> = Vec::with_capacity(rows.len());
        let mut expected = from as i64 + 1;
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let hash: String = row.try_get("h")?;
            let previous: Option<String> = row.try_get("p")?;
            if id != expected || previous != head {
                return Err(Error::new(
                    ErrorCode::VerificationFailed,
                    format!("audit event {expected} does not continue the chain of the last checkpoint; refusing to sign"),
                )
                .with_hint("run `pganalytics audit verify` to see what was changed"));
            }
            let raw = parse_hash(&hash).ok_or_else(|| {
                Error::new(
                    ErrorCode::VerificationFailed,
                    format!("audit event {id} has a malformed content hash"),
                )
            })?;
            frontier.push(leaf_hash(&raw));
            leaves.push(raw);
            head = Some(hash);
            expected += 1;
        }
        if expected - 1 != target as i64 {
            return Err(Error::new(
                ErrorCode::VerificationFailed,
                format!("audit events {expected}..{target} are missing; refusing to sign"),
            ));
        }
        let statement = Statement {
            log_id: self.log_id,
            kind: if seal_at.is_some() {
                Kind::Seal
            } else {
                Kind::Checkpoint
            },
            size: target,
            root: frontier.root(),
            head,
            // The note keeps microseconds; so does the database row.
            time: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6),
        };
        // Signing and synced file writes take milliseconds: off the async workers, which run
        // the writer and every caller.
        let store = self.store();
        let signed = statement.clone();
        let (checkpoint, path) = tokio::task::spawn_blocking(move || {
            let checkpoint = Checkpoint::sign(&signed, from, &frontier, &key)?;
            let path = store.write(&checkpoint, &signed, &leaves)?;
            Ok::<_, Error>((checkpoint, path))
        })
        .await
        .map_err(|e| Error::internal(format!("checkpoint task failed: {e}")))??;
        let previous_root = base.as_ref().map(|(_, s)| hex::encode(s.root));
        sqlx::query(
            "INSERT INTO audit_log_verification (batch_id, log_count, batch_hash,
                 previous_batch_hash, signature, verified, created_at, kind, tree_size,
                 chain_head, algorithm, key_fingerprint, signed_note, frontier, sealed_through)
             VALUES ($1, $2, $3, $4, $5, false, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(Uuid::new_v4())
        .bind(i32::try_from(statement.size - from).unwrap_or(i32::MAX))
        .bind(hex::encode(statement.root))
        .bind(previous_root)
        .bind(&checkpoint.signature)
        .bind(statement.time)
        .bind(statement.kind.as_str())
        .bind(statement.size as i64)
        .bind(&statement.head)
        .bind(checkpoint.algorithm.to_string())
        .bind(&checkpoint.key_fingerprint)
        .bind(&checkpoint.note)
        .bind(serde_json::to_string(&checkpoint.frontier).unwrap_or_default())
        .bind(seal_at)
        .execute(&mut **tx)
        .await?;
        Ok(Some(Sealed { statement, path }))
    }
}
