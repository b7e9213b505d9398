//! `backup run`: one full backup from the server to a storage target.

use super::catalogue::{self, Archive, Catalogue, Encryption, Object};
use super::codec::{sha256_hex, Codec, Compression, DataKey};
use super::upload::{UploadSink, OBJECT_SIZE};
use super::{keys, record, wal_stream, BaseBackupOptions, BaseBackupResult, ReplicationConnection};
use crate::api::{BackupRunRequest, BackupSummary, CompressOn};
use crate::audit::keys::SigningKey;
use crate::data_dir::DataDir;
use crate::error::{Error, Result};
use crate::repository::Repository;
use crate::storage::layout;
use crate::storage::operator::Target;
use std::sync::Arc;

/// Receives bytes done and the server's estimate of the total, as a backup, verification or
/// restore goes on.
#[derive(Clone)]
pub struct Progress(Option<Arc<ProgressFn>>);

type ProgressFn = dyn Fn(u64, Option<u64>) + Send + Sync;

impl Progress {
    pub fn none() -> Progress {
        Progress(None)
    }

    pub fn new(f: impl Fn(u64, Option<u64>) + Send + Sync + 'static) -> Progress {
        Progress(Some(Arc::new(f)))
    }

    pub fn report(&self, done: u64, total: Option<u64>) {
        if let Some(f) = &self.0 {
            f(done, total);
        }
    }
}

/// Days a backup is kept by default (`backup prune` without `--keep-days`).
pub const DEFAULT_RETENTION_DAYS: i32 = 30;

/// The days `backup prune` keeps a backup: as asked, or the default; at least one.
pub fn retention_days(asked: Option<i32>) -> Result<i32> {
    let days = asked.unwrap_or(DEFAULT_RETENTION_DAYS);
    if days < 1 {
        return Err(Error::invalid_input(format!(
            "--retention-days must be at least 1, not {days}"
        )));
    }
    Ok(days)
}

/// Take one full backup of `req.server` into `req.storage`. The backup is `completed` only
/// once every object, the catalogue and its signature are stored; on any failure the row says
/// `failed` with the reason, and the objects written so far are removed (when the store can
/// still be reached; otherwise they stay without a catalogue, and `backup prune` removes them).
pub async fn run(
    repo: &Repository,
    data_dir: &DataDir,
    signer: Arc<SigningKey>,
    req: &BackupRunRequest,
    progress: &Progress,
) -> Result<BackupSummary> {
    let compression = Compression::parse(req.compress.as_deref())
        .map_err(|e| Error::invalid_input(e).with_hint("e.g. --compress zstd:3"))?;
    let retention_days = retention_days(req.retention_days)?;
    // Everything that can be refused is checked before anything is written.
    let key = if req.encrypt.unwrap_or(false) {
        Some(keys::load(data_dir).await?)
    } else {
        None
    };
    let (server_id, params) = crate::server::replication_params(repo, &req.server).await?;
    let storage = crate::storage::find(repo, &req.storage).await?;
    let target = Arc::new(crate::storage::open_target(&storage).await?);
    record::reap_interrupted(repo).await?;

    let mut conn = ReplicationConnection::connect(&params).await?;
    let identity = conn.identify_system().await?;
    let segment_size = wal_segment_size(&mut conn).await?;
    let server_compression = server_zstd(
        repo,
        (server_id, &req.server),
        conn.server_version_num(),
        compression,
        req.compress_on.unwrap_or_default(),
    )
    .await?;
    let sysid: u64 = identity.system_identifier.parse().map_err(|_| {
        Error::internal(format!(
            "the server's system identifier `{}` is not a number",
            identity.system_identifier
        ))
    })?;

    let id = uuid::Uuid::new_v4();
    let started_at = chrono::Utc::now();
    let name = format!("{}-{}", req.server, started_at.format("%Y%m%dT%H%M%SZ"));
    let backup_dir = layout::backup_dir(sysid, id);
    let data_key = key.as_ref().map(|_| DataKey::generate());
    let encryption = match (&key, &data_key) {
        (Some(k), Some(dk)) => Some(Encryption {
            algorithm: "aes-256-gcm".into(),
            key_fingerprint: k.fingerprint(),
            wrapped_data_key: k.wrap(dk, id)?,
        }),
        _ => None,
    };
    let codec = Codec::new(compression, data_key.as_ref());
    // The WAL connection and its slot before the row: a server without a free WAL sender or
    // slot refuses the backup before anything is recorded or written.
    let wal_conn = ReplicationConnection::connect(&params).await?;
    let wal = wal_stream::start(
        wal_conn,
        target.clone(),
        codec.clone(),
        backup_dir.clone(),
        segment_size,
    )
    .await?;
    let lock = record::start(
        repo,
        &record::NewBackup {
            id,
            name: &name,
            server_name: &req.server,
            server_id,
            storage_id: storage.id,
            destination_type: storage.kind.as_str(),
            destination_path: &format!("{}/{}", storage.url, backup_dir),
            compression: &compression.name(),
            encrypted: encryption.is_some(),
            key_fingerprint: encryption.as_ref().map(|e| e.key_fingerprint.as_str()),
            retention_days,
            system_identifier: &identity.system_identifier,
            server_version_num: conn.server_version_num(),
            started_at,
        },
    )
    .await?;

    let mut options = BaseBackupOptions::new(&name);
    options.fast_checkpoint = !req.spread_checkpoint.unwrap_or(false);
    options.include_wal = false;
    options.server_zstd = server_compression;
    let server_compressed = options.server_zstd.is_some();
    let taken = Taking {
        target: &target,
        backup_dir: &backup_dir,
        codec,
        progress,
    }
    .take(conn, wal, &options)
    .await;
    let outcome = match taken {
        Ok((result, archives, manifest, wal, files_bytes)) => {
            let catalogue = Catalogue {
                format: catalogue::FORMAT,
                backup_id: id,
                backup_type: "full".into(),
                parent_backup_id: None,
                label: name.clone(),
                server_name: req.server.clone(),
                system_identifier: identity.system_identifier.clone(),
                server_version_num: result.server_version_num,
                timeline: result.start_timeline,
                wal_start_segment: segment_name(
                    result.start_timeline,
                    &result.start_lsn,
                    segment_size,
                )?,
                wal_stop_segment: segment_name(result.end_timeline, &result.end_lsn, segment_size)?,
                start_lsn: result.start_lsn,
                stop_lsn: result.end_lsn,
                wal_segment_size: segment_size,
                started_at,
                completed_at: chrono::Utc::now(),
                compression: compression.name(),
                encryption,
                object_size: OBJECT_SIZE as u64,
                archives,
                manifest,
                wal,
                source_bytes: files_bytes.filter(|_| server_compressed),
                retention_days: Some(retention_days),
            };
            seal(repo, &target, &backup_dir, &catalogue, &signer).await
        }
        Err(e) => Err(e),
    };
    let result = match outcome {
        Ok(()) => record::get(repo, id).await,
        Err(e) => {
            let removed = match target.op.delete_with(&backup_dir).recursive(true).await {
                Ok(()) => "its objects were removed".to_string(),
                Err(r) => format!(
                    "its partial objects could not be removed ({}); they have no catalogue and `backup prune` removes them",
                    target.error("delete", &backup_dir, &r).message
                ),
            };
            let reason = format!("{}; {removed}", e.message);
            record::fail(repo, id, &reason).await?;
            Err(e)
        }
    };
    lock.release().await;
    result
}

/// What streaming one backup needs.
struct Taking<'a> {
    target: &'a Arc<Target>,
    backup_dir: &'a str,
    codec: Codec,
    progress: &'a Progress,
}

type Taken = (
    BaseBackupResult,
    Vec<Archive>,
    Object,
    Vec<Object>,
    Option<u64>,
);

impl Taking<'_> {
    /// `BASE_BACKUP` on `conn` into the upload pipeline, with the WAL streamed alongside on
    /// a second connection; returns once every object is stored.
    async fn take(
        self,
        mut conn: ReplicationConnection,
        wal: wal_stream::WalStreamer,
        options: &BaseBackupOptions,
    ) -> Result<Taken> {
        let mut sink = UploadSink::new(
            self.target.clone(),
            self.codec,
            self.backup_dir.to_string(),
            self.progress.clone(),
        );
        sink.notify_start(wal.start);
        let streamed = conn.base_backup_with(options, &mut sink).await;
        let result = match streamed {
            Ok(result) => result,
            Err(e) => {
                drop(conn);
                wal.task.abort();
                // The uploads' own error (a full disk, a store gone) is the cause when there
                // is one.
                return Err(sink.abort().await.unwrap_or(e));
            }
        };
        let _ = conn.close().await;
        let _ = wal.end.send(Some(wal_stream::parse_lsn(&result.end_lsn)?));
        let (archives, manifest, files_bytes) = match sink.finish().await {
            Ok(done) => done,
            Err(e) => {
                wal.task.abort();
                return Err(e);
            }
        };
        let segments = wal
            .task
            .await
            .map_err(|e| Error::internal(format!("the WAL streaming task failed: {e}")))??;
        Ok((result, archives, manifest, segments, files_bytes))
    }
}

/// The `COMPRESSION_DETAIL` to ask the server for, when zstd runs there: `compress_on`
/// allows it, the server speaks the 15+ syntax and its PostgreSQL was built with zstd (read
/// from `wal_compression`'s allowed values; any doubt means compressing here). Each archive
/// then arrives zstd-compressed, made on two workers, so the WAL sender moves a fraction of
/// the bytes and we only encrypt and hash (pg_basebackup on pgbench data: 0.73–0.90 s/GB
/// against 1.1–1.5 with one worker and 1.7 compressing on the client). `server` refuses,
/// before anything is recorded, a server that cannot; `client` keeps the server's CPUs free.
/// `auto` also compresses here when the server's previous backup barely compressed (see
/// [`compressed_poorly_last_time`]).
async fn server_zstd(
    repo: &Repository,
    (server_id, server): (uuid::Uuid, &str),
    server_version_num: u32,
    compression: Compression,
    compress_on: CompressOn,
) -> Result<Option<String>> {
    let Compression::Zstd(level) = compression else {
        if compress_on == CompressOn::Server {
            return Err(Error::invalid_input(
                "--compress-on server asks the server to compress, but --compress none turns compression off",
            )
            .with_hint("give --compress zstd (or zstd:LEVEL), or drop --compress-on"));
        }
        return Ok(None);
    };
    if compress_on == CompressOn::Client {
        return Ok(None);
    }
    let cannot = if !super::options::uses_new_syntax(server_version_num) {
        Some(format!(
            "it runs PostgreSQL {} (servers compress base backups from 15 on)",
            server_version_num / 10_000
        ))
    } else if !probe_zstd(repo, server).await {
        Some("its PostgreSQL was built without zstd (or could not be asked)".to_string())
    } else {
        None
    };
    match (cannot, compress_on) {
        (None, CompressOn::Auto) if compressed_poorly_last_time(repo, server_id).await? => Ok(None),
        (None, _) => Ok(Some(format!("level={level},workers=2"))),
        (Some(why), CompressOn::Server) => Err(Error::invalid_input(format!(
            "`{server}` cannot compress the backup itself: {why}"
        ))
        .with_hint("use --compress-on auto (compress here when the server cannot) or client")),
        (Some(_), _) => Ok(None),
    }
}

/// The source-to-stored ratio under which data counts as barely compressible: stored at more
/// than half its size.
const POOR_COMPRESSION_RATIO: f64 = 2.0;

/// Whether this server's newest completed compressed backup shrank by less than half. On
/// such data (random bytea, TOAST-compressed values, encrypted columns) the server's zstd
/// sends almost as many bytes as none and, measured on 2 cores, took 3.04 s for 1 GB where
/// compressing here took 2.43 s (on 1.6 GB of pgbench data, 3 % stored, the server wins: 2.23
/// against 2.50 s; docs/BENCHMARKS.md). A database's compressibility changes slowly, so the previous
/// backup is a fair guess; the first backup of a server lets the server compress.
async fn compressed_poorly_last_time(repo: &Repository, server_id: uuid::Uuid) -> Result<bool> {
    let ratio: Option<Option<f64>> = sqlx::query_scalar(
        "SELECT compression_ratio::float8 FROM backup_metadata
         WHERE server_id = $1 AND backup_status = 'completed' AND compression_type <> 'none'
         ORDER BY completed_at DESC LIMIT 1",
    )
    .bind(server_id)
    .fetch_optional(repo.pool())
    .await?;
    Ok(ratio.flatten().is_some_and(|r| r < POOR_COMPRESSION_RATIO))
}

async fn probe_zstd(repo: &Repository, server: &str) -> bool {
    let Ok(mut conn) = crate::server::connect(repo, server).await else {
        return false;
    };
    let has_zstd: Option<bool> = sqlx::query_scalar(
        "SELECT COALESCE('zstd' = ANY(enumvals), false) FROM pg_settings
         WHERE name = 'wal_compression'",
    )
    .fetch_optional(&mut conn)
    .await
    .ok()
    .flatten();
    let _ = sqlx::Connection::close(conn).await;
    has_zstd.unwrap_or(false)
}

/// Store the catalogue and its signature, then record the backup as completed.
async fn seal(
    repo: &Repository,
    target: &Target,
    backup_dir: &str,
    catalogue: &Catalogue,
    signer: &SigningKey,
) -> Result<()> {
    let bytes = catalogue
        .to_bytes()
        .map_err(|e| Error::internal(format!("serialize the catalogue: {e}")))?;
    let signature = catalogue::sign(&bytes, signer)
        .map_err(|e| Error::internal(format!("sign the catalogue: {e}")))?;
    let checksum = sha256_hex(&bytes);
    let sig_key = format!("{backup_dir}{}", layout::CATALOGUE_SIGNATURE);
    let cat_key = format!("{backup_dir}{}", layout::CATALOGUE);
    // The signature first: a catalogue is only ever visible with its signature beside it.
    target
        .write_once(&sig_key, signature)
        .await
        .map_err(|e| target.error("write", &sig_key, &e))?;
    target
        .write_once(&cat_key, bytes)
        .await
        .map_err(|e| target.error("write", &cat_key, &e))?;
    record::complete(
        repo,
        catalogue,
        &checksum,
        &signer.verifying_key().fingerprint(),
    )
    .await
}

async fn wal_segment_size(conn: &mut ReplicationConnection) -> Result<u64> {
    let rows = conn.simple_query("SHOW wal_segment_size").await?;
    let text = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default();
    parse_size(&text).ok_or_else(|| {
        Error::internal(format!(
            "the server's wal_segment_size `{text}` is not understood"
        ))
    })
}

/// `16MB`, `1GB`, `64kB` → bytes.
fn parse_size(text: &str) -> Option<u64> {
    let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: u64 = digits.parse().ok()?;
    let unit = match text[digits.len()..].trim() {
        "" | "B" => 1,
        "kB" => 1024,
        "MB" => 1024 * 1024,
        "GB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    Some(n * unit)
}

/// PostgreSQL's name of the WAL segment holding `lsn` on `timeline`.
pub fn segment_name(timeline: u32, lsn: &str, segment_size: u64) -> Result<String> {
    let (hi, lo) = lsn
        .split_once('/')
        .ok_or_else(|| Error::internal(format!("`{lsn}` is not an LSN")))?;
    let parse = |s: &str| {
        u64::from_str_radix(s, 16).map_err(|_| Error::internal(format!("`{lsn}` is not an LSN")))
    };
    let pos = (parse(hi)? << 32) | parse(lo)?;
    let segno = pos / segment_size;
    let per_id = 0x1_0000_0000u64 / segment_size;
    Ok(format!(
        "{timeline:08X}{:08X}{:08X}",
        segno / per_id,
        segno % per_id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names() {
        assert_eq!(
            segment_name(1, "0/2000028", 16 << 20).unwrap(),
            "000000010000000000000002"
        );
        assert_eq!(
            segment_name(3, "1/FF000000", 16 << 20).unwrap(),
            "0000000300000001000000FF"
        );
        assert_eq!(
            segment_name(1, "0/40000000", 1 << 30).unwrap(),
            "000000010000000000000001"
        );
        assert_eq!(parse_size("16MB"), Some(16 << 20));
        assert_eq!(parse_size("1GB"), Some(1 << 30));
    }
}
