//! The tamper-evident audit log (specification: docs/AUDIT_LOGGING.md).
//!
//! - [`event`]: what an event holds and the canonical form its hashes cover.
//! - [`writer`]: one task per process sequences, hashes and batch-writes events.
//! - [`merkle`], [`keys`], [`checkpoint`], [`sealing`]: the RFC 6962 tree, signing keys, and
//!   signed checkpoints written outside the database.
//! - [`verify`]: offline verification from the public key and the external checkpoints.
//! - [`query`]: reading the log.
//! - this file: [`AuditLog`], the handle the [`crate::api::Api`] holds, and the operations
//!   around keys, retention and erasure.

pub mod canonical;
pub mod checkpoint;
pub mod event;
pub mod keys;
pub mod merkle;
pub mod query;
pub mod sealing;
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

    /// Create the signing key (`audit keygen`): private key to the keyring or `key_file`,
    /// public key beside the config; then sign a first checkpoint of what is already logged.
    pub async fn keygen(
        &self,
        data_dir: &DataDir,
        algorithm: Algorithm,
        key_file: Option<PathBuf>,
        checkpoints: Option<PathBuf>,
    ) -> Result<AuditKeyInfo> {
        let mut config = data_dir.load_config()?;
        if self.sealer.has_key() {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                "the audit log already has a signing key",
            )
            .with_hint("existing checkpoints are signed with it; export its public key with `pganalytics audit export-public-key --out FILE`"));
        }
        if let Some(dir) = &checkpoints {
            if !dir.is_absolute() {
                return Err(Error::invalid_input(
                    "give the checkpoint folder as an absolute path",
                ));
            }
        }
        let key = tokio::task::spawn_blocking(move || SigningKey::generate(algorithm))
            .await
            .map_err(|e| Error::internal(format!("key generation task failed: {e}")))?
            .map_err(|e| Error::internal(format!("generate the audit signing key: {e}")))?;
        let location = match &key_file {
            Some(path) => KeyLocation::File(path.clone()),
            None => KeyLocation::Keyring {
                account: format!("audit-signing-key:{}", self.log_id),
            },
        };
        keys::store(&location, &key).await?;
        let public_path = data_dir.path().join("audit-public-key.pem");
        let pem = key
            .verifying_key()
            .to_public_key_pem()
            .map_err(|e| Error::internal(format!("encode the public key: {e}")))?;
        crate::data_dir::write_atomically(&public_path, pem.as_bytes())?;
        config.audit = AuditConfig {
            key_in_keyring: key_file.is_none(),
            key_file,
            public_key: Some(public_path.clone()),
            checkpoints: checkpoints.clone(),
        };
        data_dir.save_config(&config)?;
        let root = checkpoints.unwrap_or_else(|| default_checkpoints(data_dir));
        let info = AuditKeyInfo {
            algorithm: key.algorithm().to_string(),
            fingerprint: key.verifying_key().fingerprint(),
            private_key: location.to_string(),
            public_key_path: public_path.display().to_string(),
            checkpoints: root.display().to_string(),
        };
        // Other running processes pick the folder up from the config when they next start.
        self.sealer.set_store(Store::new(&root, self.log_id));
        self.sealer.set_key(location, key).await;
        Ok(info)
    }

    /// Whether verification has a key to work with (configured public key or signing key).
    pub fn has_key(&self, data_dir: &DataDir) -> Result<bool> {
        Ok(self.sealer.has_key() || data_dir.load_config()?.audit.public_key.is_some())
    }

    /// Where the private key is (`keyring entry …` or `file …`), when there is one.
    pub fn key_location(&self) -> Option<String> {
        self.sealer.location().map(|l| l.to_string())
    }

    /// The public key: the configured file, else derived from the signing key.
    pub async fn public_key(
        &self,
        data_dir: &DataDir,
        explicit: Option<&Path>,
    ) -> Result<VerifyingKey> {
        let config = data_dir.load_config()?;
        let path = explicit.map(Path::to_path_buf).or(config.audit.public_key);
        match path {
            Some(path) => {
                let pem = std::fs::read_to_string(&path).map_err(|e| {
                    Error::not_found(format!("cannot read the public key {}: {e}", path.display()))
                        .with_hint("export it with `pganalytics audit export-public-key --out FILE` on the machine that signs")
                })?;
                VerifyingKey::from_public_key_pem(&pem).map_err(|e| {
                    Error::invalid_input(format!("{} is not a PEM public key: {e}", path.display()))
                })
            }
            None => Ok(self.sealer.key().await?.verifying_key()),
        }
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

    /// Inclusion proof of event `id` in the newest external checkpoint that covers it.
    pub async fn prove(&self, id: i64, key: &VerifyingKey) -> Result<AuditProof> {
        self.sync().await?;
        let list = self.store().list()?;
        let mut chosen = None;
        for c in &list {
            let s = c.verified(key).map_err(|why| {
                Error::new(
                    ErrorCode::VerificationFailed,
                    format!("an external checkpoint is not valid: {why}"),
                )
            })?;
            if s.size as i64 >= id && s.kind == checkpoint::Kind::Checkpoint {
                chosen = Some((c.clone(), s));
            }
        }
        let Some((c, s)) = chosen else {
            return Err(Error::not_found(format!("no signed checkpoint covers event {id} yet"))
                .with_hint("sign one with `pganalytics audit checkpoint`, or wait for the next one (every 10 s while events arrive)"));
        };
        // The tree below the oldest remaining event is summarised by the newest seal.
        let seal = list
            .iter()
            .filter_map(|c| c.statement().ok().map(|s| (c, s)))
            .rfind(|(_, s)| s.kind == checkpoint::Kind::Seal && s.size < id as u64);
        let (prefix, from) = match seal {
            Some((c, s)) => (c.frontier().map_err(Error::internal)?, s.size as i64),
            None => (merkle::Frontier::new(), 0),
        };
        let hashes: Vec<(String,)> = sqlx::query_as(
            "SELECT content_hash::text FROM audit_logs WHERE id > $1 AND id <= $2 ORDER BY id",
        )
        .bind(from)
        .bind(s.size as i64)
        .fetch_all(&self.pool)
        .await?;
        let leaves: Vec<merkle::Hash> = hashes
            .iter()
            .map(|(h,)| checkpoint::parse_hash(h).map(|h| merkle::leaf_hash(&h)))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::VerificationFailed,
                    "an event has a malformed content hash",
                )
            })?;
        if leaves.len() as u64 + prefix.size() != s.size {
            return Err(Error::new(
                ErrorCode::VerificationFailed,
                "events covered by the checkpoint are missing from the database",
            )
            .with_hint("run `pganalytics audit verify`"));
        }
        let index = (id - 1) as u64;
        let proof = merkle::inclusion_proof(&prefix, &leaves, index)
            .map_err(|e| Error::invalid_input(format!("no proof for event {id}: {e}")))?;
        let content_hash = hashes[(id - 1 - from) as usize].0.clone();
        let leaf = leaves[(index - prefix.size()) as usize];
        Ok(AuditProof {
            id,
            content_hash,
            leaf_index: index as i64,
            tree_size: s.size as i64,
            root_hash: hex::encode(s.root),
            verified: merkle::verify_inclusion(&leaf, index, s.size, &proof, &s.root),
            proof: proof.iter().map(hex::encode).collect(),
            checkpoint: verify::info(&c, &s),
        })
    }

    /// GDPR erasure of one subject's personal fields; the chain still verifies.
    pub async fn erase_subject(&self, actor: Uuid) -> Result<AuditErased> {
        self.sync().await?;
        let erased: i64 = sqlx::query_scalar("SELECT audit_erase_subject($1)")
            .bind(actor)
            .fetch_one(&self.pool)
            .await?;
        self.actors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, id| *id != actor);
        Ok(AuditErased {
            actor_id: actor,
            events_erased: erased,
        })
    }

    /// Seal the events older than the policy's retention and delete them.
    pub async fn apply_retention(&self, dry_run: bool) -> Result<AuditRetentionResult> {
        let policy = retention_policy(&self.pool).await?.ok_or_else(no_policy)?;
        let cutoff = chrono::Utc::now() - chrono::Duration::days(policy.retention_days as i64);
        self.apply_retention_before(cutoff, dry_run).await
    }

    /// Seal and delete the events created before `cutoff` (the policy must allow deletion).
    pub async fn apply_retention_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        dry_run: bool,
    ) -> Result<AuditRetentionResult> {
        let policy = retention_policy(&self.pool).await?.ok_or_else(|| {
            Error::not_found("no audit retention policy is set").with_hint(
                "set one with `pganalytics audit retention set --days N --allow-deletion`",
            )
        })?;
        if !policy.deletion_allowed && !dry_run {
            return Err(
                Error::invalid_input("the retention policy does not allow deletion")
                    .with_hint("`pganalytics audit retention set --days N --allow-deletion`"),
            );
        }
        self.sync().await?;
        // The removed range is a prefix: up to the last event before the first young one.
        let through: Option<i64> = sqlx::query_scalar(
            "SELECT max(id) FROM audit_logs WHERE id < COALESCE(
                 (SELECT min(id) FROM audit_logs WHERE created_at >= $1),
                 (SELECT max(id) + 1 FROM audit_logs))",
        )
        .bind(cutoff)
        .fetch_one(&self.pool)
        .await?;
        let Some(through) = through else {
            return Ok(AuditRetentionResult {
                through_id: None,
                removed: 0,
                dry_run,
                seal: None,
            });
        };
        let already: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_logs WHERE id <= $1")
            .bind(through)
            .fetch_one(&self.pool)
            .await?;
        if dry_run {
            return Ok(AuditRetentionResult {
                through_id: Some(through),
                removed: already,
                dry_run,
                seal: None,
            });
        }
        let mut conn = self.pool.acquire().await?;
        // A checkpoint of the whole log first, so the remaining events stay covered.
        self.sealer.checkpoint(&mut conn, None).await?;
        let sealed = self.sealer.checkpoint(&mut conn, Some(through)).await?;
        let removed: i64 = sqlx::query_scalar("SELECT audit_apply_retention($1)")
            .bind(through)
            .fetch_one(&mut *conn)
            .await?;
        Ok(AuditRetentionResult {
            through_id: Some(through),
            removed,
            dry_run,
            seal: sealed.map(|s| self.info_of(&s.statement)),
        })
    }
}

fn no_policy() -> Error {
    Error::not_found("no audit retention policy is set")
        .with_hint("set one with `pganalytics audit retention set --days N --allow-deletion`")
}

fn writer_gone() -> Error {
    Error::internal("the audit writer stopped; events cannot be recorded")
        .with_hint("see the log above for why; restart pganalytics")
}

pub async fn retention_policy(pool: &PgPool) -> Result<Option<AuditRetentionPolicy>> {
    let row = sqlx::query(
        "SELECT retention_days, archive_after_days, COALESCE(deletion_allowed, false) AS d,
                compliance_framework, created_at
         FROM audit_log_retention_policy ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(AuditRetentionPolicy {
            retention_days: r.try_get("retention_days")?,
            archive_after_days: r.try_get("archive_after_days")?,
            deletion_allowed: r.try_get("d")?,
            compliance_framework: r.try_get("compliance_framework")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .transpose()
}

pub async fn set_retention(
    pool: &PgPool,
    req: &AuditRetentionSetRequest,
) -> Result<AuditRetentionPolicy> {
    if req.retention_days < 1 {
        return Err(Error::invalid_input("retention must be at least 1 day"));
    }
    if let Some(f) = &req.compliance_framework {
        if !["GDPR", "HIPAA", "SOX", "PCI-DSS"].contains(&f.as_str()) {
            return Err(
                Error::invalid_input(format!("unknown compliance framework `{f}`"))
                    .with_hint("use GDPR, HIPAA, SOX or PCI-DSS"),
            );
        }
    }
    sqlx::query(
        "INSERT INTO audit_log_retention_policy (retention_days, archive_after_days,
             deletion_allowed, compliance_framework, created_at) VALUES ($1, $2, $3, $4, now())",
    )
    .bind(req.retention_days)
    .bind(req.archive_after_days)
    .bind(req.deletion_allowed.unwrap_or(false))
    .bind(&req.compliance_framework)
    .execute(pool)
    .await
    .map_err(|e| Error::invalid_input(format!("the retention policy was refused: {e}")))?;
    retention_policy(pool)
        .await?
        .ok_or_else(|| Error::internal("the retention policy just written is gone"))
}

/// Parse `rsa-2048` / `ed25519`.
pub fn parse_algorithm(text: Option<&str>) -> Result<Algorithm> {
    match text {
        None => Ok(Algorithm::Rsa2048),
        Some(t) => t.parse().map_err(|_| {
            Error::invalid_input(format!("unknown signature algorithm `{t}`"))
                .with_hint("use rsa-2048 (default) or ed25519")
        }),
    }
}
