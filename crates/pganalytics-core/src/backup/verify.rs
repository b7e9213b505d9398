//! `backup verify`: the catalogue (checksum recorded in the repository, signature), then every
//! object (present, size, SHA-256, GCM tag, zstd frame), then every file inside the archives
//! against the server's own `backup_manifest` (size and checksum), changing none of them.
//! `--restore-test` then restores into a temporary folder, starts the server, reads its
//! catalogs, stops it and removes it; the measured time is the backup's `rto_seconds`.
//!
//! The verdict is recorded in the repository and, signed, beside the backup in the store (see
//! [`super::verification_record`]) when this installation holds the signing key; a store that
//! refuses the write costs a warning, not the verification.

use super::catalogue::Catalogue;
use super::download::{self, Opened, Prefetch};
use super::engine::Progress;
use super::record;
use super::verification_record::{self, VerificationRecord};
use super::wal_stream;
use crate::api::{BackupProblem, BackupVerification, BackupVerifyRequest};
use crate::audit::keys::{SigningKey, VerifyingKey};
use crate::data_dir::DataDir;
use crate::error::{Error, Result};
use crate::repository::Repository;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

const MAX_PROBLEMS: usize = 100;

pub async fn verify(
    repo: &Repository,
    data_dir: &DataDir,
    public_key: Result<VerifyingKey>,
    signer: Option<Arc<SigningKey>>,
    req: &BackupVerifyRequest,
    progress: &Progress,
) -> Result<BackupVerification> {
    let started = Instant::now();
    let mut report = BackupVerification {
        backup_id: req.id,
        intact: true,
        objects_checked: 0,
        bytes_checked: 0,
        manifest_files_checked: 0,
        problems: Vec::new(),
        restore_test_seconds: None,
        seconds: 0.0,
    };
    let opened = match download::open(repo, data_dir, public_key.as_ref(), req.id).await {
        Ok(o) => o,
        Err(Ok(problem)) => {
            report.problems.push(problem);
            return Ok(finish(repo, report, started, None).await?.0);
        }
        Err(Err(e)) => return Err(e),
    };
    check_objects(&opened, &mut report, progress).await?;
    let mut rto = None;
    if report.problems.is_empty() && req.restore_test.unwrap_or(false) {
        let seconds = restore_test(repo, &opened).await?;
        report.restore_test_seconds = Some(seconds);
        rto = Some(seconds.ceil() as i32);
    }
    let (report, verified_at) = finish(repo, report, started, rto).await?;
    if let (Some(signer), Some(at)) = (signer, verified_at) {
        if let Err(e) = keep_in_store(&opened, &report, at, &signer).await {
            tracing::warn!(
                backup = %report.backup_id,
                "the verification's result was not kept beside the backup (a later `backup import` will not know it): {e}"
            );
        }
    }
    Ok(report)
}

async fn finish(
    repo: &Repository,
    mut report: BackupVerification,
    started: Instant,
    rto: Option<i32>,
) -> Result<(BackupVerification, Option<chrono::DateTime<chrono::Utc>>)> {
    report.problems.truncate(MAX_PROBLEMS);
    report.intact = report.problems.is_empty();
    report.seconds = started.elapsed().as_secs_f64();
    let at = record::set_verified(repo, report.backup_id, report.intact, rto, None).await?;
    Ok((report, at))
}

/// The signed verification record, beside the catalogue it checked.
async fn keep_in_store(
    opened: &Opened,
    report: &BackupVerification,
    verified_at: chrono::DateTime<chrono::Utc>,
    signer: &SigningKey,
) -> Result<()> {
    let record = VerificationRecord {
        backup_id: report.backup_id,
        catalogue_sha256: opened.summary.checksum.clone().unwrap_or_default(),
        intact: report.intact,
        verified_at,
        objects_checked: report.objects_checked as u64,
        bytes_checked: report.bytes_checked,
        manifest_files_checked: report.manifest_files_checked as u64,
        restore_test_seconds: report.restore_test_seconds,
    };
    verification_record::store(&opened.target, &opened.dir, &record, signer).await
}

/// A file of the server's manifest: size and checksum.
struct ManifestFile {
    size: u64,
    algorithm: String,
    checksum: String,
}

fn parse_manifest(bytes: &[u8]) -> std::result::Result<HashMap<String, ManifestFile>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the manifest is not UTF-8".to_string())?;
    // The manifest's own checksum covers everything before its line.
    let at = text
        .rfind("\"Manifest-Checksum\"")
        .ok_or("the manifest has no Manifest-Checksum")?;
    let line_start = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let recorded = doc["Manifest-Checksum"].as_str().unwrap_or_default();
    if hex::encode(Sha256::digest(&bytes[..line_start])) != recorded.to_ascii_lowercase() {
        return Err("the manifest's own checksum does not match its contents".into());
    }
    let mut files = HashMap::new();
    for f in doc["Files"]
        .as_array()
        .ok_or("the manifest lists no files")?
    {
        let path = match (f["Path"].as_str(), f["Encoded-Path"].as_str()) {
            (Some(p), _) => p.to_string(),
            (None, Some(hexed)) => hex::decode(hexed)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or("an Encoded-Path is not hex UTF-8")?,
            _ => return Err("a manifest entry has no path".into()),
        };
        files.insert(
            path,
            ManifestFile {
                size: f["Size"].as_u64().unwrap_or(0),
                algorithm: f["Checksum-Algorithm"]
                    .as_str()
                    .unwrap_or("NONE")
                    .to_string(),
                checksum: f["Checksum"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
            },
        );
    }
    Ok(files)
}

/// A regular file read from an archive: its size and checksum (in the manifest's algorithm
/// for that file, as PostgreSQL prints it).
type ReadFiles = Vec<(String, u64, String)>;

fn read_archive(
    reader: Box<dyn std::io::Read + Send>,
    prefix: String,
    manifest: Arc<HashMap<String, ManifestFile>>,
) -> std::io::Result<ReadFiles> {
    let mut tar = tar::Archive::new(reader);
    let mut out = Vec::new();
    for entry in tar.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = format!("{prefix}{}", entry.path()?.display());
        let algorithm = manifest.get(&path).map(|f| f.algorithm.as_str());
        let (size, checksum) = match algorithm {
            Some("SHA256") => {
                let mut hasher = Sha256::new();
                let size = std::io::copy(&mut entry, &mut hasher)?;
                (size, hex::encode(hasher.finalize()))
            }
            Some("CRC32C") => {
                let mut crc = Crc32c(0);
                let size = std::io::copy(&mut entry, &mut crc)?;
                // PostgreSQL prints the CRC's bytes in memory order (little-endian here).
                (size, hex::encode(crc.0.to_le_bytes()))
            }
            _ => (
                std::io::copy(&mut entry, &mut std::io::sink())?,
                String::new(),
            ),
        };
        out.push((path, size, checksum));
    }
    // Drain what follows the end-of-archive blocks so the sender never blocks.
    let mut rest = tar.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink())?;
    Ok(out)
}

/// CRC-32C as an `io::Write`.
struct Crc32c(u32);

impl std::io::Write for Crc32c {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = crc32c::crc32c_append(self.0, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn check_objects(
    opened: &Opened,
    report: &mut BackupVerification,
    progress: &Progress,
) -> Result<()> {
    let total = opened.catalogue.stored_bytes();
    let mut done = 0u64;
    // The manifest first: the archives' files are compared with it as they stream.
    let mut fetch = Prefetch::new(opened, vec![opened.catalogue.manifest.clone()]);
    let mut manifest: Option<Arc<HashMap<String, ManifestFile>>> = None;
    if let Some((object, fetched)) = fetch.next().await {
        report.objects_checked += 1;
        done += object.stored_bytes;
        match fetched {
            Ok(bytes) => match parse_manifest(&bytes) {
                Ok(m) => manifest = Some(Arc::new(m)),
                Err(e) => report.problems.push(BackupProblem {
                    object: object.key.clone(),
                    problem: "manifest_mismatch".into(),
                    detail: e,
                }),
            },
            Err(Ok(p)) => report.problems.push(p),
            Err(Err(e)) => return Err(e),
        }
    }
    let mut seen = HashMap::new();
    for archive in &opened.catalogue.archives {
        let prefix = match archive.tablespace_oid {
            Some(oid) => format!("pg_tblspc/{oid}/"),
            None => String::new(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
        let p = prefix.clone();
        let m = manifest.clone().unwrap_or_default();
        let name = archive.name.clone();
        let reader = tokio::task::spawn_blocking(move || {
            read_archive(download::archive_reader(rx, &name)?, p, m)
        });
        let mut tx = Some(tx);
        let mut fetch = Prefetch::new(opened, archive.objects.clone());
        while let Some((object, fetched)) = fetch.next().await {
            report.objects_checked += 1;
            done += object.stored_bytes;
            report.bytes_checked += object.stored_bytes;
            progress.report(done, Some(total));
            match fetched {
                Ok(bytes) => {
                    if let Some(sender) = &tx {
                        if sender.send(bytes).await.is_err() {
                            tx = None;
                        }
                    }
                }
                Err(Ok(p)) => {
                    report.problems.push(p);
                    // The archive's stream has a hole: its files cannot be checked further.
                    tx = None;
                }
                Err(Err(e)) => return Err(e),
            }
        }
        let complete = tx.is_some();
        drop(tx);
        let files = reader
            .await
            .map_err(|e| Error::internal(format!("archive reader failed: {e}")))?;
        match files {
            Ok(files) => {
                for (path, size, sha) in files {
                    seen.insert(path, (size, sha));
                }
            }
            Err(e) if complete => report.problems.push(BackupProblem {
                object: format!("{}/{}", archive.name, prefix),
                problem: "undecodable".into(),
                detail: format!(
                    "the archive {} is not a readable tar stream: {e}",
                    archive.name
                ),
            }),
            Err(_) => {}
        }
    }
    let mut fetch = Prefetch::new(opened, opened.catalogue.wal.clone());
    while let Some((object, fetched)) = fetch.next().await {
        report.objects_checked += 1;
        done += object.stored_bytes;
        report.bytes_checked += object.stored_bytes;
        progress.report(done, Some(total));
        match fetched {
            Ok(bytes) if bytes.len() as u64 != opened.catalogue.wal_segment_size => {
                report.problems.push(BackupProblem {
                    object: object.key.clone(),
                    problem: "size_mismatch".into(),
                    detail: format!("a WAL segment of {} bytes", bytes.len()),
                })
            }
            Ok(_) => {}
            Err(Ok(p)) => report.problems.push(p),
            Err(Err(e)) => return Err(e),
        }
    }
    wal_coverage(&opened.catalogue, report)?;
    if let Some(manifest) = manifest {
        if report.problems.is_empty() {
            compare(&manifest, &seen, report);
        }
    }
    Ok(())
}

/// Every segment from the one holding the start position to the one holding the last byte
/// before the end position must be in the catalogue.
fn wal_coverage(catalogue: &Catalogue, report: &mut BackupVerification) -> Result<()> {
    if catalogue.wal.is_empty() {
        // Taken with the WAL inside base.tar (`BASE_BACKUP ... WAL`); the signed catalogue
        // says so by listing none.
        return Ok(());
    }
    let size = catalogue.wal_segment_size.max(1);
    let first = wal_stream::parse_lsn(&catalogue.start_lsn)? / size;
    let last = wal_stream::parse_lsn(&catalogue.stop_lsn)?.saturating_sub(1) / size;
    let have: std::collections::HashSet<&str> = catalogue
        .wal
        .iter()
        .filter_map(|o| o.key.rsplit('/').next())
        .collect();
    for segno in first..=last {
        let name = wal_stream::segment_file_name(catalogue.timeline, segno, size);
        if !have.contains(name.as_str()) {
            report.problems.push(BackupProblem {
                object: format!("wal/{name}"),
                problem: "missing".into(),
                detail: "a WAL segment the backup needs is not in its catalogue".into(),
            });
        }
    }
    Ok(())
}

fn compare(
    manifest: &HashMap<String, ManifestFile>,
    seen: &HashMap<String, (u64, String)>,
    report: &mut BackupVerification,
) {
    let mut paths: Vec<&String> = manifest.keys().collect();
    paths.sort();
    for path in paths {
        let want = &manifest[path];
        report.manifest_files_checked += 1;
        let problem = match seen.get(path) {
            None => Some("listed in backup_manifest but not in the archive".to_string()),
            Some((size, _)) if *size != want.size => Some(format!(
                "{size} bytes in the archive, {} in backup_manifest",
                want.size
            )),
            Some((_, sum))
                if matches!(want.algorithm.as_str(), "SHA256" | "CRC32C")
                    && *sum != want.checksum =>
            {
                Some(format!(
                    "its {} differs from backup_manifest's",
                    want.algorithm
                ))
            }
            _ => None,
        };
        if let Some(detail) = problem {
            report.problems.push(BackupProblem {
                object: path.clone(),
                problem: "manifest_mismatch".into(),
                detail,
            });
        }
    }
}

/// Restore into a temporary folder, start, read the catalogs, stop, remove; seconds taken
/// from the first byte read to the server answering.
async fn restore_test(repo: &Repository, opened: &Opened) -> Result<f64> {
    use std::os::unix::fs::PermissionsExt;
    let root = std::env::temp_dir().join(format!(
        "pganalytics-restore-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&root)?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o711))?;
    let pgdata = root.join("pgdata");
    let major = opened.catalogue.server_version_num / 10_000;
    let user = match &opened.summary.server {
        Some(name) => crate::server::replication_params(repo, name)
            .await
            .map(|(_, p)| p.user)
            .unwrap_or_else(|_| "postgres".into()),
        None => "postgres".into(),
    };
    let started = Instant::now();
    let outcome = async {
        super::restore::restore_into(
            opened,
            &pgdata,
            &super::restore::tablespace_root(&pgdata),
            &Progress::none(),
        )
        .await?;
        // Only this temporary copy: local connections without a password.
        std::fs::write(pgdata.join("pg_hba.conf"), "local all all trust\n")?;
        let port = super::restore::start(&pgdata, major, None).await?;
        let answered = async {
            let options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
                .socket(&pgdata)
                .port(port)
                .username(&user)
                .database("postgres");
            let mut conn = sqlx::ConnectOptions::connect(&options).await.map_err(|e| {
                Error::internal(format!("the restored server does not answer: {e}"))
            })?;
            let classes: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_class")
                .fetch_one(&mut conn)
                .await?;
            let _ = sqlx::Connection::close(conn).await;
            if classes == 0 {
                return Err(Error::internal("the restored server's pg_class is empty"));
            }
            Ok(started.elapsed().as_secs_f64())
        }
        .await;
        let _ = super::restore::stop(&pgdata, major).await;
        answered
    }
    .await;
    let _ = std::fs::remove_dir_all(&root);
    outcome
}
