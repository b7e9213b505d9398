//! Reading events back (`COPY … TO STDOUT` in binary format) and recomputing each one's
//! hashes.
//!
//! Binary COPY because the server's cost dominates verification: it sends ids, UUIDs, times,
//! salts and addresses as they are stored instead of formatting them as text, and nothing
//! needs unescaping here. Actor names come from one read of `actors`, not a join per chunk.

use super::*;
use crate::audit::canonical::{format_micros, personal_digest, CanonicalEvent};
use std::collections::HashMap;

/// The columns read, in order.
const COLUMNS: &str = "id, event_id, event_type, resource_type, resource_id, action, outcome, \
     source, actor_id, subject_id, changes, old_values, new_values, personal_digest, created_at, \
     previous_hash, content_hash, personal_salt, ip_address, user_agent, personal_details";
const FIELDS: usize = 21;

/// Actor names by id (the personal digest commits to the name).
pub(super) type ActorNames = HashMap<Uuid, String>;

pub(super) async fn actor_names(pool: &PgPool) -> Result<ActorNames> {
    let rows: Vec<(Uuid, Option<String>)> = sqlx::query_as("SELECT id, name FROM actors")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| (id, name.unwrap_or_default()))
        .collect())
}

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

/// Events `from..=to` as raw binary COPY data, in the order the server finds them: an
/// `ORDER BY` made the server sort each chunk on disk (a chunk exceeds `work_mem`), which cost
/// more than all the rest of the read; [`split_rows`] puts them in order.
pub(super) async fn read_chunk(pool: PgPool, from: i64, to: i64) -> Result<Vec<u8>> {
    use futures_util::TryStreamExt;
    let mut conn = pool.acquire().await?;
    let mut stream = conn
        .copy_out_raw(&format!(
            "COPY (SELECT {COLUMNS} FROM audit_logs WHERE id BETWEEN {from} AND {to})
             TO STDOUT (FORMAT binary)"
        ))
        .await?;
    // About 600 bytes an event: grow once or twice, not twenty times.
    let mut raw = Vec::with_capacity(((to - from + 1).max(0) as usize).saturating_mul(640));
    while let Some(bytes) = stream.try_next().await? {
        raw.extend_from_slice(&bytes);
    }
    Ok(raw)
}

/// The fields of one row: `None` for NULL.
pub(super) type Fields<'a> = [Option<&'a [u8]>; FIELDS];

/// Split binary COPY data into rows (header, tuples of length-prefixed fields, trailer),
/// ordered by id.
pub(super) fn split_rows(raw: &[u8]) -> std::result::Result<Vec<Fields<'_>>, String> {
    let mut rows = split_unordered(raw)?;
    let id = |f: &Fields| f[0].and_then(|b| b.try_into().ok()).map(i64::from_be_bytes);
    // An append-only table is almost always stored in id order already.
    if !rows.is_sorted_by_key(id) {
        rows.sort_unstable_by_key(id);
    }
    Ok(rows)
}

fn split_unordered(raw: &[u8]) -> std::result::Result<Vec<Fields<'_>>, String> {
    const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
    let bad = |what: &str| format!("malformed COPY data: {what}");
    let rest = raw
        .strip_prefix(SIGNATURE)
        .ok_or_else(|| bad("no signature"))?;
    let take = |at: &mut usize, n: usize| -> std::result::Result<&[u8], String> {
        let s = rest.get(*at..*at + n).ok_or_else(|| bad("truncated"))?;
        *at += n;
        Ok(s)
    };
    let int = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let mut at = 4; // flags
    let extension = int(take(&mut at, 4)?);
    take(
        &mut at,
        usize::try_from(extension).map_err(|_| bad("header"))?,
    )?;
    let mut rows = Vec::new();
    loop {
        let count = take(&mut at, 2)?;
        let count = i16::from_be_bytes([count[0], count[1]]);
        if count == -1 {
            return Ok(rows);
        }
        if count as usize != FIELDS {
            return Err(format!("a row has {count} fields, expected {FIELDS}"));
        }
        let mut fields: Fields = [None; FIELDS];
        for field in fields.iter_mut() {
            let len = int(take(&mut at, 4)?);
            if len >= 0 {
                *field = Some(take(&mut at, len as usize)?);
            }
        }
        rows.push(fields);
    }
}

/// Reads binary column values; errors name the column.
struct Row<'a>(&'a Fields<'a>);

impl<'a> Row<'a> {
    fn required(&self, i: usize, name: &str) -> std::result::Result<&'a [u8], String> {
        self.0[i].ok_or_else(|| format!("{name} is NULL"))
    }

    fn text(&self, i: usize, name: &str) -> std::result::Result<Option<&'a str>, String> {
        self.0[i]
            .map(|b| std::str::from_utf8(b).map_err(|_| format!("{name} is not UTF-8")))
            .transpose()
    }

    fn required_text(&self, i: usize, name: &str) -> std::result::Result<&'a str, String> {
        self.text(i, name)?.ok_or_else(|| format!("{name} is NULL"))
    }

    fn uuid(&self, i: usize, name: &str) -> std::result::Result<Option<Uuid>, String> {
        self.0[i]
            .map(|b| Uuid::from_slice(b).map_err(|_| format!("malformed {name}")))
            .transpose()
    }

    fn int8(&self, i: usize, name: &str) -> std::result::Result<i64, String> {
        let b: [u8; 8] = self
            .required(i, name)?
            .try_into()
            .map_err(|_| format!("malformed {name}"))?;
        Ok(i64::from_be_bytes(b))
    }

    /// jsonb's binary form: a version byte (1), then the text.
    fn jsonb(&self, i: usize, name: &str) -> std::result::Result<Option<&'a str>, String> {
        self.0[i]
            .map(|b| match b.split_first() {
                Some((1, text)) => {
                    std::str::from_utf8(text).map_err(|_| format!("{name} is not UTF-8"))
                }
                _ => Err(format!("{name} is not jsonb version 1")),
            })
            .transpose()
    }

    /// inet's binary form: family (2 = IPv4, 3 = IPv6), bits, is_cidr, length, address.
    fn inet(&self, i: usize) -> std::result::Result<Option<std::net::IpAddr>, String> {
        let Some(b) = self.0[i] else { return Ok(None) };
        let malformed = || "malformed ip_address".to_string();
        match b {
            [2, _, _, 4, a @ ..] => {
                let a: [u8; 4] = a.try_into().map_err(|_| malformed())?;
                Ok(Some(a.into()))
            }
            [3, _, _, 16, a @ ..] => {
                let a: [u8; 16] = a.try_into().map_err(|_| malformed())?;
                Ok(Some(a.into()))
            }
            _ => Err(malformed()),
        }
    }

    /// timestamptz's binary form: microseconds since 2000-01-01 UTC.
    fn time(&self, i: usize) -> std::result::Result<[u8; 27], String> {
        const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;
        let micros = self.int8(i, "created_at")?;
        micros
            .checked_add(POSTGRES_EPOCH_UNIX_MICROS)
            .and_then(format_micros)
            .ok_or_else(|| "created_at is out of range".to_string())
    }
}

/// An IPv4 address as `Ipv4Addr`'s `Display` writes it (dotted decimal), without the
/// formatting machinery: every event carries one.
fn format_ipv4(ip: std::net::Ipv4Addr, out: &mut [u8; 15]) -> &str {
    let mut n = 0;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out[n] = b'.';
            n += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for d in &digits[skip..] {
            out[n] = b'0' + d;
            n += 1;
        }
    }
    // Only ASCII digits and dots were written.
    std::str::from_utf8(&out[..n]).unwrap_or_default()
}

/// Canonical text of a JSON value read back: the fast transcoder, or (`generic`) the generic
/// canonicalizer that defines the format.
fn canonical_json(text: &str, generic: bool, out: &mut Vec<u8>) -> std::result::Result<(), String> {
    if !generic && crate::audit::jcs::transcode(text, out) {
        return Ok(());
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("unreadable JSON: {e}"))?;
    serde_json_canonicalizer::to_writer(&value, &mut *out)
        .map_err(|_| "holds JSON that cannot be canonicalised".to_string())
}

/// The canonical JSON of one event: changes, old values, new values, personal details.
struct Jsons {
    buf: Vec<u8>,
    ranges: [Option<std::ops::Range<usize>>; 4],
}

impl Jsons {
    fn of(texts: [Option<&str>; 4], generic: bool) -> std::result::Result<Jsons, String> {
        let mut buf = Vec::with_capacity(texts.iter().flatten().map(|t| t.len()).sum());
        let mut ranges: [Option<std::ops::Range<usize>>; 4] = Default::default();
        for (text, range) in texts.into_iter().zip(ranges.iter_mut()) {
            if let Some(text) = text {
                let start = buf.len();
                canonical_json(text, generic, &mut buf)?;
                *range = Some(start..buf.len());
            }
        }
        Ok(Jsons { buf, ranges })
    }

    fn get(&self, i: usize) -> Option<&str> {
        // The canonical text of a `&str` is UTF-8.
        self.ranges[i]
            .clone()
            .and_then(|r| std::str::from_utf8(&self.buf[r]).ok())
    }
}

impl RowCheck {
    pub(super) fn of(f: &Fields, actors: &ActorNames) -> std::result::Result<RowCheck, String> {
        let row = Row(f);
        let id = row.int8(0, "id")?;
        let stored_hash = row.required_text(16, "content_hash")?.to_string();
        let stored_previous = row.text(15, "previous_hash")?.map(str::to_string);
        let actor_id = row
            .uuid(8, "actor id")?
            .ok_or_else(|| "actor id is NULL".to_string())?;
        let subject_id = row.uuid(9, "subject id")?;
        let texts = [
            row.jsonb(10, "changes")?,
            row.jsonb(11, "old_values")?,
            row.jsonb(12, "new_values")?,
            row.jsonb(20, "personal_details")?,
        ];
        let mut buf = Vec::with_capacity(1024);
        let mut hash_at = |id: i64, jsons: &Jsons| -> std::result::Result<String, String> {
            let mut event_id = [0u8; 36];
            let event_id = row
                .uuid(1, "event id")?
                .ok_or_else(|| "event id is NULL".to_string())?
                .hyphenated()
                .encode_lower(&mut event_id);
            let mut actor = [0u8; 36];
            let actor = actor_id.hyphenated().encode_lower(&mut actor);
            let mut subject = [0u8; 36];
            let subject = subject_id.map(|s| &*s.hyphenated().encode_lower(&mut subject));
            let created_at = row.time(14)?;
            Ok(CanonicalEvent {
                id,
                event_id,
                event_type: row.required_text(2, "event_type")?,
                resource_type: row.required_text(3, "resource_type")?,
                resource_id: row.text(4, "resource_id")?,
                action: row.required_text(5, "action")?,
                outcome: row.required_text(6, "outcome")?,
                source: row.required_text(7, "source")?,
                actor_id: actor,
                subject_id: subject,
                changes: jsons.get(0).ok_or_else(|| "changes is NULL".to_string())?,
                old_values: jsons.get(1),
                new_values: jsons.get(2),
                personal_digest: row.required_text(13, "personal_digest")?,
                // Only ASCII digits and separators.
                created_at: std::str::from_utf8(&created_at).unwrap_or_default(),
                previous_hash: row.text(15, "previous_hash")?,
            }
            .content_hash(&mut buf))
        };
        // The fast canonical JSON first; on any disagreement the generic canonicalizer decides.
        let fast = Jsons::of(texts, false);
        let mut recomputed = fast
            .as_ref()
            .map_err(String::clone)
            .and_then(|j| hash_at(id, j));
        let mut jsons = fast;
        if recomputed.as_deref() != Ok(stored_hash.as_str()) {
            jsons = Jsons::of(texts, true);
            recomputed = jsons
                .as_ref()
                .map_err(String::clone)
                .and_then(|j| hash_at(id, j));
        }
        let shifted = match (&recomputed, &jsons) {
            (Ok(h), _) if *h == stored_hash => [None, None],
            (_, Ok(j)) => [hash_at(id - 1, j).ok(), hash_at(id + 1, j).ok()],
            _ => [None, None],
        };
        let personal = match f[17] {
            Some(salt) => {
                let actor_name = actors.get(&actor_id).map_or("", String::as_str);
                let mut ip_text = [0u8; 15];
                let ip_owned;
                let ip = match row.inet(18)? {
                    Some(std::net::IpAddr::V4(v4)) => Some(format_ipv4(v4, &mut ip_text)),
                    Some(other) => {
                        ip_owned = other.to_string();
                        Some(ip_owned.as_str())
                    }
                    None => None,
                };
                let user_agent = row.text(19, "user_agent")?;
                let stored = row.required_text(13, "personal_digest")?;
                let digest = |jsons: &Jsons, buf: &mut Vec<u8>| {
                    personal_digest(
                        buf,
                        salt,
                        actor_name,
                        ip,
                        user_agent,
                        jsons.get(3).map(str::as_bytes),
                    )
                };
                let matches = match &jsons {
                    Ok(j) if digest(j, &mut buf) == stored => true,
                    _ => Jsons::of(texts, true).is_ok_and(|j| digest(&j, &mut buf) == stored),
                };
                if matches {
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

#[cfg(test)]
mod tests {
    #[test]
    fn format_ipv4_equals_display() {
        for ip in [
            "0.0.0.0",
            "10.0.0.1",
            "127.0.0.1",
            "192.168.100.255",
            "255.255.255.255",
            "1.20.100.9",
        ] {
            let ip: std::net::Ipv4Addr = ip.parse().unwrap();
            assert_eq!(super::format_ipv4(ip, &mut [0; 15]), ip.to_string());
        }
    }
}
