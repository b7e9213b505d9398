//! The WAL a backup needs, streamed alongside it over a second replication connection (what
//! `pg_basebackup -X stream` does): a temporary physical slot, created before `BASE_BACKUP`,
//! keeps the server from recycling the segments; `START_REPLICATION` from the segment holding
//! the backup's start position; every complete segment is stored as an object of the backup
//! (`wal/<segment>`) while the data streams; at the backup's end position the last segment is
//! stored zero-padded, as PostgreSQL's own partial segments are.
//!
//! Without this, WAL written during a long backup of a busy server could be recycled before
//! `BASE_BACKUP ... WAL` fetched it at the end, and the backup would fail after hours.

use super::catalogue::Object;
use super::codec::Codec;
use super::protocol::{Frame, ReplicationConnection};
use super::upload::{store, Job, Part};
use crate::error::{Error, Result};
use crate::storage::operator::Target;
use postgres_protocol::message::backend::Message;
use std::sync::Arc;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

/// Sequence numbers of WAL objects start here (GCM nonces must never repeat under one key;
/// archive objects count from 0).
const WAL_SEQUENCE_BASE: u64 = 1 << 62;
/// WAL segments being stored at once.
const UPLOADS: usize = 2;
/// How often a stream waiting for its store says it is alive: well inside any sensible
/// `wal_sender_timeout` (60 s by default; the tests use 1 s). A 34-byte message.
const STATUS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);
/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

pub fn parse_lsn(lsn: &str) -> Result<u64> {
    let bad = || Error::internal(format!("`{lsn}` is not an LSN"));
    let (hi, lo) = lsn.split_once('/').ok_or_else(bad)?;
    let hi = u64::from_str_radix(hi, 16).map_err(|_| bad())?;
    let lo = u64::from_str_radix(lo, 16).map_err(|_| bad())?;
    Ok((hi << 32) | lo)
}

fn format_lsn(pos: u64) -> String {
    format!("{:X}/{:X}", pos >> 32, pos & 0xFFFF_FFFF)
}

/// PostgreSQL's file name of segment `segno` on `timeline`.
pub fn segment_file_name(timeline: u32, segno: u64, segment_size: u64) -> String {
    let per_id = 0x1_0000_0000u64 / segment_size;
    format!("{timeline:08X}{:08X}{:08X}", segno / per_id, segno % per_id)
}

/// What the engine hands the streamer.
pub struct WalStreamer {
    /// The backup's start position and timeline, sent by the sink when `BASE_BACKUP` says it.
    pub start: oneshot::Sender<(String, u32)>,
    /// The backup's end position, once `BASE_BACKUP` has finished.
    pub end: watch::Sender<Option<u64>>,
    pub task: tokio::task::JoinHandle<Result<Vec<Object>>>,
}

/// Create the temporary slot on `conn` (so the server keeps the WAL from now on) and start
/// the streaming task, which waits for the start position.
pub async fn start(
    mut conn: ReplicationConnection,
    target: Arc<Target>,
    codec: Codec,
    backup_dir: String,
    segment_size: u64,
) -> Result<WalStreamer> {
    let slot = format!("pganalytics_{}", uuid::Uuid::new_v4().simple());
    let sql = if conn.server_version_num() >= 150_000 {
        format!("CREATE_REPLICATION_SLOT {slot} TEMPORARY PHYSICAL (RESERVE_WAL)")
    } else {
        format!("CREATE_REPLICATION_SLOT {slot} TEMPORARY PHYSICAL RESERVE_WAL")
    };
    conn.simple_query(&sql).await?;
    let (start_tx, start_rx) = oneshot::channel::<(String, u32)>();
    let (end_tx, end_rx) = watch::channel(None);
    let codec = Arc::new(codec);
    let task = tokio::spawn(async move {
        let Ok((lsn, timeline)) = start_rx.await else {
            return Ok(Vec::new()); // the backup ended before it began
        };
        let stream = Stream {
            target,
            codec,
            backup_dir,
            segment_size,
            timeline,
            uploads: JoinSet::new(),
            stored: Vec::new(),
        };
        stream.run(conn, &slot, parse_lsn(&lsn)?, end_rx).await
    });
    Ok(WalStreamer {
        start: start_tx,
        end: end_tx,
        task,
    })
}

struct Stream {
    target: Arc<Target>,
    codec: Arc<Codec>,
    backup_dir: String,
    segment_size: u64,
    timeline: u32,
    uploads: JoinSet<Result<(Part, Object)>>,
    stored: Vec<Object>,
}

impl Stream {
    async fn run(
        mut self,
        mut conn: ReplicationConnection,
        slot: &str,
        start: u64,
        mut end_rx: watch::Receiver<Option<u64>>,
    ) -> Result<Vec<Object>> {
        let mut segno = start / self.segment_size;
        let from = segno * self.segment_size;
        conn.send_query(&format!(
            "START_REPLICATION SLOT {slot} PHYSICAL {} TIMELINE {}",
            format_lsn(from),
            self.timeline
        ))
        .await?;
        loop {
            match conn.read_frame().await? {
                Frame::CopyBoth => break,
                Frame::Message(Message::ErrorResponse(body)) => {
                    let err = super::errors::ServerError::parse(&body);
                    return Err(conn.refusal(&err, "START_REPLICATION"));
                }
                Frame::Message(Message::NoticeResponse(_) | Message::ParameterStatus(_)) => {}
                Frame::Message(_) => {
                    return Err(conn.unexpected("in the answer to START_REPLICATION"))
                }
            }
        }
        let mut segment: Vec<u8> =
            Vec::with_capacity(self.segment_size as usize + super::codec::TAG_LEN);
        let mut received = from;
        let mut end: Option<u64> = None;
        loop {
            if let Some(e) = end {
                if received >= e {
                    break;
                }
            }
            let frame = tokio::select! {
                f = conn.read_frame() => f?,
                changed = end_rx.changed() => {
                    if changed.is_err() {
                        // The backup was abandoned: stop without storing more.
                        return Err(Error::internal("the backup ended before its WAL was complete"));
                    }
                    end = *end_rx.borrow();
                    continue;
                }
            };
            let body = match frame {
                Frame::Message(Message::CopyData(body)) => body.into_bytes(),
                Frame::Message(Message::ErrorResponse(body)) => {
                    let err = super::errors::ServerError::parse(&body);
                    return Err(conn.refusal(&err, "START_REPLICATION"));
                }
                Frame::Message(Message::CopyDone) => {
                    return Err(Error::internal(
                        "the server ended WAL streaming before the backup's end (did it change timeline?); run the backup again",
                    ))
                }
                Frame::Message(_) | Frame::CopyBoth => continue,
            };
            match body.first() {
                Some(b'w') if body.len() >= 25 => {
                    let data_start = u64::from_be_bytes(body[1..9].try_into().unwrap_or([0; 8]));
                    if data_start != received {
                        return Err(Error::internal(format!(
                            "the server sent WAL from {} where {} was expected",
                            format_lsn(data_start),
                            format_lsn(received)
                        )));
                    }
                    let mut data = &body[25..];
                    while !data.is_empty() {
                        let room = self.segment_size as usize - segment.len();
                        let take = room.min(data.len());
                        segment.extend_from_slice(&data[..take]);
                        data = &data[take..];
                        received += take as u64;
                        if segment.len() == self.segment_size as usize {
                            let full = std::mem::replace(
                                &mut segment,
                                Vec::with_capacity(
                                    self.segment_size as usize + super::codec::TAG_LEN,
                                ),
                            );
                            self.store_segment(&mut conn, received, segno, full).await?;
                            segno += 1;
                        }
                    }
                }
                // A keepalive asking for an answer.
                Some(b'k') if body.len() >= 18 && body[17] == 1 => {
                    conn.send_copy_data(&status_update(received)).await?;
                }
                _ => {}
            }
        }
        if !segment.is_empty() {
            segment.resize(self.segment_size as usize, 0);
            self.store_segment(&mut conn, received, segno, segment)
                .await?;
        }
        conn.send_copy_done().await?;
        drop(conn); // ends the session; the temporary slot goes with it
        while let Some(r) = self.uploads.join_next().await {
            self.collect(r)?;
        }
        self.stored.sort_by_key(|o| o.sequence);
        Ok(self.stored)
    }

    /// Start storing a segment, first waiting for a free upload slot. While it waits nothing
    /// reads the stream, so it tells the server four times a second that the standby (us) is alive:
    /// otherwise a store slower than `wal_sender_timeout` would get the connection cut.
    async fn store_segment(
        &mut self,
        conn: &mut ReplicationConnection,
        received: u64,
        segno: u64,
        bytes: Vec<u8>,
    ) -> Result<()> {
        while self.uploads.len() >= UPLOADS {
            tokio::select! {
                r = self.uploads.join_next() => {
                    if let Some(r) = r {
                        self.collect(r)?;
                    }
                }
                _ = tokio::time::sleep(STATUS_INTERVAL) => {
                    conn.send_copy_data(&status_update(received)).await?;
                }
            }
        }
        let name = segment_file_name(self.timeline, segno, self.segment_size);
        let job = Job {
            part: Part::Wal,
            sequence: WAL_SEQUENCE_BASE + segno,
            key: format!("{}wal/{name}", self.backup_dir),
            raw: bytes,
            recycle: None,
        };
        self.uploads
            .spawn(store(self.target.clone(), self.codec.clone(), job));
        Ok(())
    }

    fn collect(
        &mut self,
        r: std::result::Result<Result<(Part, Object)>, tokio::task::JoinError>,
    ) -> Result<()> {
        let (_, object) =
            r.map_err(|e| Error::internal(format!("a WAL upload task failed: {e}")))??;
        self.stored.push(object);
        Ok(())
    }
}

/// Standby status update: everything up to `pos` written, flushed and applied.
fn status_update(pos: u64) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp_micros() - PG_EPOCH_OFFSET_US;
    let mut m = Vec::with_capacity(34);
    m.push(b'r');
    for _ in 0..3 {
        m.extend_from_slice(&pos.to_be_bytes());
    }
    m.extend_from_slice(&now.to_be_bytes());
    m.push(0);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_and_names() {
        assert_eq!(parse_lsn("1/FF000028").unwrap(), 0x1_FF00_0028);
        assert_eq!(format_lsn(0x1_FF00_0028), "1/FF000028");
        assert_eq!(
            segment_file_name(1, 0x1FF, 16 << 20),
            "0000000100000001000000FF"
        );
        assert_eq!(status_update(5).len(), 34);
    }
}
