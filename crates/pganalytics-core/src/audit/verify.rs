//! Verification: needs only the public key and the external checkpoints. The checkpoints'
//! signatures authenticate their Merkle roots, the roots authenticate the external event
//! hashes (`.leaves`), and each event in the database is then recomputed and compared with
//! them in order. Beyond the newest checkpoint only the chain itself can be checked.
//!
//! The first event that does not match is named, with what happened to it (see
//! [`AuditProblem`]); classification looks at where the authentic event went.

use super::checkpoint::{parse_hash, Checkpoint, Kind, Statement, Store};
use super::keys::VerifyingKey;
use super::merkle::{self, leaf_hash, Frontier, Hash};
use crate::api::{AuditCheckpointInfo, AuditProblem, AuditVerification};
use crate::error::{Error, Result};
use rayon::prelude::*;
use sqlx::{PgPool, Row};
use std::collections::HashSet;
use std::time::Instant;
use uuid::Uuid;

/// Events fetched and hashed per round trip.
const CHUNK: i64 = 20_000;

pub struct Request<'a> {
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// `None`: no signing key exists yet, so only the chain can be checked.
    pub key: Option<&'a VerifyingKey>,
    pub store: &'a Store,
    /// Called with (events checked, events to check).
    pub progress: &'a (dyn Fn(u64, u64) + Send + Sync),
}

/// Events authenticated by the external checkpoints: hashes of events `offset+1 ..`.
struct Authentic {
    offset: u64,
    hashes: Vec<Hash>,
    /// Newest valid checkpoint.
    newest: Option<(Checkpoint, Statement)>,
    /// Newest seal: events up to it may have been removed by retention.
    seal: Option<Statement>,
}

impl Authentic {
    fn size(&self) -> u64 {
        self.offset + self.hashes.len() as u64
    }

    fn get(&self, id: i64) -> Option<&Hash> {
        let i = u64::try_from(id).ok()?.checked_sub(self.offset + 1)?;
        self.hashes.get(i as usize)
    }
}

fn failed(problem: AuditProblem, first_bad_id: Option<i64>, detail: String) -> Verdict {
    Verdict::Failed {
        problem,
        first_bad_id,
        detail,
    }
}

enum Verdict {
    Intact,
    Failed {
        problem: AuditProblem,
        first_bad_id: Option<i64>,
        detail: String,
    },
}

pub async fn verify(pool: &PgPool, request: Request<'_>) -> Result<AuditVerification> {
    let started = Instant::now();
    let mut warnings = Vec::new();
    let loaded = match request.key {
        // Reads and checks every external checkpoint file: blocking work.
        Some(key) => {
            let (store, key) = (request.store.clone(), key.clone());
            tokio::task::spawn_blocking(move || load_authentic(&store, &key))
                .await
                .map_err(|e| Error::internal(format!("verification task failed: {e}")))?
        }
        None => Ok(Authentic {
            offset: 0,
            hashes: Vec::new(),
            newest: None,
            seal: None,
        }),
    };
    let authentic = match loaded {
        Ok(a) => a,
        Err(verdict) => {
            return Ok(report(verdict, None, 0, 0, 0, 0, started, warnings));
        }
    };
    if authentic.newest.is_none() {
        warnings.push(format!(
            "no signed checkpoint in {}: only the hash chain was checked, so a truncated tail or a rewritten chain would not be detected (run `pganalytics audit keygen`)",
            request.store.dir().display()
        ));
    }
    let checkpoint_info = authentic.newest.as_ref().map(|(c, s)| info(c, s));
    if let Some(key) = request.key {
        let external_size = authentic.newest.as_ref().map_or(0, |(_, s)| s.size);
        if let Some(v) = check_database_checkpoints(pool, key, request.store, external_size).await?
        {
            return Ok(report(v, checkpoint_info, 0, 0, 0, 0, started, warnings));
        }
    }
    let (min_id, max_id): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT min(id), max(id) FROM audit_logs")
            .fetch_one(pool)
            .await?;
    let sealed = authentic.seal.as_ref().map_or(0, |s| s.size as i64);
    let signed = authentic.size() as i64;
    let last = max_id.unwrap_or(0).max(signed);
    let from = request.from.unwrap_or(1).max(1);
    let to = request.to.unwrap_or(last).min(last);
    // Events that retention removed under a seal are not missing.
    let start = from.max(match min_id {
        Some(min) if min > 1 && min - 1 <= sealed => min,
        _ => 1,
    });
    let unsealed = (max_id.unwrap_or(0) - signed).max(0) as u64;
    let total = (to - start + 1).max(0) as u64;
    // The hash the first checked event must chain to.
    let mut expected_previous: Option<String> = if start <= 1 {
        None
    } else if let Some(h) = authentic.get(start - 1) {
        Some(hex::encode(h))
    } else if start - 1 == sealed {
        authentic.seal.as_ref().and_then(|s| s.head.clone())
    } else {
        sqlx::query_scalar("SELECT content_hash::text FROM audit_logs WHERE id = $1")
            .bind(start - 1)
            .fetch_optional(pool)
            .await?
    };
    let erased = erased_subjects(pool).await?;
    let mut checked = 0u64;
    // The next chunk is read while this one is hashed (on every core).
    let (chunks_tx, mut chunks_rx) = tokio::sync::mpsc::channel(1);
    let reader = tokio::spawn(read_chunks(pool.clone(), start, to, chunks_tx));
    while let Some(chunk) = chunks_rx.recv().await {
        let (next, upto, raw) = chunk?;
        let results: Vec<RowCheck> = tokio::task::spawn_blocking(move || {
            let lines: Vec<&[u8]> = raw
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            lines
                .into_par_iter()
                .map(RowCheck::of)
                .collect::<std::result::Result<Vec<_>, String>>()
        })
        .await
        .map_err(|e| Error::internal(format!("verification task failed: {e}")))?
        .map_err(|e| Error::internal(format!("read the audit log: {e}")))?;
        let mut expected_id = next;
        for row in &results {
            if let Some(v) = walk_one(
                row,
                expected_id,
                &expected_previous,
                &authentic,
                &erased,
                pool,
            )
            .await?
            {
                return Ok(report(
                    v,
                    checkpoint_info,
                    checked,
                    start,
                    to,
                    unsealed,
                    started,
                    warnings,
                ));
            }
            expected_previous = Some(row.stored_hash.clone());
            expected_id += 1;
            checked += 1;
        }
        if expected_id <= upto {
            // The chunk ended early: the events from here on are gone.
            let problem = if max_id.is_none_or(|m| expected_id > m) {
                AuditProblem::TailMissing
            } else {
                AuditProblem::EventMissing
            };
            let detail = match problem {
                AuditProblem::TailMissing => format!(
                    "events {expected_id}..{last} are missing: the newest checkpoint covers {signed} events but the database ends at {}",
                    max_id.unwrap_or(0)
                ),
                _ => format!("event {expected_id} is missing"),
            };
            return Ok(report(
                failed(problem, Some(expected_id), detail),
                checkpoint_info,
                checked,
                start,
                to,
                unsealed,
                started,
                warnings,
            ));
        }
        (request.progress)(checked, total);
    }
    reader.abort();
    if unsealed > 0 && authentic.newest.is_some() {
        warnings.push(format!(
            "{} not yet covered by a signed checkpoint; only the chain was checked there",
            if unsealed == 1 {
                "the newest event is".to_string()
            } else {
                format!("the {unsealed} newest events are")
            }
        ));
    }
    Ok(report(
        Verdict::Intact,
        checkpoint_info,
        checked,
        start,
        to,
        unsealed,
        started,
        warnings,
    ))
}

#[allow(clippy::too_many_arguments)]
fn report(
    verdict: Verdict,
    checkpoint: Option<AuditCheckpointInfo>,
    checked: u64,
    from: i64,
    to: i64,
    unsealed: u64,
    started: Instant,
    warnings: Vec<String>,
) -> AuditVerification {
    let seconds = started.elapsed().as_secs_f64();
    let (intact, problem, first_bad_id, detail) = match verdict {
        Verdict::Intact => (true, None, None, None),
        Verdict::Failed {
            problem,
            first_bad_id,
            detail,
        } => (false, Some(problem), first_bad_id, Some(detail)),
    };
    AuditVerification {
        intact,
        problem,
        first_bad_id,
        detail,
        checked_from: from,
        checked_to: to,
        events_checked: checked as i64,
        unsealed_events: unsealed as i64,
        checkpoint,
        warnings,
        seconds,
        events_per_second: if seconds > 0.0 {
            checked as f64 / seconds
        } else {
            0.0
        },
    }
}

pub fn info(c: &Checkpoint, s: &Statement) -> AuditCheckpointInfo {
    AuditCheckpointInfo {
        kind: s.kind.as_str().to_string(),
        tree_size: s.size as i64,
        root_hash: hex::encode(s.root),
        chain_head: s.head.clone(),
        signed_at: s.time,
        algorithm: c.algorithm.to_string(),
        key_fingerprint: c.key_fingerprint.clone(),
    }
}

/// Read and authenticate the external checkpoints and the event hashes they cover.
fn load_authentic(store: &Store, key: &VerifyingKey) -> std::result::Result<Authentic, Verdict> {
    let checkpoints = store
        .list()
        .map_err(|e| failed(AuditProblem::SignatureInvalid, None, e.message))?;
    let mut authentic = Authentic {
        offset: 0,
        hashes: Vec::new(),
        newest: None,
        seal: None,
    };
    let mut frontier: Option<Frontier> = None;
    // (size, root) of every checkpoint of the whole log, for the consistency check.
    let mut full: Vec<(u64, Hash)> = Vec::new();
    for c in checkpoints {
        let statement = c.verified(key).map_err(|why| {
            let size = c.statement().map(|s| s.size).unwrap_or(0);
            failed(
                AuditProblem::SignatureInvalid,
                None,
                format!("the external checkpoint at size {size} is not valid: {why}"),
            )
        })?;
        let f = match frontier.as_mut() {
            Some(f) => f,
            None => {
                // The oldest checkpoint kept: start from it (older ones may have been removed
                // together with the events they covered).
                if c.previous_size == 0 {
                    frontier.insert(Frontier::new())
                } else {
                    authentic.offset = statement.size;
                    let f = c
                        .frontier()
                        .map_err(|why| failed(AuditProblem::SignatureInvalid, None, why))?;
                    authentic.newest = Some((c.clone(), statement.clone()));
                    if statement.kind == Kind::Seal {
                        authentic.seal = Some(statement);
                    }
                    frontier = Some(f);
                    continue;
                }
            }
        };
        if c.previous_size > authentic.size()
            || statement.size < authentic.size().min(statement.size)
        {
            return Err(failed(
                AuditProblem::SignatureInvalid,
                None,
                format!(
                    "the external checkpoints have a gap before size {}",
                    statement.size
                ),
            ));
        }
        let leaves = store
            .leaves(&statement, c.previous_size)
            .map_err(|e| failed(AuditProblem::SignatureInvalid, None, e.message))?;
        for (i, leaf) in leaves.iter().enumerate() {
            let position = c.previous_size + i as u64; // 0-based
            if position < authentic.size() {
                let known = position
                    .checked_sub(authentic.offset)
                    .map(|p| authentic.hashes[p as usize]);
                if known.is_some_and(|k| &k != leaf) {
                    return Err(failed(
                        AuditProblem::SignatureInvalid,
                        None,
                        format!(
                            "two external checkpoints disagree about event {}",
                            position + 1
                        ),
                    ));
                }
            } else {
                authentic.hashes.push(*leaf);
                f.push(leaf_hash(leaf));
            }
        }
        if statement.size == f.size() {
            if f.root() != statement.root {
                return Err(failed(
                    AuditProblem::SignatureInvalid,
                    None,
                    format!("the event hashes stored with the checkpoint at size {} do not lead to its signed root", statement.size),
                ));
            }
        } else if statement.kind != Kind::Seal {
            return Err(failed(
                AuditProblem::SignatureInvalid,
                None,
                format!("checkpoint at size {} is out of order", statement.size),
            ));
        }
        if statement.size == f.size() && statement.kind == Kind::Checkpoint {
            full.push((statement.size, statement.root));
        }
        if statement.kind == Kind::Seal {
            authentic.seal = Some(statement.clone());
        }
        if authentic
            .newest
            .as_ref()
            .is_none_or(|(_, s)| s.size <= statement.size)
        {
            authentic.newest = Some((c, statement));
        }
    }
    // Consistency (RFC 6962 2.1.2) of the two newest checkpoints: the newer tree extends the
    // older one. (Every root was already recomputed from the authenticated hashes above.)
    if let [.., (old_size, old_root), (new_size, new_root)] = full[..] {
        if old_size < new_size {
            let prefix = match &authentic.newest {
                _ if authentic.offset == 0 => Frontier::new(),
                _ => return Ok(authentic),
            };
            let leaves: Vec<Hash> = authentic.hashes[..(new_size - authentic.offset) as usize]
                .iter()
                .map(|h| leaf_hash(h))
                .collect();
            let ok = merkle::consistency_proof(&prefix, &leaves, old_size)
                .map(|proof| {
                    merkle::verify_consistency(old_size, new_size, &old_root, &new_root, &proof)
                })
                .unwrap_or(false);
            if !ok {
                return Err(failed(
                    AuditProblem::SignatureInvalid,
                    None,
                    format!("checkpoints at sizes {old_size} and {new_size} are not consistent"),
                ));
            }
        }
    }
    Ok(authentic)
}

/// The database's copies of the checkpoints must carry valid signatures too: a replaced
/// signature there is tampering, even if the external copy is intact.
async fn check_database_checkpoints(
    pool: &PgPool,
    key: &VerifyingKey,
    store: &Store,
    external_size: u64,
) -> Result<Option<Verdict>> {
    let rows = sqlx::query(
        "SELECT tree_size, signature, signed_note, algorithm, key_fingerprint, frontier
         FROM audit_log_verification WHERE kind IN ('checkpoint', 'seal') ORDER BY created_at",
    )
    .fetch_all(pool)
    .await?;
    for row in rows {
        let size: Option<i64> = row.try_get("tree_size")?;
        let frontier: Option<String> = row.try_get("frontier")?;
        let checkpoint = Checkpoint {
            note: row
                .try_get::<Option<String>, _>("signed_note")?
                .unwrap_or_default(),
            signature: row
                .try_get::<Option<String>, _>("signature")?
                .unwrap_or_default(),
            algorithm: row
                .try_get::<Option<String>, _>("algorithm")?
                .and_then(|a| a.parse().ok())
                .unwrap_or(key.algorithm()),
            key_fingerprint: row
                .try_get::<Option<String>, _>("key_fingerprint")?
                .unwrap_or_default(),
            previous_size: 0,
            frontier: frontier
                .and_then(|f| serde_json::from_str(&f).ok())
                .unwrap_or_default(),
        };
        let statement = match checkpoint.verified(key) {
            Ok(statement) => statement,
            Err(why) => {
                return Ok(Some(failed(
                    AuditProblem::SignatureInvalid,
                    None,
                    format!(
                        "the checkpoint recorded in the database at size {} is not valid: {why}",
                        size.unwrap_or(0)
                    ),
                )))
            }
        };
        // Validly signed, so this log reached that size (the signed note's, not the column's):
        // the folder must know it too, or it is not the trusted copy (a rewrite could hide
        // behind it).
        let size = statement.size;
        if size > external_size {
            return Ok(Some(failed(
                AuditProblem::CheckpointsMissing,
                None,
                format!(
                    "the database records a checkpoint signed with this key at size {size}, but the checkpoint folder {} goes only to size {external_size}: it is incomplete or not this log's",
                    store.dir().display()
                ),
            )));
        }
    }
    Ok(None)
}

/// Subjects whose erasure is recorded: erased in `actors` and named by an erasure event.
async fn erased_subjects(pool: &PgPool) -> Result<HashSet<Uuid>> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT a.id FROM actors a WHERE a.erased_at IS NOT NULL AND EXISTS (
             SELECT 1 FROM audit_logs l WHERE l.event_type = 'gdpr.subject_erased'
                AND l.resource_id = a.id::text)",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// One event as read back, with the hashes recomputed from its fields.
struct RowCheck {
    id: i64,
    stored_hash: String,
    stored_previous: Option<String>,
    /// Content hash recomputed from the fields with the event's own id.
    recomputed: std::result::Result<String, String>,
    /// The fields' hash as if the event sat at id-1 / id+1 (set only when `recomputed` differs).
    shifted: [Option<String>; 2],
    personal: PersonalCheck,
    actor_id: Uuid,
    subject_id: Option<Uuid>,
}

enum PersonalCheck {
    Matches,
    Differs,
    Erased,
}

/// Read events `from..=to` in chunks with `COPY … TO STDOUT` (text format: the cheapest way
/// to move many rows), each chunk as raw bytes.
async fn read_chunks(
    pool: PgPool,
    from: i64,
    to: i64,
    tx: tokio::sync::mpsc::Sender<Result<(i64, i64, Vec<u8>)>>,
) {
    use futures_util::TryStreamExt;
    let mut next = from;
    while next <= to {
        let upto = (next + CHUNK - 1).min(to);
        let read = async {
            let mut conn = pool.acquire().await?;
            let mut stream = conn
                .copy_out_raw(&format!(
                    "COPY (SELECT l.id, l.event_id, l.event_type, l.resource_type, l.resource_id,
                         l.action, l.outcome, l.source, l.actor_id, l.subject_id, l.changes,
                         l.old_values, l.new_values, l.personal_digest,
                         to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                         l.previous_hash, l.content_hash, encode(l.personal_salt, 'hex'),
                         host(l.ip_address), l.user_agent, l.personal_details,
                         COALESCE(a.name, '')
                     FROM audit_logs l LEFT JOIN actors a ON a.id = l.actor_id
                     WHERE l.id BETWEEN {next} AND {upto} ORDER BY l.id) TO STDOUT"
                ))
                .await?;
            let mut raw = Vec::new();
            while let Some(bytes) = stream.try_next().await? {
                raw.extend_from_slice(&bytes);
            }
            Ok::<_, Error>(raw)
        }
        .await;
        let failed = read.is_err();
        if tx.send(read.map(|raw| (next, upto, raw))).await.is_err() || failed {
            return;
        }
        next = upto + 1;
    }
}

/// The fields of one COPY text row: tab-separated, `\N` for NULL, backslash escapes.
fn fields(line: &[u8]) -> std::result::Result<Vec<Option<std::borrow::Cow<'_, str>>>, String> {
    line.split(|b| *b == b'\t')
        .map(|f| {
            if f == b"\\N" {
                return Ok(None);
            }
            let text = std::str::from_utf8(f).map_err(|e| format!("not UTF-8: {e}"))?;
            if !text.contains('\\') {
                return Ok(Some(std::borrow::Cow::Borrowed(text)));
            }
            let mut out = String::with_capacity(text.len());
            let mut chars = text.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                out.push(match chars.next() {
                    Some('b') => '\u{8}',
                    Some('f') => '\u{c}',
                    Some('n') => '\n',
                    Some('r') => '\r',
                    Some('t') => '\t',
                    Some('v') => '\u{b}',
                    Some(other) => other,
                    None => return Err("a field ends in a backslash".to_string()),
                });
            }
            Ok(Some(std::borrow::Cow::Owned(out)))
        })
        .collect()
}

fn parse_json(text: &str) -> std::result::Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("unreadable JSON: {e}"))
}

impl RowCheck {
    fn of(line: &[u8]) -> std::result::Result<RowCheck, String> {
        let f = fields(line)?;
        if f.len() != 22 {
            return Err(format!("a row has {} fields, expected 22", f.len()));
        }
        let text = |i: usize| f[i].as_deref();
        let required = |i: usize| text(i).ok_or_else(|| format!("field {i} is NULL"));
        let id: i64 = required(0)?
            .parse()
            .map_err(|_| "malformed id".to_string())?;
        let stored_hash = required(16)?.to_string();
        let stored_previous = text(15).map(str::to_string);
        let actor_id = required(8)?
            .parse::<Uuid>()
            .map_err(|_| "malformed actor id".to_string())?;
        let subject_id = text(9)
            .map(|s| s.parse::<Uuid>())
            .transpose()
            .map_err(|_| "malformed subject id".to_string())?;
        let mut buf = Vec::with_capacity(1024);
        let parsed = (|| -> std::result::Result<_, String> {
            Ok((
                parse_json(required(10)?)?,
                text(11).map(parse_json).transpose()?,
                text(12).map(parse_json).transpose()?,
            ))
        })();
        let mut hash_at = |id: i64| -> std::result::Result<String, String> {
            let (changes, old, new) = parsed.as_ref().map_err(|e| e.clone())?;
            super::canonical::CanonicalEvent {
                id,
                event_id: required(1)?,
                event_type: required(2)?,
                resource_type: required(3)?,
                resource_id: text(4),
                action: required(5)?,
                outcome: required(6)?,
                source: required(7)?,
                actor_id: required(8)?,
                subject_id: text(9),
                changes,
                old_values: old.as_ref(),
                new_values: new.as_ref(),
                personal_digest: required(13)?,
                created_at: required(14)?,
                previous_hash: text(15),
            }
            .content_hash(&mut buf)
            .ok_or_else(|| "holds JSON that cannot be canonicalised".to_string())
        };
        let recomputed = hash_at(id);
        let shifted = if recomputed.as_deref() == Ok(stored_hash.as_str()) {
            [None, None]
        } else {
            [hash_at(id - 1).ok(), hash_at(id + 1).ok()]
        };
        let personal = match text(17) {
            Some(salt_hex) => {
                let salt = hex::decode(salt_hex).map_err(|_| "malformed salt".to_string())?;
                let ip = text(18).map(|ip| {
                    ip.parse::<std::net::IpAddr>()
                        .map(|a| a.to_string())
                        .unwrap_or_else(|_| ip.to_string())
                });
                let digest = text(20)
                    .map(parse_json)
                    .transpose()
                    .ok()
                    .and_then(|details| {
                        super::canonical::personal_digest(
                            &mut buf,
                            &salt,
                            required(21).ok()?,
                            ip.as_deref(),
                            text(19),
                            details.as_ref(),
                        )
                    });
                if digest.as_deref() == text(13) {
                    PersonalCheck::Matches
                } else {
                    PersonalCheck::Differs
                }
            }
            None => PersonalCheck::Erased,
        };
        Ok(RowCheck {
            id,
            stored_hash,
            stored_previous,
            recomputed,
            shifted,
            personal,
            actor_id,
            subject_id,
        })
    }

    fn self_consistent(&self) -> bool {
        self.recomputed.as_deref() == Ok(self.stored_hash.as_str())
    }
}

/// Check one event against the chain and the authentic hashes; `Some` names the problem.
async fn walk_one(
    row: &RowCheck,
    expected_id: i64,
    expected_previous: &Option<String>,
    authentic: &Authentic,
    erased: &HashSet<Uuid>,
    pool: &PgPool,
) -> Result<Option<Verdict>> {
    if row.id != expected_id {
        return Ok(Some(failed(
            AuditProblem::EventMissing,
            Some(expected_id),
            if row.id == expected_id + 1 {
                format!("event {expected_id} is missing")
            } else {
                format!("events {expected_id}..{} are missing", row.id - 1)
            },
        )));
    }
    let id = row.id;
    let authentic_hash = authentic.get(id).map(hex::encode);
    let matches_authentic = authentic_hash
        .as_deref()
        .is_none_or(|a| a == row.stored_hash);
    if !row.self_consistent() {
        if let Err(why) = &row.recomputed {
            return Ok(Some(failed(
                AuditProblem::ContentChanged,
                Some(id),
                format!("event {id} cannot be read: {why}"),
            )));
        }
        if authentic_hash.as_deref() == Some(row.stored_hash.as_str()) {
            // The stored hash is the authentic one: the fields were edited.
            if row.shifted[1].as_deref() == Some(row.stored_hash.as_str()) {
                return Ok(Some(failed(
                    AuditProblem::EventMissing,
                    Some(id),
                    format!(
                        "event {id} is missing: the event now numbered {id} was written as {}",
                        id + 1
                    ),
                )));
            }
            return Ok(Some(failed(
                AuditProblem::ContentChanged,
                Some(id),
                format!("event {id} was changed: its fields no longer give its content hash"),
            )));
        }
        return classify_moved(row, authentic_hash.as_deref(), pool)
            .await
            .map(Some);
    }
    if !matches_authentic {
        return classify_moved(row, authentic_hash.as_deref(), pool)
            .await
            .map(Some);
    }
    if &row.stored_previous != expected_previous {
        return Ok(Some(failed(
            if authentic_hash.is_some() { AuditProblem::ContentChanged } else { AuditProblem::EventInserted },
            Some(id - 1),
            format!("event {id} does not chain to event {}: the event before it was replaced or inserted", id - 1),
        )));
    }
    match row.personal {
        PersonalCheck::Matches => {}
        PersonalCheck::Differs => {
            return Ok(Some(failed(
                AuditProblem::ContentChanged,
                Some(id),
                format!("event {id} was changed: its personal fields (actor name, address, user agent or personal details) no longer match their digest"),
            )))
        }
        PersonalCheck::Erased => {
            let recorded = erased.contains(&row.actor_id) || row.subject_id.is_some_and(|s| erased.contains(&s));
            if !recorded {
                return Ok(Some(failed(
                    AuditProblem::ContentChanged,
                    Some(id),
                    format!("event {id} lost its personal fields without a recorded erasure"),
                )));
            }
        }
    }
    Ok(None)
}

/// The event at `row.id` is not the authentic one: find where the authentic one went.
async fn classify_moved(
    row: &RowCheck,
    authentic_hash: Option<&str>,
    pool: &PgPool,
) -> Result<Verdict> {
    let id = row.id;
    let Some(authentic_hash) = authentic_hash else {
        // Beyond the newest checkpoint: only the event's own hashes tell. An event whose
        // predecessor sits after it was exchanged with it.
        if let Some(previous) = &row.stored_previous {
            let at: Option<i64> =
                sqlx::query_scalar("SELECT id FROM audit_logs WHERE content_hash = $1 LIMIT 1")
                    .bind(previous)
                    .fetch_optional(pool)
                    .await?;
            if let Some(j) = at.filter(|j| *j > id) {
                return Ok(failed(
                    AuditProblem::OrderChanged,
                    Some(id),
                    format!("events {id} and {j} are out of order"),
                ));
            }
        }
        if row.shifted[0].as_deref() == Some(row.stored_hash.as_str()) {
            return Ok(failed(
                AuditProblem::EventInserted,
                Some(id - 1),
                format!(
                    "an event was inserted before event {}: the events after it were renumbered",
                    id - 1
                ),
            ));
        }
        if row.shifted[1].as_deref() == Some(row.stored_hash.as_str()) {
            return Ok(failed(
                AuditProblem::EventMissing,
                Some(id),
                format!("event {id} is missing: later events were renumbered to close the gap"),
            ));
        }
        return Ok(failed(
            AuditProblem::ContentChanged,
            Some(id),
            format!("event {id} was changed"),
        ));
    };
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM audit_logs WHERE content_hash = $1 ORDER BY id LIMIT 1")
            .bind(authentic_hash)
            .fetch_optional(pool)
            .await?;
    Ok(match found {
        Some(j) if j > id => {
            // The authentic event sits later. Exchanged with the one there, or pushed down by
            // a foreign event?
            let there: Option<String> =
                sqlx::query_scalar("SELECT content_hash::text FROM audit_logs WHERE id = $1")
                    .bind(j)
                    .fetch_optional(pool)
                    .await?;
            let row_hash_is_foreign = row.shifted[0].as_deref() != Some(row.stored_hash.as_str())
                && row.shifted[1].as_deref() != Some(row.stored_hash.as_str())
                && row.self_consistent();
            if there.is_some()
                && !row_hash_is_foreign
                && row.shifted[1].as_deref() == Some(row.stored_hash.as_str())
            {
                failed(
                    AuditProblem::OrderChanged,
                    Some(id),
                    format!("events {id} and {j} are out of order"),
                )
            } else {
                failed(AuditProblem::EventInserted, Some(id), format!("event {id} is not part of the signed log: it was inserted, and the authentic event {id} now sits at {j}"))
            }
        }
        _ => {
            if row.shifted[1].as_deref() == Some(row.stored_hash.as_str()) {
                failed(
                    AuditProblem::EventMissing,
                    Some(id),
                    format!("event {id} is missing: later events were renumbered to close the gap"),
                )
            } else {
                failed(AuditProblem::ContentChanged, Some(id), format!("event {id} differs from the signed log (its content hash was recomputed after a change)"))
            }
        }
    })
}

pub fn parse_root(hex_text: &str) -> Option<Hash> {
    parse_hash(hex_text)
}

/// For the benchmark: the database part and the core part of verification, timed apart.
pub mod timing {
    use super::*;

    /// Read events `from..=to` as verification does (COPY text), into memory.
    pub async fn read(pool: &PgPool, from: i64, to: i64) -> Result<Vec<Vec<u8>>> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let reader = tokio::spawn(read_chunks(pool.clone(), from, to, tx));
        let mut chunks = Vec::new();
        while let Some(chunk) = rx.recv().await {
            chunks.push(chunk?.2);
        }
        reader.abort();
        Ok(chunks)
    }

    /// Recompute every event's hashes and check the chain links, on every core; returns the
    /// number of events that are intact.
    pub fn check(chunks: &[Vec<u8>]) -> usize {
        let mut previous: Option<String> = None;
        let mut intact = 0;
        for raw in chunks {
            let lines: Vec<&[u8]> = raw
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            let rows: Vec<RowCheck> = lines
                .into_par_iter()
                .filter_map(|l| RowCheck::of(l).ok())
                .collect();
            for row in rows {
                if row.self_consistent()
                    && row.stored_previous == previous
                    && matches!(row.personal, PersonalCheck::Matches)
                {
                    intact += 1;
                }
                previous = Some(row.stored_hash);
            }
        }
        intact
    }
}
