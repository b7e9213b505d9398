//! The canonical (RFC 8785) bytes of an event and of its personal fields, written directly
//! instead of through a `serde_json::Value` tree: verification recomputes them for every
//! event, so this is the hot path. The keys are written in JCS order (UTF-16 code-unit order;
//! all ASCII here, so byte order); strings and nested JSON go through the JCS serializer, so
//! escaping and numbers follow RFC 8785 exactly. The tests check the output against the
//! generic canonicalizer.

use sha2::{Digest, Sha256};

/// Every hashed field of an event, as text.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalEvent<'a> {
    pub id: i64,
    /// Lowercase hyphenated UUID.
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub resource_type: &'a str,
    pub resource_id: Option<&'a str>,
    pub action: &'a str,
    pub outcome: &'a str,
    pub source: &'a str,
    pub actor_id: &'a str,
    pub subject_id: Option<&'a str>,
    /// The JSON values as canonical (RFC 8785) text, written verbatim.
    pub changes: &'a str,
    pub old_values: Option<&'a str>,
    pub new_values: Option<&'a str>,
    pub personal_digest: &'a str,
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub created_at: &'a str,
    pub previous_hash: Option<&'a str>,
}

fn string(out: &mut Vec<u8>, s: &str) {
    super::jcs::write_string(s, out);
}

/// Lowercase hex of a SHA-256 digest.
pub fn hex_digest(digest: &[u8]) -> String {
    let mut out = [0u8; 64];
    // A 32-byte digest fills the 64 digits exactly; hex digits are ASCII.
    let _ = hex::encode_to_slice(digest, &mut out);
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn raw(out: &mut Vec<u8>, canonical: Option<&str>) {
    out.extend_from_slice(canonical.unwrap_or("null").as_bytes());
}

impl CanonicalEvent<'_> {
    /// Append the canonical document to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"action\":");
        string(out, self.action);
        out.extend_from_slice(b",\"actor_id\":");
        string(out, self.actor_id);
        out.extend_from_slice(b",\"changes\":");
        out.extend_from_slice(self.changes.as_bytes());
        out.extend_from_slice(b",\"created_at\":");
        string(out, self.created_at);
        out.extend_from_slice(b",\"event_id\":");
        string(out, self.event_id);
        out.extend_from_slice(b",\"event_type\":");
        string(out, self.event_type);
        out.extend_from_slice(b",\"id\":");
        out.extend_from_slice(self.id.to_string().as_bytes());
        out.extend_from_slice(b",\"new_values\":");
        raw(out, self.new_values);
        out.extend_from_slice(b",\"old_values\":");
        raw(out, self.old_values);
        out.extend_from_slice(b",\"outcome\":");
        string(out, self.outcome);
        out.extend_from_slice(b",\"personal_digest\":");
        string(out, self.personal_digest);
        out.extend_from_slice(b",\"previous_hash\":");
        opt_string(out, self.previous_hash);
        out.extend_from_slice(b",\"resource_id\":");
        opt_string(out, self.resource_id);
        out.extend_from_slice(b",\"resource_type\":");
        string(out, self.resource_type);
        out.extend_from_slice(b",\"source\":");
        string(out, self.source);
        out.extend_from_slice(b",\"subject_id\":");
        opt_string(out, self.subject_id);
        out.extend_from_slice(b",\"v\":");
        out.extend_from_slice(super::event::FORMAT_VERSION.to_string().as_bytes());
        out.push(b'}');
    }

    /// Hex SHA-256 of the canonical document, reusing `buf`.
    pub fn content_hash(&self, buf: &mut Vec<u8>) -> String {
        buf.clear();
        self.write(buf);
        hex_digest(&Sha256::digest(&buf[..]))
    }
}

/// Hex SHA-256(salt || JCS({actor_name, ip_address, personal_details, user_agent})), with the
/// personal details given as canonical JSON text.
pub fn personal_digest(
    buf: &mut Vec<u8>,
    salt: &[u8],
    actor_name: &str,
    ip_address: Option<&str>,
    user_agent: Option<&str>,
    personal_details: Option<&[u8]>,
) -> String {
    buf.clear();
    buf.extend_from_slice(salt);
    buf.extend_from_slice(b"{\"actor_name\":");
    string(buf, actor_name);
    buf.extend_from_slice(b",\"ip_address\":");
    opt_string(buf, ip_address);
    buf.extend_from_slice(b",\"personal_details\":");
    buf.extend_from_slice(personal_details.unwrap_or(b"null"));
    buf.extend_from_slice(b",\"user_agent\":");
    opt_string(buf, user_agent);
    buf.push(b'}');
    hex_digest(&Sha256::digest(&buf[..]))
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` of a time in microseconds since 1970 (UTC): what
/// [`super::event::format_time`] prints, without its formatting machinery (verification
/// formats every event's time). `None` outside years 0–9999.
pub fn format_micros(micros: i64) -> Option<[u8; 27]> {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp_micros(micros)?.naive_utc();
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    put(20, 6, t.nanosecond() / 1000);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn value(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn reference(e: &CanonicalEvent) -> Vec<u8> {
        serde_json_canonicalizer::to_vec(&json!({
            "v": super::super::event::FORMAT_VERSION,
            "id": e.id,
            "event_id": e.event_id,
            "event_type": e.event_type,
            "resource_type": e.resource_type,
            "resource_id": e.resource_id,
            "action": e.action,
            "outcome": e.outcome,
            "source": e.source,
            "actor_id": e.actor_id,
            "subject_id": e.subject_id,
            "changes": value(e.changes),
            "old_values": e.old_values.map(value),
            "new_values": e.new_values.map(value),
            "personal_digest": e.personal_digest,
            "created_at": e.created_at,
            "previous_hash": e.previous_hash,
        }))
        .unwrap()
    }

    #[test]
    fn equals_the_generic_canonicalizer() {
        // The nested values arrive canonical (the writer canonicalises them once, at `Log`).
        let canonical = |v: Value| serde_json_canonicalizer::to_string(&v).unwrap();
        let changes = canonical(
            json!({ "z": 1.5e300, "a": [true, null, "tab\there"], "é": { "b": 2, "a": 1e-7 } }),
        );
        let old =
            canonical(json!({ "quote\"": "back\\slash", "ctl": "\u{1}\u{1f}\u{7f}\u{2028}" }));
        for (resource_id, subject, old_values, previous) in [
            (Some("public.t1"), None, Some(old.as_str()), None),
            (
                Some("quote\" back\\slash \u{1}\u{1f}\u{7f}\t\n é \u{2028}"),
                None,
                None,
                None,
            ),
            (
                None,
                Some("5b0c3f3e-6f4e-4d38-9a35-7d9a1f0b8c11"),
                None,
                Some("ab".repeat(32)),
            ),
        ] {
            let e = CanonicalEvent {
                id: 9_007_199_254_740_991,
                event_id: "0d8f6c5e-2b5a-4f51-a3c1-6a9c1a2b3c4d",
                event_type: "server.added",
                resource_type: "server",
                resource_id,
                action: "create",
                outcome: "success",
                source: "cli",
                actor_id: "7f1e2d3c-4b5a-4697-8877-665544332211",
                subject_id: subject,
                changes: &changes,
                old_values,
                new_values: Some(changes.as_str()),
                personal_digest: "00ff",
                created_at: "2026-11-29T16:03:37.123456Z",
                previous_hash: previous.as_deref(),
            };
            let mut out = Vec::new();
            e.write(&mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(reference(&e)).unwrap()
            );
        }
    }

    #[test]
    fn personal_digest_equals_the_generic_canonicalizer() {
        let details = json!({ "email": "ålice@example.com", "n": 3 });
        let mut buf = Vec::new();
        let canonical = serde_json_canonicalizer::to_vec(&details).unwrap();
        let fast = personal_digest(
            &mut buf,
            b"salt",
            "alice",
            Some("::1"),
            None,
            Some(&canonical),
        );
        let doc = serde_json_canonicalizer::to_vec(&json!({
            "actor_name": "alice", "ip_address": "::1", "personal_details": details, "user_agent": null,
        }))
        .unwrap();
        let mut hasher = Sha256::new();
        hasher.update(b"salt");
        hasher.update(doc);
        assert_eq!(fast, hex::encode(hasher.finalize()));
    }

    #[test]
    fn format_micros_equals_format_time() {
        for micros in [
            0,
            1,
            -1,
            951_782_400_123_456,
            1_796_000_000_000_000,
            253_402_300_799_999_999,
            -62_167_219_200_000_000,
        ] {
            let t = chrono::DateTime::from_timestamp_micros(micros).unwrap();
            assert_eq!(
                std::str::from_utf8(&format_micros(micros).unwrap()).unwrap(),
                crate::audit::event::format_time(t),
                "{micros}"
            );
        }
        assert_eq!(format_micros(253_402_300_800_000_000), None, "year 10000");
    }
}
