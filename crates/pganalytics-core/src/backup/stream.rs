//! The `BASE_BACKUP` exchange, streamed to a [`BackupSink`] chunk by chunk.
//!
//! What the server sends, in order:
//!
//! 1. a result set `(recptr text, tli int8)`: where the backup starts;
//! 2. a result set `(spcoid oid, spclocation text, size int8)`: one row per tablespace, the
//!    main one with null oid and location; `size` is in kB and only with `PROGRESS`;
//! 3. the archives:
//!    - **13–14**: one COPY OUT per tablespace row, in the same order, carrying a tar
//!      archive *without* the two zero blocks that end a tar file; then, with a manifest,
//!      one more COPY OUT carrying `backup_manifest`;
//!    - **15+**: one COPY OUT whose CopyData payloads start with a type byte: `n` a new
//!      archive (archive name and tablespace location, both NUL-terminated), `d` data of
//!      the current archive or of the manifest, `m` the manifest begins, `p` progress
//!      (int64 bytes done); the archives are complete tar files;
//! 4. a result set `(recptr, tli)`: where the backup ends (the WAL up to there is in the
//!    main archive's `pg_wal/` because we ask for `WAL`);
//! 5. CommandComplete and ReadyForQuery.
//!
//! The sink sees every archive as a complete tar file on every version: for 13–14 the client
//! appends the end-of-archive blocks, as `pg_basebackup` does.

use super::errors::ServerError;
use super::options::{base_backup_command, uses_new_syntax, BaseBackupOptions};
use super::protocol::{data_row, io_error, ReplicationConnection};
use crate::error::{Error, Result};
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::Message;
use std::future::Future;

/// A tablespace as the server lists it before sending the archives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablespaceInfo {
    /// `None` for the main data folder (`base.tar`).
    pub oid: Option<u32>,
    /// The tablespace's folder on the server; `None` for the main data folder.
    pub location: Option<String>,
    /// The server's estimate in bytes (with `PROGRESS`).
    pub estimated_size: Option<u64>,
}

impl TablespaceInfo {
    /// `base.tar` or `<oid>.tar`, the names the server and pg_basebackup use.
    pub fn archive_name(&self) -> String {
        match self.oid {
            Some(oid) => format!("{oid}.tar"),
            None => "base.tar".to_string(),
        }
    }
}

/// The start of one tar archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// `base.tar` or `<tablespace oid>.tar`.
    pub name: String,
    pub tablespace: TablespaceInfo,
}

/// One archive as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    pub name: String,
    /// Bytes handed to the sink, end-of-archive blocks included.
    pub bytes: u64,
}

/// Where the backup starts and ends, and what was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBackupResult {
    pub start_lsn: String,
    pub start_timeline: u32,
    pub end_lsn: String,
    pub end_timeline: u32,
    pub tablespaces: Vec<TablespaceInfo>,
    pub archives: Vec<ArchiveSummary>,
    pub manifest_bytes: u64,
    pub server_version_num: u32,
}

/// Receives the backup as it streams. Chunks are the server's CopyData payloads (32 kB, at
/// most [`super::protocol::MAX_MESSAGE_LEN`]); nothing is ever buffered whole. A slow sink
/// slows the server down (TCP back-pressure), it does not grow memory.
pub trait BackupSink: Send {
    /// A new archive begins; the previous one (if any) has ended.
    fn archive_start(&mut self, archive: &ArchiveInfo) -> impl Future<Output = Result<()>> + Send;
    /// The next bytes of the current archive's tar stream.
    fn archive_data(&mut self, bytes: &[u8]) -> impl Future<Output = Result<()>> + Send;
    /// The current archive is complete.
    fn archive_end(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// The next bytes of the server's `backup_manifest` (JSON), after every archive.
    fn manifest_data(&mut self, bytes: &[u8]) -> impl Future<Output = Result<()>> + Send;
    /// Archive bytes received so far, and the server's estimate of the total.
    fn progress(&mut self, _done: u64, _total: Option<u64>) {}
    /// The backup's start position is known (before any archive data): the WAL from there on
    /// is what the backup needs.
    fn backup_started(&mut self, _start_lsn: &str, _timeline: u32) {}
}

/// The end-of-archive marker of a tar file: two zero blocks of 512 bytes.
const TAR_TRAILER: [u8; 1024] = [0; 1024];

#[derive(Clone, Copy, PartialEq, Eq)]
enum ResultKind {
    Position,
    Tablespaces,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    None,
    Archive,
    Manifest,
}

struct Exchange<'a, S: BackupSink> {
    sink: &'a mut S,
    new_protocol: bool,
    result: BaseBackupResult,
    start_seen: bool,
    copies: usize,
    target: Target,
    done: u64,
    /// The server's count from its progress messages (15+).
    server_done: u64,
    total: Option<u64>,
}

impl ReplicationConnection {
    /// Take a base backup with pgAnalytics' defaults (fast checkpoint, progress, WAL,
    /// SHA-256 manifest) labelled `label`.
    pub async fn base_backup<S: BackupSink>(
        &mut self,
        label: &str,
        sink: &mut S,
    ) -> Result<BaseBackupResult> {
        self.base_backup_with(&BaseBackupOptions::new(label), sink)
            .await
    }

    /// Take a base backup, streaming it to `sink`. If the sink fails, the error is returned
    /// at once and the connection is left mid-stream: drop it (the server then aborts the
    /// backup).
    pub async fn base_backup_with<S: BackupSink>(
        &mut self,
        options: &BaseBackupOptions,
        sink: &mut S,
    ) -> Result<BaseBackupResult> {
        let version = self.server_version_num();
        let command = base_backup_command(version, options);
        self.send_query(&command).await?;
        let mut ex = Exchange {
            sink,
            new_protocol: uses_new_syntax(version),
            result: BaseBackupResult {
                start_lsn: String::new(),
                start_timeline: 0,
                end_lsn: String::new(),
                end_timeline: 0,
                tablespaces: Vec::new(),
                archives: Vec::new(),
                manifest_bytes: 0,
                server_version_num: version,
            },
            start_seen: false,
            copies: 0,
            target: Target::None,
            done: 0,
            server_done: 0,
            total: None,
        };
        let mut kind = ResultKind::Other;
        let mut failure: Option<ServerError> = None;
        loop {
            match self.read_message().await? {
                Message::RowDescription(body) => {
                    let mut fields = body.fields();
                    let first = fields
                        .next()
                        .map_err(io_error)?
                        .map(|f| f.name().to_string());
                    kind = match first.as_deref() {
                        Some("recptr") => ResultKind::Position,
                        Some("spcoid") => ResultKind::Tablespaces,
                        _ => ResultKind::Other,
                    };
                }
                Message::DataRow(body) => {
                    let row = data_row(&body)?;
                    match kind {
                        ResultKind::Position => ex.position(&row)?,
                        ResultKind::Tablespaces => ex.tablespace(&row)?,
                        ResultKind::Other => {}
                    }
                }
                Message::CopyOutResponse(_) => ex.copy_start().await?,
                Message::CopyData(body) => {
                    if failure.is_none() {
                        ex.copy_data(body.data()).await?;
                    }
                }
                Message::CopyDone => ex.copy_done().await?,
                Message::ErrorResponse(body) => failure = Some(ServerError::parse(&body)),
                Message::ReadyForQuery(_) => break,
                Message::CommandComplete(_)
                | Message::NoticeResponse(_)
                | Message::ParameterStatus(_) => {}
                _ => return Err(self.unexpected("during BASE_BACKUP")),
            }
        }
        if let Some(err) = failure {
            return Err(self.refusal(&err, "BASE_BACKUP"));
        }
        let result = ex.result;
        if result.end_lsn.is_empty() || result.archives.is_empty() {
            return Err(
                self.unexpected("sequence: BASE_BACKUP ended without archives or an end position")
            );
        }
        if result.manifest_bytes == 0 {
            return Err(Error::internal(format!(
                "{} sent no backup manifest",
                self.params().describe()
            )));
        }
        Ok(result)
    }
}

impl<S: BackupSink> Exchange<'_, S> {
    fn position(&mut self, row: &[Option<String>]) -> Result<()> {
        let lsn = row.first().cloned().flatten().unwrap_or_default();
        let tli = row
            .get(1)
            .cloned()
            .flatten()
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| Error::internal("BASE_BACKUP sent a position without a timeline"))?;
        if !self.start_seen {
            self.start_seen = true;
            self.sink.backup_started(&lsn, tli);
            self.result.start_lsn = lsn;
            self.result.start_timeline = tli;
        } else {
            self.result.end_lsn = lsn;
            self.result.end_timeline = tli;
        }
        Ok(())
    }

    fn tablespace(&mut self, row: &[Option<String>]) -> Result<()> {
        let get = |i: usize| row.get(i).cloned().flatten();
        let oid = match get(0) {
            Some(s) => Some(s.parse::<u32>().map_err(|_| {
                Error::internal(format!("BASE_BACKUP sent a malformed tablespace oid `{s}`"))
            })?),
            None => None,
        };
        let estimated_size = get(2)
            .and_then(|s| s.parse::<u64>().ok())
            .map(|kb| kb * 1024);
        self.result.tablespaces.push(TablespaceInfo {
            oid,
            location: get(1),
            estimated_size,
        });
        self.total = self
            .result
            .tablespaces
            .iter()
            .map(|t| t.estimated_size)
            .sum::<Option<u64>>();
        Ok(())
    }

    async fn copy_start(&mut self) -> Result<()> {
        let index = self.copies;
        self.copies += 1;
        if self.new_protocol {
            if index > 0 {
                return Err(Error::internal("BASE_BACKUP sent a second COPY stream"));
            }
            return Ok(());
        }
        match self.result.tablespaces.get(index).cloned() {
            Some(tablespace) => {
                self.begin_archive(tablespace.archive_name(), tablespace)
                    .await
            }
            None if index == self.result.tablespaces.len() => {
                self.target = Target::Manifest;
                Ok(())
            }
            None => Err(Error::internal(
                "BASE_BACKUP sent more COPY streams than tablespaces and a manifest",
            )),
        }
    }

    async fn begin_archive(&mut self, name: String, tablespace: TablespaceInfo) -> Result<()> {
        self.end_archive().await?;
        let info = ArchiveInfo { name, tablespace };
        self.sink.archive_start(&info).await?;
        self.result.archives.push(ArchiveSummary {
            name: info.name,
            bytes: 0,
        });
        self.target = Target::Archive;
        Ok(())
    }

    async fn end_archive(&mut self) -> Result<()> {
        if self.target == Target::Archive {
            if !self.new_protocol {
                self.archive_bytes(&TAR_TRAILER).await?;
            }
            self.sink.archive_end().await?;
        }
        self.target = Target::None;
        Ok(())
    }

    async fn archive_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.sink.archive_data(bytes).await?;
        if let Some(last) = self.result.archives.last_mut() {
            last.bytes += bytes.len() as u64;
        }
        Ok(())
    }

    async fn copy_data(&mut self, data: &[u8]) -> Result<()> {
        if !self.new_protocol {
            return self.payload(data).await;
        }
        let Some((&kind, rest)) = data.split_first() else {
            return Err(Error::internal(
                "BASE_BACKUP sent an empty CopyData message",
            ));
        };
        match kind {
            b'n' => {
                let mut parts = rest.split(|&b| b == 0);
                let name = parts
                    .next()
                    .map(|p| String::from_utf8_lossy(p).into_owned());
                let location = parts
                    .next()
                    .map(|p| String::from_utf8_lossy(p).into_owned());
                let (Some(name), Some(location)) = (name, location) else {
                    return Err(Error::internal(
                        "BASE_BACKUP sent a malformed new-archive message",
                    ));
                };
                let tablespace = if location.is_empty() {
                    self.result
                        .tablespaces
                        .iter()
                        .find(|t| t.location.is_none())
                } else {
                    self.result
                        .tablespaces
                        .iter()
                        .find(|t| t.location.as_deref() == Some(location.as_str()))
                }
                .cloned()
                .unwrap_or(TablespaceInfo {
                    oid: None,
                    location: (!location.is_empty()).then_some(location),
                    estimated_size: None,
                });
                self.begin_archive(name, tablespace).await
            }
            b'd' => self.payload(rest).await,
            b'm' => {
                self.end_archive().await?;
                self.target = Target::Manifest;
                Ok(())
            }
            // The server's own count of bytes read. Ours (archive bytes received) is the same
            // without server-side compression and is reported after every chunk; with it, ours
            // counts compressed bytes, so the larger of the two is the progress.
            b'p' => {
                let count: [u8; 8] = rest.try_into().map_err(|_| {
                    Error::internal("BASE_BACKUP sent a malformed progress message")
                })?;
                self.server_done = u64::from_be_bytes(count);
                self.sink
                    .progress(self.done.max(self.server_done), self.total);
                Ok(())
            }
            other => Err(Error::internal(format!(
                "BASE_BACKUP sent a CopyData message of unknown type `{}`",
                other as char
            ))),
        }
    }

    async fn payload(&mut self, bytes: &[u8]) -> Result<()> {
        match self.target {
            Target::Archive => {
                self.archive_bytes(bytes).await?;
                self.done += bytes.len() as u64;
                self.sink
                    .progress(self.done.max(self.server_done), self.total);
                Ok(())
            }
            Target::Manifest => {
                self.sink.manifest_data(bytes).await?;
                self.result.manifest_bytes += bytes.len() as u64;
                Ok(())
            }
            Target::None => Err(Error::internal(
                "BASE_BACKUP sent data before announcing an archive",
            )),
        }
    }

    async fn copy_done(&mut self) -> Result<()> {
        self.end_archive().await?;
        self.target = Target::None;
        Ok(())
    }
}
