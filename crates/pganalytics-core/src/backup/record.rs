//! The repository's record of backups (`backup_metadata`) and restores
//! (`restore_operations`).
//!
//! A running backup holds a session advisory lock on its id for as long as its process lives.
//! A `running` row whose lock is free belongs to a process that died (`kill -9`, a crash, a
//! power cut): [`reap_interrupted`] marks it `failed`, so nothing stays "running" forever and
//! nothing half-written is ever listed as good.

use super::catalogue::Catalogue;
use crate::api::{
    BackupArchiveInfo, BackupDetail, BackupKeyUse, BackupListRequest, BackupStatus, BackupSummary,
    CompressOn, RestoreSummary,
};
use crate::error::{Error, Result};
use crate::repository::Repository;
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Row};

/// The advisory-lock key of a backup (its id's first 8 bytes) in its own lock space.
fn lock_key(id: uuid::Uuid) -> i64 {
    let b = id.as_bytes();
    i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Holds the backup's advisory lock on a connection of its own until dropped.
pub struct RunningLock {
    conn: Option<PoolConnection<Postgres>>,
    key: i64,
}

impl RunningLock {
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut *conn)
                .await;
        }
    }
}

impl Drop for RunningLock {
    fn drop(&mut self) {
        // A connection returned to the pool still holding the lock would make the row look
        // alive: close it instead.
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

/// What a new backup row says before anything is written.
pub struct NewBackup<'a> {
    pub id: uuid::Uuid,
    pub name: &'a str,
    pub server_name: &'a str,
    pub server_id: uuid::Uuid,
    pub storage_id: uuid::Uuid,
    pub destination_type: &'a str,
    pub destination_path: &'a str,
    pub compression: &'a str,
    pub encrypted: bool,
    pub key_fingerprint: Option<&'a str>,
    pub retention_days: i32,
    pub system_identifier: &'a str,
    pub server_version_num: u32,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

/// Take the advisory lock of a backup or restore on a connection of its own.
async fn lock(repo: &Repository, id: uuid::Uuid) -> Result<RunningLock> {
    let mut conn = repo.pool().acquire().await?;
    let key = lock_key(id);
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(RunningLock {
        conn: Some(conn),
        key,
    })
}

/// Whether nobody holds the lock of `id` (its process is gone).
async fn lock_is_free(repo: &Repository, id: uuid::Uuid) -> Result<bool> {
    let mut conn = repo.pool().acquire().await?;
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(lock_key(id))
        .fetch_one(&mut *conn)
        .await?;
    if free {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(lock_key(id))
            .execute(&mut *conn)
            .await?;
    }
    Ok(free)
}

/// Insert the `running` row and take its lock.
pub async fn start(repo: &Repository, b: &NewBackup<'_>) -> Result<RunningLock> {
    let lock = lock(repo, b.id).await?;
    sqlx::query(
        "INSERT INTO backup_metadata (id, backup_name, backup_type, backup_status, source_database,
             compression_type, encrypted, encryption_algorithm, retention_days, destination_type,
             destination_path, created_at, server_id, storage_target_id, started_at,
             system_identifier, server_version_num, key_fingerprint)
         VALUES ($1, $2, 'full', 'running', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $10, $13, $14, $15)",
    )
    .bind(b.id)
    .bind(b.name)
    .bind(b.server_name)
    .bind(b.compression)
    .bind(b.encrypted)
    .bind(b.encrypted.then_some("aes-256-gcm"))
    .bind(b.retention_days)
    .bind(b.destination_type)
    .bind(b.destination_path)
    .bind(b.started_at)
    .bind(b.server_id)
    .bind(b.storage_id)
    .bind(b.system_identifier)
    .bind(b.server_version_num as i32)
    .bind(b.key_fingerprint)
    .execute(repo.pool())
    .await?;
    Ok(lock)
}

/// What the repository keeps of a completed backup besides the catalogue's fields: sizes,
/// ratio, where zstd ran and, per archive, its sizes and object count (the catalogue keeps
/// every object).
struct Recorded {
    raw: i64,
    stored: i64,
    ratio: f64,
    compressed_on: Option<&'static str>,
    archives: serde_json::Value,
}

/// `backup_metadata.compressed_on` ↔ [`CompressOn`] (only `server` and `client` are stored).
fn compressed_on_text(on: Option<CompressOn>) -> Option<&'static str> {
    match on? {
        CompressOn::Server => Some("server"),
        CompressOn::Client => Some("client"),
        CompressOn::Auto => None,
    }
}

fn compressed_on_of(text: Option<&str>) -> Option<CompressOn> {
    match text? {
        "server" => Some(CompressOn::Server),
        "client" => Some(CompressOn::Client),
        _ => None,
    }
}

impl Recorded {
    fn of(catalogue: &Catalogue) -> Result<Recorded> {
        let raw = catalogue.raw_bytes() as i64;
        let stored = catalogue.stored_bytes() as i64;
        let ratio = if stored > 0 {
            (raw as f64 / stored as f64 * 100.0).round() / 100.0
        } else {
            1.0
        };
        let archives: Vec<BackupArchiveInfo> = catalogue
            .archives
            .iter()
            .map(|a| BackupArchiveInfo {
                name: a.name.clone(),
                tablespace_oid: a.tablespace_oid,
                location: a.location.clone(),
                raw_bytes: a.raw_bytes,
                stored_bytes: a.objects.iter().map(|o| o.stored_bytes).sum(),
                objects: a.objects.len(),
            })
            .collect();
        let archives = serde_json::to_value(archives)
            .map_err(|e| Error::internal(format!("serialize archives: {e}")))?;
        Ok(Recorded {
            raw,
            stored,
            ratio,
            compressed_on: compressed_on_text(catalogue.compressed_on()),
            archives,
        })
    }
}

/// Record a completed backup: only called once the catalogue and its signature are stored.
pub async fn complete(
    repo: &Repository,
    catalogue: &Catalogue,
    checksum: &str,
    signed_by: &str,
) -> Result<()> {
    let Recorded {
        raw,
        stored,
        ratio,
        compressed_on,
        archives,
    } = Recorded::of(catalogue)?;
    let done = sqlx::query(
        "UPDATE backup_metadata SET backup_status = 'completed', source_size_bytes = $2,
             compressed_size_bytes = $3, compression_ratio = $4::float8::numeric, checksum = $5,
             completed_at = $6, start_lsn = $7::pg_lsn, stop_lsn = $8::pg_lsn, timeline_id = $9,
             wal_start_segment = $10, wal_stop_segment = $11, archives = $12, signed_by = $13,
             compressed_on = $14
         WHERE id = $1 AND backup_status = 'running'",
    )
    .bind(catalogue.backup_id)
    .bind(raw)
    .bind(stored)
    .bind(ratio)
    .bind(checksum)
    .bind(catalogue.completed_at)
    .bind(&catalogue.start_lsn)
    .bind(&catalogue.stop_lsn)
    .bind(catalogue.timeline as i32)
    .bind(&catalogue.wal_start_segment)
    .bind(&catalogue.wal_stop_segment)
    .bind(archives)
    .bind(signed_by)
    .bind(compressed_on)
    .execute(repo.pool())
    .await?;
    if done.rows_affected() != 1 {
        return Err(Error::internal(format!(
            "backup {} was no longer running when it completed (marked failed meanwhile?); it is not recorded as good",
            catalogue.backup_id
        ))
        .with_hint("run the backup again; `backup prune` removes the objects of this one"));
    }
    Ok(())
}

/// A backup found in a storage target, to be recorded as completed (`backup import`).
pub struct Imported<'a> {
    pub catalogue: &'a Catalogue,
    /// SHA-256 of `catalogue.json` as stored.
    pub checksum: &'a str,
    pub signed_by: &'a str,
    pub server_id: Option<uuid::Uuid>,
    pub storage_id: uuid::Uuid,
    pub destination_type: &'a str,
    pub destination_path: &'a str,
    pub retention_days: i32,
}

/// Record an imported backup as completed, from its verified catalogue, in one statement.
pub async fn insert_imported(repo: &Repository, b: &Imported<'_>) -> Result<()> {
    let c = b.catalogue;
    let Recorded {
        raw,
        stored,
        ratio,
        compressed_on,
        archives,
    } = Recorded::of(c)?;
    let encryption = c.encryption.as_ref();
    sqlx::query(
        "INSERT INTO backup_metadata (id, backup_name, backup_type, backup_status, source_database,
             source_size_bytes, compressed_size_bytes, compression_ratio, compression_type,
             encrypted, encryption_algorithm, checksum, retention_days, destination_type,
             destination_path, created_at, server_id, storage_target_id, started_at, completed_at,
             start_lsn, stop_lsn, timeline_id, wal_start_segment, wal_stop_segment,
             system_identifier, server_version_num, key_fingerprint, archives, signed_by,
             compressed_on)
         VALUES ($1, $2, $3, 'completed', $4, $5, $6, $7::float8::numeric, $8, $9, $10, $11, $12,
             $13, $14, $15, $16, $17, $15, $18, $19::pg_lsn, $20::pg_lsn, $21, $22, $23, $24, $25,
             $26, $27, $28, $29)",
    )
    .bind(c.backup_id)
    .bind(&c.label)
    .bind(&c.backup_type)
    .bind(&c.server_name)
    .bind(raw)
    .bind(stored)
    .bind(ratio)
    .bind(&c.compression)
    .bind(encryption.is_some())
    .bind(encryption.map(|e| e.algorithm.as_str()))
    .bind(b.checksum)
    .bind(b.retention_days)
    .bind(b.destination_type)
    .bind(b.destination_path)
    .bind(c.started_at)
    .bind(b.server_id)
    .bind(b.storage_id)
    .bind(c.completed_at)
    .bind(&c.start_lsn)
    .bind(&c.stop_lsn)
    .bind(c.timeline as i32)
    .bind(&c.wal_start_segment)
    .bind(&c.wal_stop_segment)
    .bind(&c.system_identifier)
    .bind(c.server_version_num as i32)
    .bind(encryption.map(|e| e.key_fingerprint.as_str()))
    .bind(archives)
    .bind(b.signed_by)
    .bind(compressed_on)
    .execute(repo.pool())
    .await?;
    Ok(())
}

pub async fn fail(repo: &Repository, id: uuid::Uuid, reason: &str) -> Result<()> {
    sqlx::query(
        "UPDATE backup_metadata SET backup_status = 'failed', failure_reason = $2, completed_at = now()
         WHERE id = $1 AND backup_status = 'running'",
    )
    .bind(id)
    .bind(reason)
    .execute(repo.pool())
    .await?;
    Ok(())
}

/// Mark `running` backups whose process is gone as failed.
pub async fn reap_interrupted(repo: &Repository) -> Result<u64> {
    let ids: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM backup_metadata WHERE backup_status = 'running'")
            .fetch_all(repo.pool())
            .await?;
    let mut reaped = 0;
    for id in ids {
        if lock_is_free(repo, id).await? {
            fail(
                repo,
                id,
                "interrupted: the process taking the backup ended before it completed; \
                 its partial objects have no catalogue and are removed by `backup prune`",
            )
            .await?;
            reaped += 1;
        }
    }
    Ok(reaped)
}

const SUMMARY_COLUMNS: &str = "b.id, b.backup_name, b.backup_type, b.backup_status, s.name AS server,
    t.name AS storage, b.destination_path, b.source_size_bytes, b.compressed_size_bytes,
    b.compression_ratio::float8 AS ratio, b.compression_type, b.encrypted, b.verified, b.verified_at,
    b.retention_days, b.started_at, b.completed_at, b.start_lsn::text AS start_lsn,
    b.stop_lsn::text AS stop_lsn, b.timeline_id, b.server_version_num, b.system_identifier,
    b.rto_seconds, b.checksum, b.failure_reason, b.compressed_on";

const SUMMARY_FROM: &str = "backup_metadata b
    LEFT JOIN monitored_servers s ON s.id = b.server_id
    LEFT JOIN storage_targets t ON t.id = b.storage_target_id";

fn summary(row: &sqlx::postgres::PgRow) -> Result<BackupSummary> {
    let status: String = row.try_get("backup_status")?;
    let started: Option<chrono::DateTime<chrono::Utc>> = row.try_get("started_at")?;
    let completed: Option<chrono::DateTime<chrono::Utc>> = row.try_get("completed_at")?;
    Ok(BackupSummary {
        id: row.try_get("id")?,
        name: row.try_get("backup_name")?,
        backup_type: row.try_get("backup_type")?,
        status: BackupStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("unknown backup status `{status}`")))?,
        server: row.try_get("server")?,
        storage: row.try_get("storage")?,
        destination: row.try_get("destination_path")?,
        source_size_bytes: row.try_get("source_size_bytes")?,
        stored_size_bytes: row.try_get("compressed_size_bytes")?,
        compression_ratio: row.try_get("ratio")?,
        compression: row.try_get("compression_type")?,
        compressed_on: compressed_on_of(row.try_get::<Option<&str>, _>("compressed_on")?),
        encrypted: row
            .try_get::<Option<bool>, _>("encrypted")?
            .unwrap_or(false),
        verified: row.try_get::<Option<bool>, _>("verified")?.unwrap_or(false),
        verified_at: row.try_get("verified_at")?,
        retention_days: row.try_get("retention_days")?,
        started_at: started,
        completed_at: completed,
        duration_seconds: match (started, completed) {
            (Some(s), Some(c)) => Some((c - s).num_milliseconds() as f64 / 1000.0),
            _ => None,
        },
        start_lsn: row.try_get("start_lsn")?,
        stop_lsn: row.try_get("stop_lsn")?,
        timeline: row.try_get("timeline_id")?,
        server_version_num: row.try_get("server_version_num")?,
        system_identifier: row.try_get("system_identifier")?,
        rto_seconds: row.try_get("rto_seconds")?,
        checksum: row.try_get("checksum")?,
        failure_reason: row.try_get("failure_reason")?,
    })
}

pub async fn list(repo: &Repository, req: &BackupListRequest) -> Result<Vec<BackupSummary>> {
    reap_interrupted(repo).await?;
    if let Some(server) = &req.server {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM monitored_servers WHERE name = $1)")
                .bind(server)
                .fetch_one(repo.pool())
                .await?;
        if !known {
            return Err(Error::not_found(format!("no server named `{server}`"))
                .with_hint("`pganalytics server list` shows the registered servers"));
        }
    }
    let rows = sqlx::query(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM {SUMMARY_FROM}
         WHERE ($1::text IS NULL OR s.name = $1) AND ($2 OR b.backup_status <> 'deleted')
         ORDER BY b.created_at DESC"
    ))
    .bind(&req.server)
    .bind(req.include_deleted.unwrap_or(false))
    .fetch_all(repo.pool())
    .await?;
    rows.iter().map(summary).collect()
}

/// Completed, not pruned, encrypted backups by the fingerprint of the key that wraps their
/// data key, most backups first.
pub async fn key_uses(repo: &Repository) -> Result<Vec<BackupKeyUse>> {
    reap_interrupted(repo).await?;
    let rows: Vec<(Option<String>, i64, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(
        "SELECT key_fingerprint, count(*), max(completed_at) FROM backup_metadata
         WHERE backup_status = 'completed' AND encrypted
         GROUP BY key_fingerprint ORDER BY count(*) DESC, key_fingerprint",
    )
    .fetch_all(repo.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(fingerprint, backups, newest)| BackupKeyUse {
            fingerprint: fingerprint.unwrap_or_else(|| "unknown".into()),
            backups,
            newest,
        })
        .collect())
}

pub async fn get(repo: &Repository, id: uuid::Uuid) -> Result<BackupSummary> {
    let row = sqlx::query(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM {SUMMARY_FROM} WHERE b.id = $1"
    ))
    .bind(id)
    .fetch_optional(repo.pool())
    .await?;
    match row {
        Some(row) => summary(&row),
        None => Err(Error::not_found(format!("no backup {id}"))
            .with_hint("`pganalytics backup list` shows the backups")),
    }
}

/// The storage target a backup is in.
pub async fn storage_id(repo: &Repository, id: uuid::Uuid) -> Result<Option<uuid::Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT storage_target_id FROM backup_metadata WHERE id = $1")
            .bind(id)
            .fetch_optional(repo.pool())
            .await?
            .flatten(),
    )
}

pub async fn detail(repo: &Repository, id: uuid::Uuid) -> Result<BackupDetail> {
    reap_interrupted(repo).await?;
    let backup = get(repo, id).await?;
    let row = sqlx::query(
        "SELECT archives, wal_start_segment, wal_stop_segment, key_fingerprint, signed_by
         FROM backup_metadata WHERE id = $1",
    )
    .bind(id)
    .fetch_one(repo.pool())
    .await?;
    let archives: Option<serde_json::Value> = row.try_get("archives")?;
    let archives = match archives {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| Error::internal(format!("backup archives unreadable: {e}")))?,
        None => Vec::new(),
    };
    Ok(BackupDetail {
        backup,
        archives,
        wal_start_segment: row.try_get("wal_start_segment")?,
        wal_stop_segment: row.try_get("wal_stop_segment")?,
        key_fingerprint: row.try_get("key_fingerprint")?,
        signed_by: row.try_get("signed_by")?,
        restores: restores(repo, id).await?,
    })
}

/// Record a verification's verdict, made now or (`at`, from a verification record in the
/// store) then; returns when, or `None` when the backup is not on record.
pub async fn set_verified(
    repo: &Repository,
    id: uuid::Uuid,
    intact: bool,
    rto_seconds: Option<i32>,
    at: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "UPDATE backup_metadata SET verified = $2, verified_at = COALESCE($4, now()),
             rto_seconds = COALESCE($3, rto_seconds)
         WHERE id = $1
         RETURNING verified_at",
    )
    .bind(id)
    .bind(intact)
    .bind(rto_seconds)
    .bind(at)
    .fetch_optional(repo.pool())
    .await?
    .flatten())
}

pub async fn mark_deleted(repo: &Repository, id: uuid::Uuid) -> Result<()> {
    sqlx::query("UPDATE backup_metadata SET backup_status = 'deleted' WHERE id = $1")
        .bind(id)
        .execute(repo.pool())
        .await?;
    Ok(())
}

fn restore_summary(row: &sqlx::postgres::PgRow) -> Result<RestoreSummary> {
    let started: chrono::DateTime<chrono::Utc> = row.try_get("started_at")?;
    let dirs: Option<serde_json::Value> = row.try_get("tablespace_dirs")?;
    let duration_ms: Option<i64> = row.try_get("duration_ms")?;
    Ok(RestoreSummary {
        id: row.try_get("id")?,
        backup_id: row.try_get("backup_id")?,
        status: row.try_get("restore_status")?,
        target_dir: row.try_get("target_dir")?,
        tablespace_dirs: dirs
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
        started_at: started,
        completed_at: row.try_get("completed_at")?,
        duration_seconds: duration_ms.map(|ms| ms as f64 / 1000.0),
        bytes_restored: row
            .try_get::<Option<i64>, _>("bytes_restored")?
            .unwrap_or(0)
            .max(0) as u64,
        started_port: row
            .try_get::<Option<i32>, _>("started_port")?
            .and_then(|p| u16::try_from(p).ok()),
        failure_reason: row.try_get("failure_reason")?,
    })
}

const RESTORE_COLUMNS: &str = "id, backup_id, restore_status, target_dir, tablespace_dirs,
    started_at, completed_at, duration_ms, bytes_restored, started_port, failure_reason";

pub async fn restores(repo: &Repository, backup_id: uuid::Uuid) -> Result<Vec<RestoreSummary>> {
    reap_interrupted_restores(repo).await?;
    let rows = sqlx::query(&format!(
        "SELECT {RESTORE_COLUMNS} FROM restore_operations WHERE backup_id = $1 ORDER BY started_at DESC"
    ))
    .bind(backup_id)
    .fetch_all(repo.pool())
    .await?;
    rows.iter().map(restore_summary).collect()
}

/// Insert the `running` restore row and take its lock (like a backup's: a restore whose
/// process died is found by its free lock).
pub async fn restore_started(
    repo: &Repository,
    backup_id: uuid::Uuid,
    server_name: &str,
    target_dir: &str,
) -> Result<(uuid::Uuid, RunningLock)> {
    let id = uuid::Uuid::new_v4();
    let lock = lock(repo, id).await?;
    sqlx::query(
        "INSERT INTO restore_operations (id, backup_id, target_database, restore_status, started_at, target_dir)
         VALUES ($1, $2, $3, 'running', now(), $4)",
    )
    .bind(id)
    .bind(backup_id)
    .bind(server_name)
    .bind(target_dir)
    .execute(repo.pool())
    .await?;
    Ok((id, lock))
}

/// Mark `running` restores whose process is gone as failed.
pub async fn reap_interrupted_restores(repo: &Repository) -> Result<()> {
    let ids: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM restore_operations WHERE restore_status = 'running'")
            .fetch_all(repo.pool())
            .await?;
    for id in ids {
        if lock_is_free(repo, id).await? {
            sqlx::query(
                "UPDATE restore_operations SET restore_status = 'failed', completed_at = now(),
                     failure_reason = 'interrupted: the process restoring ended before it finished; the target folder may hold a partial restore: empty it before using it'
                 WHERE id = $1 AND restore_status = 'running'",
            )
            .bind(id)
            .execute(repo.pool())
            .await?;
        }
    }
    Ok(())
}

/// Record how a restore ended; returns the row.
pub async fn restore_finished(
    repo: &Repository,
    id: uuid::Uuid,
    outcome: std::result::Result<(u64, Vec<String>, Option<u16>), &str>,
    duration_ms: i64,
) -> Result<RestoreSummary> {
    let row = match outcome {
        Ok((bytes, dirs, port)) => {
            sqlx::query(&format!(
                "UPDATE restore_operations SET restore_status = 'completed', completed_at = now(),
                 duration_ms = $2, bytes_restored = $3, tablespace_dirs = $4, started_port = $5
             WHERE id = $1 RETURNING {RESTORE_COLUMNS}"
            ))
            .bind(id)
            .bind(duration_ms)
            .bind(bytes as i64)
            .bind(serde_json::json!(dirs))
            .bind(port.map(i32::from))
            .fetch_one(repo.pool())
            .await?
        }
        Err(reason) => {
            sqlx::query(&format!(
                "UPDATE restore_operations SET restore_status = 'failed', completed_at = now(),
                 duration_ms = $2, failure_reason = $3
             WHERE id = $1 RETURNING {RESTORE_COLUMNS}"
            ))
            .bind(id)
            .bind(duration_ms)
            .bind(reason)
            .fetch_one(repo.pool())
            .await?
        }
    };
    restore_summary(&row)
}
