//! JSON text → RFC 8785 (JCS) canonical bytes without building a `serde_json::Value`.
//!
//! Verification reads every event's JSON values back from `jsonb` (PostgreSQL prints them with
//! its own key order, spaces and number forms) and must canonicalise them again; through a
//! `Value` tree that was most of the verifier's time. This transcoder parses the text once,
//! writes strings and small integers through unchanged, and only reorders object members and
//! reformats other numbers (as IEEE doubles, like `serde_json_canonicalizer`).
//!
//! It is an accelerator, not the definition: the verifier falls back to the generic
//! canonicalizer whenever this one refuses the text or the hash does not match, and the tests
//! compare both on many documents.

/// Append the canonical form of the JSON `text` to `out`; `false` (with `out` restored) when
/// the text is not JSON this transcoder handles.
pub fn transcode(text: &str, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let mut p = Parser {
        text,
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    let ok = p.value(out, 0).is_some() && {
        p.ws();
        p.i == p.s.len()
    };
    if !ok {
        out.truncate(start);
    }
    ok
}

/// Deeper nesting is left to the generic canonicalizer (and its recursion limit).
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    /// The input; `s` is its bytes. Slices between ASCII delimiters are whole characters.
    text: &'a str,
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.s.get(self.i) == Some(&b)).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> Option<()> {
        self.s[self.i..].starts_with(word).then(|| {
            self.i += word.len();
            out.extend_from_slice(word);
        })
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match *self.s.get(self.i)? {
            b'{' => self.object(out, depth),
            b'[' => self.array(out, depth),
            b'"' => {
                let s = self.string()?;
                write_string(&s, out);
                Some(())
            }
            b't' => self.literal(b"true", out),
            b'f' => self.literal(b"false", out),
            b'n' => self.literal(b"null", out),
            _ => self.number(out),
        }
    }

    fn array(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        self.i += 1;
        out.push(b'[');
        self.ws();
        if self.eat(b']').is_some() {
            out.push(b']');
            return Some(());
        }
        loop {
            self.ws();
            self.value(out, depth + 1)?;
            self.ws();
            match *self.s.get(self.i)? {
                b',' => out.push(b','),
                b']' => {
                    self.i += 1;
                    out.push(b']');
                    return Some(());
                }
                _ => return None,
            }
            self.i += 1;
        }
    }

    fn object(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        self.i += 1;
        self.ws();
        if self.eat(b'}').is_some() {
            out.extend_from_slice(b"{}");
            return Some(());
        }
        // Members are written to `out` in text order, then moved into key order.
        let base = out.len();
        let mut members: Vec<(std::borrow::Cow<'a, str>, std::ops::Range<usize>)> = Vec::new();
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return None;
            }
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let start = out.len();
            write_string(&key, out);
            out.push(b':');
            self.value(out, depth + 1)?;
            members.push((key, start..out.len()));
            self.ws();
            match *self.s.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        let in_order = members
            .windows(2)
            .all(|w| utf16_cmp(&w[0].0, &w[1].0).is_lt());
        if !in_order {
            members.sort_by(|a, b| utf16_cmp(&a.0, &b.0));
            if members
                .windows(2)
                .any(|w| utf16_cmp(&w[0].0, &w[1].0).is_eq())
            {
                // Duplicate keys: which one wins is the generic canonicalizer's call.
                return None;
            }
        }
        let written = out.split_off(base);
        out.push(b'{');
        for (n, (_, range)) in members.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&written[range.start - base..range.end - base]);
        }
        out.push(b'}');
        Some(())
    }

    /// A string's value, borrowed when it has no escapes.
    fn string(&mut self) -> Option<std::borrow::Cow<'a, str>> {
        self.i += 1;
        let start = self.i;
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    let s = self.text.get(start..self.i)?;
                    self.i += 1;
                    return Some(std::borrow::Cow::Borrowed(s));
                }
                b'\\' => break,
                b if b < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        // Escapes: decode the rest into an owned string.
        let mut owned = self.text.get(start..self.i)?.to_string();
        loop {
            match *self.s.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(std::borrow::Cow::Owned(owned));
                }
                b'\\' => {
                    self.i += 1;
                    let simple = match *self.s.get(self.i)? {
                        b'"' => Some('"'),
                        b'\\' => Some('\\'),
                        b'/' => Some('/'),
                        b'b' => Some('\u{8}'),
                        b'f' => Some('\u{c}'),
                        b'n' => Some('\n'),
                        b'r' => Some('\r'),
                        b't' => Some('\t'),
                        b'u' => None,
                        _ => return None,
                    };
                    let c = match simple {
                        Some(c) => {
                            self.i += 1;
                            c
                        }
                        None => {
                            let high = self.hex4()?;
                            if (0xD800..0xDC00).contains(&high) {
                                self.eat(b'\\')?;
                                if self.s.get(self.i) != Some(&b'u') {
                                    return None;
                                }
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return None;
                                }
                                char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?
                            } else {
                                char::from_u32(high)?
                            }
                        }
                    };
                    owned.push(c);
                }
                b if b < 0x20 => return None,
                _ => {
                    // Copy up to the next quote or backslash (UTF-8 sequences whole).
                    let from = self.i;
                    while let Some(&b) = self.s.get(self.i) {
                        if b == b'"' || b == b'\\' || b < 0x20 {
                            break;
                        }
                        self.i += 1;
                    }
                    owned.push_str(self.text.get(from..self.i)?);
                }
            }
        }
    }

    /// The four hex digits of a `\u` escape (cursor on the `u`); leaves the cursor after them.
    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.i + 1..self.i + 5)?;
        let text = std::str::from_utf8(digits).ok()?;
        let v = u32::from_str_radix(text, 16).ok()?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.i += 5;
        Some(v)
    }

    fn number(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let start = self.i;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.s.get(self.i) {
            self.i += 1;
        }
        let text = self.text.get(start..self.i)?;
        if !is_json_number(text.as_bytes()) {
            return None;
        }
        let digits = text.strip_prefix('-').unwrap_or(text);
        // Integers of up to 15 digits are exact doubles and print as themselves.
        if digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()) && text != "-0" {
            out.extend_from_slice(text.as_bytes());
            return Some(());
        }
        let value: f64 = text.parse().ok()?;
        if !value.is_finite() {
            return None;
        }
        out.extend_from_slice(ryu_js::Buffer::new().format_finite(value).as_bytes());
        Some(())
    }
}

/// RFC 8259's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(s: &[u8]) -> bool {
    let mut i = 0;
    let digits = |i: &mut usize| {
        let from = *i;
        while s.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - from
    };
    if s.first() == Some(&b'-') {
        i += 1;
    }
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if let Some(b'e' | b'E') = s.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = s.get(i) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == s.len()
}

/// JCS orders keys by their UTF-16 code units.
fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.as_bytes().cmp(b.as_bytes());
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// A string as JCS writes it: `"` and `\` escaped, control characters as the short escapes or
/// `\u00xx`, everything else verbatim.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most strings need no escape: one pass that the compiler vectorises, one copy.
    let needs_escape = bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !needs_escape {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[from..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        from = i + 1;
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        serde_json_canonicalizer::to_string(&value).ok()
    }

    fn fast(text: &str) -> Option<String> {
        let mut out = b"prefix".to_vec();
        if !transcode(text, &mut out) {
            assert_eq!(out, b"prefix", "a refusal leaves the buffer as it was");
            return None;
        }
        Some(String::from_utf8(out.split_off(6)).unwrap())
    }

    #[test]
    fn agrees_with_the_generic_canonicalizer() {
        let documents = [
            r#"{"n": 1, "writer": 7}"#,
            r#"{"rows": 12345}"#,
            r#"{}"#,
            r#"[]"#,
            r#"  [1 , 2,3 ]  "#,
            r#"{"b": [true, false, null], "a": {"y": "x", "x": "y"}}"#,
            r#"{"aa": 1, "b": 2, "ab": 3, "a": 4}"#,
            r#"{"é": 1, "e": 2, "z": 3, "\ud83d\ude00": 4, "\ufb01": 5}"#,
            r#"{"tab\there": "quote\" back\\ slash \/ \b\f\n\r\t \u0001 \u001f \u007f \u2028 \u00e9"}"#,
            r#"[1.50, -0, 0, -0.0, 1e300, 1E-7, 123456789012345, 1234567890123456, 12345678901234567890, 99999999999999999999999, -9007199254740993, 0.1, 100, 1e21, 1e20, 5e-324]"#,
            r#"[-1.5e+10, 2.0, 3.14159265358979323846264338327950288, 1.7976931348623157e308]"#,
            r#""just a string""#,
            r#"true"#,
            r#"null"#,
            r#"{"nested": {"deeper": {"deepest": [{"b": 1, "a": 2}]}}}"#,
            "{\"ünïcødé\": \"日本語\", \"emoji\": \"😀\"}",
        ];
        for doc in documents {
            assert_eq!(fast(doc), reference(doc), "{doc}");
        }
    }

    #[test]
    fn agrees_on_postgresql_jsonb_output() {
        // What `jsonb_out` prints: keys by length then bytes, ", " and ": " separators,
        // numerics with their scale.
        for doc in [
            r#"{"a": 1, "bb": 2.50, "ccc": {"x": [1, 2.0, "3"], "yy": null}}"#,
            r#"{"z": 1, "aa": 2}"#,
            r#"{"rows": 1000000000000000000000}"#,
        ] {
            assert_eq!(fast(doc), reference(doc), "{doc}");
        }
    }

    #[test]
    fn refuses_what_is_not_json() {
        for doc in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\": 1,}",
            "01",
            "1.",
            "-",
            "+1",
            ".5",
            "1e",
            "tru",
            "\"unterminated",
            "\"bad \\x escape\"",
            "\"lone \\ud800 surrogate\"",
            "\"ctl \u{1} raw\"",
            "[1] [2]",
            "{\"a\": 1, \"a\": 2}",
            "{\"é\": 1, \"\\u00e9\": 2}",
            "NaN",
            "1e999",
        ] {
            assert_eq!(fast(doc), None, "{doc:?}");
        }
    }

    #[test]
    fn agrees_on_generated_documents() {
        // A small deterministic generator: nested objects and arrays of awkward keys, strings
        // and numbers.
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let atoms = [
            "0",
            "-1",
            "42",
            "3.25",
            "1e5",
            "-2.5E-3",
            "123456789012345678",
            "0.1",
            "true",
            "null",
            "\"\"",
            "\"a\\nb\"",
            "\"é\\u00e9\"",
            "\"\\ud83d\\ude00\"",
            "\"\\u0000\"",
        ];
        // Distinct after unescaping: duplicates are refused (tested above).
        let keys = [
            "a",
            "b",
            "aa",
            "A",
            "é",
            "z",
            "\\u00e8",
            "\\ud83d\\ude00",
            "\\uffff",
            "10",
            "1",
        ];
        fn build(
            depth: u32,
            next: &mut dyn FnMut() -> u64,
            atoms: &[&str],
            keys: &[&str],
        ) -> String {
            let r = next();
            if depth == 0 || r.is_multiple_of(3) {
                return atoms[(r / 3) as usize % atoms.len()].to_string();
            }
            let n = (r / 7) as usize % 4;
            if r.is_multiple_of(2) {
                let items: Vec<String> = (0..n)
                    .map(|_| build(depth - 1, next, atoms, keys))
                    .collect();
                format!("[{}]", items.join(", "))
            } else {
                let mut used = std::collections::HashSet::new();
                let mut items = Vec::new();
                for _ in 0..n {
                    let k = keys[next() as usize % keys.len()];
                    if used.insert(k) {
                        items.push(format!("\"{k}\": {}", build(depth - 1, next, atoms, keys)));
                    }
                }
                format!("{{{}}}", items.join(", "))
            }
        }
        for _ in 0..2000 {
            let doc = build(4, &mut next, &atoms, &keys);
            assert_eq!(fast(&doc), reference(&doc), "{doc}");
        }
    }
}
