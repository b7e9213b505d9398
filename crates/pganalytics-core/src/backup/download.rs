//! The read path shared by `verify` and `restore`: open a completed backup (catalogue checked
//! against the repository's checksum and its signature), then fetch its objects in order with
//! a few requests ahead, each checked (size, SHA-256) and decoded (AES-GCM tag, zstd) on a
//! blocking thread; and feed an archive's bytes to a tar reader on another thread.

use super::catalogue::{self, Catalogue, Object};
use super::codec::{sha256_hex, Codec, Compression};
use super::keys;
use super::record;
use crate::api::{BackupProblem, BackupStatus, BackupSummary};
use crate::audit::keys::VerifyingKey;
use crate::data_dir::DataDir;
use crate::error::{Error, ErrorCode};
use crate::repository::Repository;
use crate::storage::layout;
use crate::storage::operator::Target;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Objects fetched ahead of the one being consumed.
const AHEAD: usize = 3;

/// A backup ready to read.
pub struct Opened {
    pub summary: BackupSummary,
    pub catalogue: Catalogue,
    pub target: Arc<Target>,
    /// The backup's folder in the target (ends with `/`).
    pub dir: String,
    pub codec: Arc<Codec>,
    /// Fingerprint of the key that signed the catalogue.
    pub signed_by: String,
}

fn problem(object: &str, problem: &str, detail: impl Into<String>) -> BackupProblem {
    BackupProblem {
        object: object.to_string(),
        problem: problem.to_string(),
        detail: detail.into(),
    }
}

/// An error for a damaged backup: verification failed (exit 3), naming the object.
pub fn damaged(p: &BackupProblem) -> Error {
    Error::new(
        ErrorCode::VerificationFailed,
        format!("the backup is damaged: `{}`: {}", p.object, p.detail),
    )
    .with_hint("`pganalytics backup verify ID` lists every damaged object; restore an older backup")
}

/// Read and check the catalogue of a completed backup. A problem with the catalogue itself
/// (missing, changed, badly signed) is returned as `Err(Ok(problem))`; an environment failure
/// (store unreachable, key missing) as `Err(Err(error))`.
pub async fn open(
    repo: &Repository,
    data_dir: &DataDir,
    public_key: std::result::Result<&VerifyingKey, &Error>,
    id: uuid::Uuid,
) -> std::result::Result<Opened, std::result::Result<BackupProblem, Error>> {
    let summary = record::get(repo, id).await.map_err(Err)?;
    if summary.status != BackupStatus::Completed {
        return Err(Err(Error::invalid_input(format!(
            "backup {id} is {}, not completed{}",
            summary.status.as_str(),
            summary
                .failure_reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ))
        .with_hint("only completed backups can be verified or restored; `pganalytics backup list` shows them")));
    }
    let storage_id = record::storage_id(repo, id)
        .await
        .map_err(Err)?
        .ok_or_else(|| {
            Err(Error::not_found(format!(
                "backup {id} names no storage target"
            )))
        })?;
    let (_, target) = crate::storage::open_by_id(repo, storage_id)
        .await
        .map_err(Err)?;
    let sysid: u64 = summary
        .system_identifier
        .as_deref()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            Err(Error::internal(format!(
                "backup {id} has no system identifier"
            )))
        })?;
    let dir = layout::backup_dir(sysid, id);
    let cat_key = format!("{dir}{}", layout::CATALOGUE);
    let sig_key = format!("{dir}{}", layout::CATALOGUE_SIGNATURE);
    let bytes = read_whole(&target, &cat_key).await?;
    let expected = summary.checksum.clone().unwrap_or_default();
    if sha256_hex(&bytes) != expected {
        return Err(Ok(problem(
            &cat_key,
            "catalogue_changed",
            format!("its SHA-256 is not the {expected} the repository recorded"),
        )));
    }
    let sig = read_whole(&target, &sig_key).await?;
    let public_key = match public_key {
        Ok(key) => key,
        // Say why (the file named in config.toml, or the signing key's entry) and what to do.
        Err(why) => return Err(Err(Error::not_found(format!(
            "no public key to check the backup catalogue's signature with: {}",
            why.message
        ))
        .with_hint(why.hint.clone().unwrap_or_else(|| {
            "backups are signed with the installation's key: `pganalytics audit status` shows it"
                .to_string()
        })))),
    };
    let signed_by = catalogue::check_signature(&bytes, &sig, public_key)
        .map_err(|e| Ok(problem(&sig_key, "catalogue_signature_invalid", e)))?;
    let catalogue: Catalogue = serde_json::from_slice(&bytes).map_err(|e| {
        Ok(problem(
            &cat_key,
            "undecodable",
            format!("not a catalogue: {e}"),
        ))
    })?;
    if catalogue.backup_id != id {
        return Err(Ok(problem(
            &cat_key,
            "catalogue_changed",
            format!("it describes backup {}", catalogue.backup_id),
        )));
    }
    let compression = Compression::parse(Some(&catalogue.compression))
        .map_err(|e| Ok(problem(&cat_key, "undecodable", e)))?;
    let data_key = match &catalogue.encryption {
        None => None,
        Some(enc) => {
            let key = keys::load(data_dir).await.map_err(|e| {
                Err(Error::new(
                    e.code,
                    format!(
                        "backup {id} is encrypted and needs the backup key {}: {}",
                        enc.key_fingerprint, e.message
                    ),
                )
                .with_hint("restore the key from your key backup (keyring entry or key file)"))
            })?;
            match key.unwrap_key(&enc.wrapped_data_key, id) {
                Some(k) => Some(k),
                None => {
                    return Err(Err(Error::new(
                        ErrorCode::AuthenticationFailed,
                        format!(
                            "the backup key {} ({}) cannot unlock backup {id}, which needs the key {}",
                            key.fingerprint(),
                            key.location(),
                            enc.key_fingerprint
                        ),
                    )
                    .with_hint("configure the key that made the backup (`[backup] key_file` in config.toml or the keyring entry); nothing was written")))
                }
            }
        }
    };
    Ok(Opened {
        summary,
        codec: Arc::new(Codec::new(compression, data_key.as_ref())),
        catalogue,
        target: Arc::new(target),
        dir,
        signed_by,
    })
}

async fn read_whole(
    target: &Target,
    key: &str,
) -> std::result::Result<Vec<u8>, std::result::Result<BackupProblem, Error>> {
    match target.op.read(key).await {
        Ok(b) => Ok(b.to_vec()),
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => Err(Ok(problem(
            key,
            "missing",
            "the object is not in the store",
        ))),
        Err(e) => Err(Err(target.error("read", key, &e))),
    }
}

/// One object, fetched and decoded, or what is wrong with it.
pub type Fetched = std::result::Result<Vec<u8>, std::result::Result<BackupProblem, Error>>;

async fn fetch(target: Arc<Target>, codec: Arc<Codec>, object: Object) -> Fetched {
    let stored = read_whole(&target, &object.key).await?;
    if stored.len() as u64 != object.stored_bytes {
        return Err(Ok(problem(
            &object.key,
            "size_mismatch",
            format!(
                "{} bytes stored where the catalogue says {}",
                stored.len(),
                object.stored_bytes
            ),
        )));
    }
    tokio::task::spawn_blocking(move || {
        if sha256_hex(&stored) != object.sha256 {
            return Err(Ok(problem(
                &object.key,
                "checksum_mismatch",
                "its SHA-256 differs from the catalogue's",
            )));
        }
        codec
            .decode(
                stored,
                object.sequence,
                &object.key,
                object.raw_bytes as usize,
                object.uncompressed,
            )
            .map_err(|e| {
                let kind = match e {
                    super::codec::DecodeError::Authentication => "authentication_failed",
                    super::codec::DecodeError::Decompression(_) => "undecodable",
                };
                Ok(problem(&object.key, kind, e.to_string()))
            })
    })
    .await
    .map_err(|e| Err(Error::internal(format!("decode task failed: {e}"))))?
}

/// Objects in catalogue order, [`AHEAD`] requests ahead.
pub struct Prefetch {
    target: Arc<Target>,
    codec: Arc<Codec>,
    pending: std::vec::IntoIter<Object>,
    queue: VecDeque<(Object, JoinHandle<Fetched>)>,
}

impl Prefetch {
    pub fn new(opened: &Opened, objects: Vec<Object>) -> Prefetch {
        let mut p = Prefetch {
            target: opened.target.clone(),
            codec: opened.codec.clone(),
            pending: objects.into_iter(),
            queue: VecDeque::new(),
        };
        p.refill();
        p
    }

    fn refill(&mut self) {
        while self.queue.len() < AHEAD {
            let Some(object) = self.pending.next() else {
                break;
            };
            let handle = tokio::spawn(fetch(
                self.target.clone(),
                self.codec.clone(),
                object.clone(),
            ));
            self.queue.push_back((object, handle));
        }
    }

    pub async fn next(&mut self) -> Option<(Object, Fetched)> {
        let (object, handle) = self.queue.pop_front()?;
        self.refill();
        let fetched = handle
            .await
            .unwrap_or_else(|e| Err(Err(Error::internal(format!("fetch task failed: {e}")))));
        Some((object, fetched))
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        for (_, h) in &self.queue {
            h.abort();
        }
    }
}

/// The tar stream of an archive whose decoded objects arrive on `rx`: as they are, or through
/// a zstd decoder when the server compressed the archive (its name ends in `.zst`: the objects
/// are consecutive pieces of one zstd stream).
pub fn archive_reader(
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    archive_name: &str,
) -> std::io::Result<Box<dyn std::io::Read + Send>> {
    let reader = ChannelReader::new(rx);
    Ok(if super::catalogue::server_compressed(archive_name) {
        Box::new(zstd::stream::read::Decoder::new(reader)?)
    } else {
        Box::new(reader)
    })
}

/// A `Read` over byte buffers sent from async code: lets the `tar` crate consume an archive
/// on a blocking thread while the next objects download.
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    pub fn new(rx: tokio::sync::mpsc::Receiver<Vec<u8>>) -> ChannelReader {
        ChannelReader {
            rx,
            current: Vec::new(),
            pos: 0,
        }
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.blocking_recv() {
                Some(next) => {
                    self.current = next;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
