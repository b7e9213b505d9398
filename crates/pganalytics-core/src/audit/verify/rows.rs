//! Reading events back (`COPY … TO STDOUT`, text format) and recomputing each one's hashes.

use super::*;

/// One event as read back, with the hashes recomputed from its fields.
pub(super) struct RowCheck {
    pub(super) id: i64,
    pub(super) stored_hash: String,
    pub(super) stored_previous: Option<String>,
    /// Content hash recomputed from the fields with the event's own id.
    pub(super) recomputed: std::result::Result<String, String>,
    /// The fields' hash as if the event sat at id-1 / id+1 (set only when `recomputed` differs).
    pub(super) shifted: [Option<String>; 2],
    pub(super) personal: PersonalCheck,
    pub(super) actor_id: Uuid,
    pub(super) subject_id: Option<Uuid>,
}

pub(super) enum PersonalCheck {
    Matches,
    Differs,
    Erased,
}

/// Read events `from..=to` in chunks with `COPY … TO STDOUT` (text format: the cheapest way
/// to move many rows), each chunk as raw bytes.
pub(super) async fn read_chunks(
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
    pub(super) fn of(line: &[u8]) -> std::result::Result<RowCheck, String> {
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
        // The stored JSON, re-canonicalised once (jsonb does not keep the text it was given).
        let canonical = |t: &str| -> std::result::Result<String, String> {
            crate::audit::event::canonical_text(&parse_json(t)?)
                .map_err(|_| "holds JSON that cannot be canonicalised".to_string())
        };
        let parsed = (|| -> std::result::Result<_, String> {
            Ok((
                canonical(required(10)?)?,
                text(11).map(canonical).transpose()?,
                text(12).map(canonical).transpose()?,
            ))
        })();
        let mut hash_at = |id: i64| -> std::result::Result<String, String> {
            let (changes, old, new) = parsed.as_ref().map_err(|e| e.clone())?;
            Ok(crate::audit::canonical::CanonicalEvent {
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
                old_values: old.as_deref(),
                new_values: new.as_deref(),
                personal_digest: required(13)?,
                created_at: required(14)?,
                previous_hash: text(15),
            }
            .content_hash(&mut buf))
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
                        crate::audit::canonical::personal_digest(
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

    pub(super) fn self_consistent(&self) -> bool {
        self.recomputed.as_deref() == Ok(self.stored_hash.as_str())
    }
}
