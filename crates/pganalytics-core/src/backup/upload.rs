//! The backup's write path: a [`BackupSink`] that cuts each tar archive into objects of
//! [`OBJECT_SIZE`] raw bytes and hands them to [`UPLOADS`] concurrent tasks, each compressing
//! and encrypting its object on a blocking thread and then storing it, while the server keeps
//! streaming the next bytes.
//!
//! Memory is bounded whatever the database's size: the object being filled, one waiting in
//! the channel, one waiting for an upload slot, and [`UPLOADS`] in flight (raw and encoded) —
//! at most [`BUFFERS`] buffers of [`OBJECT_SIZE`], reused from object to object. A slow store
//! slows the server's stream down (the channel is full, the sink waits, TCP pushes back)
//! instead of growing memory.

use super::catalogue::{Archive, Object};
use super::codec::{buffer_capacity, Codec};
use super::engine::Progress;
use super::stream::{ArchiveInfo, BackupSink};
use crate::error::{Error, ErrorCode, Result};
use crate::storage::operator::Target;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Raw bytes per object.
pub const OBJECT_SIZE: usize = 8 * 1024 * 1024;
/// Objects being encoded or stored at once: two cores compress while a third object uploads.
pub const UPLOADS: usize = 3;

/// What an object is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The archive at this index.
    Archive(usize),
    Manifest,
    Wal,
}

/// A stored object and what it is part of.
type Stored = (Part, Object);

pub struct Job {
    pub part: Part,
    pub sequence: u64,
    pub key: String,
    pub raw: Vec<u8>,
    /// Where the raw buffer goes back once encoded (archive objects).
    pub recycle: Option<Buffers>,
}

/// Object buffers handed back once used — a raw object's after encoding, a stored object's
/// after writing —, so every object reuses memory already mapped: a fresh 8 MiB buffer costs
/// the kernel a page fault and a zeroing per 4 KiB or 2 MiB page (about a tenth of the
/// backup's CPU when measured, more on virtual machines that back guest memory lazily).
#[derive(Clone, Default)]
pub struct Buffers(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

/// Buffers in use at most: the object being filled, one in the channel, one waiting for an
/// upload slot, and a raw and an encoded one per upload.
const BUFFERS: usize = 3 + 2 * UPLOADS;

impl Buffers {
    /// An empty buffer for one object, with room for it compressed or not, and for the GCM
    /// tag (encryption is in place).
    pub fn take(&self) -> Vec<u8> {
        let reused = match self.0.lock() {
            Ok(mut pool) => pool.pop(),
            Err(p) => p.into_inner().pop(),
        };
        reused.unwrap_or_else(|| Vec::with_capacity(buffer_capacity(OBJECT_SIZE)))
    }

    fn give(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() < buffer_capacity(OBJECT_SIZE) {
            return;
        }
        buffer.clear();
        let mut pool = match self.0.lock() {
            Ok(pool) => pool,
            Err(p) => p.into_inner(),
        };
        if pool.len() < BUFFERS {
            pool.push(buffer);
        }
    }
}

/// Where the archive stream goes.
pub struct UploadSink {
    backup_dir: String,
    buf: Vec<u8>,
    buffers: Buffers,
    archives: Vec<Archive>,
    current: Option<usize>,
    chunk_in_archive: u32,
    sequence: u64,
    manifest: Vec<u8>,
    tx: Option<mpsc::Sender<Job>>,
    uploads: tokio::task::JoinHandle<Result<Vec<Stored>>>,
    progress: Progress,
    /// Tells the WAL streamer where the backup starts.
    wal_start: Option<tokio::sync::oneshot::Sender<(String, u32)>>,
}

impl UploadSink {
    /// `backup_dir` is the backup's folder in the target (ends with `/`).
    pub fn new(target: Arc<Target>, codec: Codec, backup_dir: String, progress: Progress) -> Self {
        let (tx, rx) = mpsc::channel(1);
        let uploads = tokio::spawn(run_uploads(target, Arc::new(codec), rx));
        let buffers = Buffers::default();
        UploadSink {
            backup_dir,
            buf: buffers.take(),
            buffers,
            archives: Vec::new(),
            current: None,
            chunk_in_archive: 0,
            sequence: 0,
            manifest: Vec::new(),
            tx: Some(tx),
            uploads,
            progress,
            wal_start: None,
        }
    }

    /// Send the backup's start position to the WAL streamer when the server gives it.
    pub fn notify_start(&mut self, tx: tokio::sync::oneshot::Sender<(String, u32)>) {
        self.wal_start = Some(tx);
    }

    async fn send(&mut self, part: Part, key: String, raw: Vec<u8>) -> Result<()> {
        let job = Job {
            part,
            sequence: self.sequence,
            key,
            raw,
            recycle: Some(self.buffers.clone()),
        };
        self.sequence += 1;
        let Some(tx) = &self.tx else {
            return Err(Error::internal("the upload pipeline is closed"));
        };
        if tx.send(job).await.is_err() {
            // The uploads stopped on an error; `finish` or `abort` reports it.
            return Err(Error::new(
                ErrorCode::Internal,
                "storing the backup's objects failed",
            ));
        }
        Ok(())
    }

    async fn flush_object(&mut self) -> Result<()> {
        let Some(index) = self.current else {
            return Ok(());
        };
        if self.buf.is_empty() {
            return Ok(());
        }
        let tablespace = match self.archives[index].tablespace_oid {
            Some(oid) => oid.to_string(),
            None => "base".to_string(),
        };
        let key = format!(
            "{}data/{tablespace}/{:08}",
            self.backup_dir, self.chunk_in_archive
        );
        self.chunk_in_archive += 1;
        let fresh = self.buffers.take();
        let raw = std::mem::replace(&mut self.buf, fresh);
        self.send(Part::Archive(index), key, raw).await
    }

    /// Store the last object and the manifest, wait for every upload; the archives with their
    /// objects in order, and the manifest's object.
    /// Store the manifest, wait for every upload; the archives, the manifest's object and the
    /// total size of the files the manifest lists (the backup's size when the server
    /// compressed the archives).
    pub async fn finish(mut self) -> Result<(Vec<Archive>, Object, Option<u64>)> {
        let manifest = std::mem::take(&mut self.manifest);
        let files_bytes = manifest_files_bytes(&manifest);
        let key = format!("{}backup_manifest", self.backup_dir);
        let sent = match self.flush_object().await {
            Ok(()) => self.send(Part::Manifest, key, manifest).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            // The uploads stopped first: their error says why.
            return Err(self.abort().await.unwrap_or(e));
        }
        self.tx = None;
        let results = match (&mut self.uploads).await {
            Ok(r) => r?,
            Err(e) => return Err(Error::internal(format!("the upload task failed: {e}"))),
        };
        let mut manifest = None;
        for (part, object) in results {
            match part {
                Part::Archive(i) => self.archives[i].objects.push(object),
                Part::Manifest => manifest = Some(object),
                Part::Wal => {}
            }
        }
        for a in &mut self.archives {
            a.objects.sort_by_key(|o| o.sequence);
        }
        let manifest = manifest.ok_or_else(|| Error::internal("the manifest was not stored"))?;
        Ok((self.archives, manifest, files_bytes))
    }

    /// The backup failed: stop the uploads and return their error, if they had one (it is
    /// usually the cause: a full disk, a store that went away).
    pub async fn abort(mut self) -> Option<Error> {
        self.tx = None;
        match (&mut self.uploads).await {
            Ok(Err(e)) => Some(e),
            _ => None,
        }
    }
}

impl BackupSink for UploadSink {
    async fn archive_start(&mut self, archive: &ArchiveInfo) -> Result<()> {
        self.flush_object().await?;
        self.archives.push(Archive {
            name: archive.name.clone(),
            tablespace_oid: archive.tablespace.oid,
            location: archive.tablespace.location.clone(),
            raw_bytes: 0,
            objects: Vec::new(),
        });
        self.current = Some(self.archives.len() - 1);
        self.chunk_in_archive = 0;
        Ok(())
    }

    async fn archive_data(&mut self, mut bytes: &[u8]) -> Result<()> {
        let Some(index) = self.current else {
            return Err(Error::internal("archive data before any archive began"));
        };
        self.archives[index].raw_bytes += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = OBJECT_SIZE - self.buf.len();
            let take = room.min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() == OBJECT_SIZE {
                self.flush_object().await?;
            }
        }
        Ok(())
    }

    async fn archive_end(&mut self) -> Result<()> {
        self.flush_object().await?;
        self.current = None;
        Ok(())
    }

    async fn manifest_data(&mut self, bytes: &[u8]) -> Result<()> {
        self.manifest.extend_from_slice(bytes);
        Ok(())
    }

    fn progress(&mut self, done: u64, total: Option<u64>) {
        self.progress.report(done, total);
    }

    fn backup_started(&mut self, start_lsn: &str, timeline: u32) {
        if let Some(tx) = self.wal_start.take() {
            let _ = tx.send((start_lsn.to_string(), timeline));
        }
    }
}

async fn run_uploads(
    target: Arc<Target>,
    codec: Arc<Codec>,
    mut rx: mpsc::Receiver<Job>,
) -> Result<Vec<Stored>> {
    let mut done = Vec::new();
    let mut running = JoinSet::new();
    while let Some(job) = rx.recv().await {
        while running.len() >= UPLOADS {
            if let Some(r) = running.join_next().await {
                done.push(joined(r)?);
            }
        }
        running.spawn(store(target.clone(), codec.clone(), job));
    }
    while let Some(r) = running.join_next().await {
        done.push(joined(r)?);
    }
    Ok(done)
}

fn joined(r: std::result::Result<Result<Stored>, tokio::task::JoinError>) -> Result<Stored> {
    r.map_err(|e| Error::internal(format!("an upload task failed: {e}")))?
}

pub async fn store(target: Arc<Target>, codec: Arc<Codec>, job: Job) -> Result<Stored> {
    let Job {
        part,
        sequence,
        key,
        raw,
        recycle,
    } = job;
    let raw_bytes = raw.len() as u64;
    let k = key.clone();
    let out = recycle.as_ref().map(Buffers::take).unwrap_or_default();
    let (encoded, spare) =
        tokio::task::spawn_blocking(move || codec.encode(raw, out, sequence, &k))
            .await
            .map_err(|e| Error::internal(format!("the encoding task failed: {e}")))?
            .map_err(|e| Error::internal(format!("encoding object {key}: {e}")))?;
    if let Some(pool) = &recycle {
        pool.give(spare);
    }
    let stored_bytes = encoded.bytes.len() as u64;
    let write = target.store_object(&key, encoded.bytes);
    match tokio::time::timeout(crate::storage::operator::REQUEST_TIMEOUT * 5, write).await {
        Ok(Ok(written)) => {
            if let (Some(buffer), Some(pool)) = (written, &recycle) {
                pool.give(buffer);
            }
        }
        Ok(Err(e)) => return Err(target.error("write", &key, &e)),
        Err(_) => {
            return Err(Error::new(
                ErrorCode::Unreachable,
                format!(
                    "{}: storing `{key}` did not finish within 5 minutes",
                    target.describe()
                ),
            )
            .with_hint("check that the storage service runs and is reachable"))
        }
    }
    Ok((
        part,
        Object {
            key,
            sequence,
            raw_bytes,
            uncompressed: encoded.uncompressed,
            stored_bytes,
            sha256: encoded.sha256,
        },
    ))
}

/// Sum of the `Size` of every file in a `backup_manifest` (JSON); `None` when unreadable.
fn manifest_files_bytes(manifest: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        #[serde(rename = "Files")]
        files: Vec<File>,
    }
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(rename = "Size")]
        size: u64,
    }
    let m: Manifest = serde_json::from_slice(manifest).ok()?;
    Some(m.files.iter().map(|f| f.size).sum())
}
