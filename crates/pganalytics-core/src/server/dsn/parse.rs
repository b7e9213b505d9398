//! Reading connection strings: keyword/value pairs and `postgres://` URIs, percent-decoding,
//! what an error may quote ([`Redactor`]) and the checks libpq makes on values.

use super::{is_keyword, is_secret, is_space, Dsn, FORMS_HINT, SSL_MODES, URI_HINT};
use crate::error::{Error, Result};

/// Decides which input text an error may quote: nothing that is or overlaps a secret seen so
/// far, and nothing right after a secret (an unquoted password with a space spills over).
#[derive(Default)]
struct Redactor {
    secrets: Vec<String>,
    /// The secret keyword just stored, while the next parameter is parsed.
    after_secret: Option<String>,
}

impl Redactor {
    fn shows(&self, text: &str) -> bool {
        self.after_secret.is_none()
            && self
                .secrets
                .iter()
                .filter(|s| !s.is_empty())
                .all(|s| !s.contains(text) && !text.contains(s.as_str()))
    }

    /// ` "text"` when the text may be shown, else nothing.
    fn quote(&self, text: &str) -> String {
        if self.shows(text) {
            format!(" \"{text}\"")
        } else {
            String::new()
        }
    }

    /// What to add to a message about the text that follows a secret.
    fn spill_note(&self) -> String {
        match &self.after_secret {
            Some(key) => format!(
                " after the value of \"{key}\" (a value containing spaces must be quoted: \
                 {key}='...')"
            ),
            None => String::new(),
        }
    }
}

pub(super) fn parse_keyword_value(input: &str) -> Result<Dsn> {
    let invalid = |msg: String| Error::invalid_input(msg).with_hint(FORMS_HINT);
    let chars: Vec<char> = input.chars().collect();
    let mut dsn = Dsn::default();
    let mut red = Redactor::default();
    let mut i = 0;
    while i < chars.len() {
        if is_space(chars[i]) {
            i += 1;
            continue;
        }
        // The keyword runs to "=" or a blank; blanks may stand before the "=".
        let start = i;
        while i < chars.len() && chars[i] != '=' && !is_space(chars[i]) {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        while i < chars.len() && is_space(chars[i]) {
            i += 1;
        }
        if i >= chars.len() || chars[i] != '=' {
            return Err(invalid(format!(
                "missing \"=\" after{}{} in the connection string",
                if red.shows(&key) {
                    format!(" \"{key}\"")
                } else {
                    " a word".to_owned()
                },
                red.spill_note()
            )));
        }
        i += 1;
        while i < chars.len() && is_space(chars[i]) {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(invalid(format!(
                            "unterminated quoted string in the value of{} in the connection \
                             string",
                            red.quote(&key)
                        )))
                    }
                    Some('\\') => {
                        if let Some(&c) = chars.get(i + 1) {
                            value.push(c);
                        }
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !is_space(chars[i]) {
                if chars[i] == '\\' {
                    if let Some(&c) = chars.get(i + 1) {
                        value.push(c);
                    }
                    i += 2;
                } else {
                    value.push(chars[i]);
                    i += 1;
                }
            }
        }
        store(&mut dsn, &mut red, &key, value, FORMS_HINT, true)?;
    }
    Ok(dsn)
}

/// Checks and stores one parameter parsed from a string.
fn store(
    dsn: &mut Dsn,
    red: &mut Redactor,
    key: &str,
    value: String,
    hint: &str,
    kv_form: bool,
) -> Result<()> {
    if !is_keyword(key) {
        let what = if kv_form {
            "unknown connection keyword"
        } else {
            "unknown URI query parameter"
        };
        return Err(
            Error::invalid_input(format!("{what}{}{}", red.quote(key), red.spill_note()))
                .with_hint(hint),
        );
    }
    if let Err(problem) = check_value(key, &value, red.shows(&value)) {
        return Err(Error::invalid_input(problem).with_hint(hint));
    }
    if is_secret(key) {
        red.secrets.push(value.clone());
        red.after_secret = Some(key.to_owned());
    } else {
        red.after_secret = None;
    }
    dsn.insert(key, value);
    Ok(())
}

/// Checks the values libpq would reject; `show` says whether the message may quote the value.
pub(super) fn check_value(key: &str, value: &str, show: bool) -> std::result::Result<(), String> {
    let quoted = |v: &str| {
        if show {
            format!(" \"{v}\"")
        } else {
            String::new()
        }
    };
    let one_of = |allowed: &[&str]| -> std::result::Result<(), String> {
        if allowed.contains(&value) {
            Ok(())
        } else {
            Err(format!(
                "invalid {key} value{}: valid values are {}",
                quoted(value),
                allowed.join(", ")
            ))
        }
    };
    match key {
        "port" => {
            for port in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if parse_port(port).is_none() {
                    return Err(format!(
                        "invalid port number{} (a port is a number from 1 to 65535)",
                        quoted(port)
                    ));
                }
            }
            Ok(())
        }
        "hostaddr" => {
            for addr in value.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                if addr.parse::<std::net::IpAddr>().is_err() {
                    return Err(format!(
                        "invalid hostaddr{}: hostaddr takes numeric IP addresses; put host \
                         names in host",
                        quoted(addr)
                    ));
                }
            }
            Ok(())
        }
        "connect_timeout"
        | "keepalives"
        | "keepalives_idle"
        | "keepalives_interval"
        | "keepalives_count"
        | "tcp_user_timeout" => {
            if value.trim().is_empty() || value.trim().parse::<i64>().is_ok() {
                Ok(())
            } else {
                Err(format!("invalid integer value{} for {key}", quoted(value)))
            }
        }
        "sslmode" => one_of(SSL_MODES),
        "gssencmode" => one_of(&["disable", "prefer", "require"]),
        "channel_binding" => one_of(&["disable", "prefer", "require"]),
        "target_session_attrs" => one_of(&[
            "any",
            "read-write",
            "read-only",
            "primary",
            "standby",
            "prefer-standby",
        ]),
        "load_balance_hosts" => one_of(&["disable", "random"]),
        _ => Ok(()),
    }
}

pub(super) fn parse_port(text: &str) -> Option<u16> {
    text.trim().parse::<u16>().ok().filter(|p| *p != 0)
}

/// Parses what follows `postgres://` or `postgresql://`, following libpq's
/// `conninfo_uri_parse_options`.
pub(super) fn parse_uri(rest: &str) -> Result<Dsn> {
    let mut dsn = Dsn::default();
    let mut red = Redactor::default();
    // A misplaced "@" or "/" can move part of a password into the host, port or database
    // name; once the URI has an "@", errors about those parts quote nothing.
    let authority_quotable = !rest.contains('@');
    let invalid = |msg: String| Error::invalid_input(msg).with_hint(URI_HINT);

    let mut p = rest;
    // User information: libpq looks for "@" before any "/".
    if let Some(at) = p.find(['@', '/']).filter(|&i| p.as_bytes()[i] == b'@') {
        let userinfo = &p[..at];
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo, None),
        };
        if let Some(password) = password {
            red.secrets.push(password.to_owned());
            let password = percent_decode(password, "the password")?;
            red.secrets.push(password.clone());
            if !password.is_empty() {
                dsn.insert("password", password);
            }
        }
        let user = percent_decode(user, "the user name")?;
        if !user.is_empty() {
            dsn.insert("user", user);
        }
        p = &p[at + 1..];
    }

    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    loop {
        let (host, after) = if let Some(inner) = p.strip_prefix('[') {
            let close = inner.find(']').ok_or_else(|| {
                invalid("missing \"]\" after an IPv6 host address in the URI".into())
            })?;
            if close == 0 {
                return Err(invalid("an IPv6 host address in the URI is empty".into()));
            }
            let after = &inner[close + 1..];
            if !(after.is_empty() || after.starts_with([':', '/', '?', ','])) {
                return Err(invalid(
                    "unexpected character after an IPv6 host address in the URI (expected \
                     \":\", \"/\", \",\" or \"?\")"
                        .into(),
                ));
            }
            (&inner[..close], after)
        } else {
            let end = p.find([':', '/', '?', ',']).unwrap_or(p.len());
            (&p[..end], &p[end..])
        };
        let host = percent_decode(host, "a host name")?;
        if host.contains('@') {
            return Err(invalid(
                "a host name in the URI contains \"@\": a user name or password with special \
                 characters must be percent-encoded"
                    .into(),
            ));
        }
        hosts.push(host);
        p = after;
        match p.strip_prefix(':') {
            Some(r) => {
                let end = r.find(['/', '?', ',']).unwrap_or(r.len());
                let port = percent_decode(&r[..end], "a port")?;
                if !port.is_empty() && parse_port(&port).is_none() {
                    let shown = if authority_quotable && red.shows(&port) {
                        format!(" \"{port}\"")
                    } else {
                        String::new()
                    };
                    return Err(invalid(format!(
                        "invalid port number{shown} in the URI (a port is a number from 1 to \
                         65535)"
                    )));
                }
                ports.push(port);
                p = &r[end..];
            }
            None => ports.push(String::new()),
        }
        match p.strip_prefix(',') {
            Some(r) => p = r,
            None => break,
        }
    }
    if hosts.iter().any(|h| !h.is_empty()) {
        dsn.insert("host", hosts.join(","));
    }
    if ports.iter().any(|p| !p.is_empty()) {
        dsn.insert("port", ports.join(","));
    }

    if let Some(r) = p.strip_prefix('/') {
        let end = r.find('?').unwrap_or(r.len());
        let raw = &r[..end];
        if raw.contains('@') {
            return Err(invalid(
                "the database name in the URI contains \"@\": percent-encode it as %40 (and \
                 percent-encode special characters of the user name and password)"
                    .into(),
            ));
        }
        let dbname = percent_decode(raw, "the database name")?;
        if !dbname.is_empty() {
            dsn.insert("dbname", dbname);
        }
        p = &r[end..];
    }

    if let Some(query) = p.strip_prefix('?') {
        for param in query.split('&').filter(|s| !s.is_empty()) {
            let Some((key, value)) = param.split_once('=') else {
                return Err(invalid(format!(
                    "missing \"=\" in the URI query parameter{}{}",
                    red.quote(param),
                    red.spill_note()
                )));
            };
            if value.contains('=') {
                return Err(invalid(format!(
                    "extra \"=\" in the URI query parameter{} (percent-encode it as %3D)",
                    red.quote(key)
                )));
            }
            let key = percent_decode(key, "a query parameter name")?;
            let mut value = percent_decode(value, "a query parameter value")?;
            let mut key = key.as_str();
            // JDBC's "ssl=true", which libpq understands too.
            if key == "ssl" && value == "true" {
                key = "sslmode";
                value = "require".to_owned();
            }
            store(&mut dsn, &mut red, key, value, URI_HINT, false)?;
        }
    } else if !p.is_empty() {
        // Unreachable by construction (the host loop stops at "/", "?" or the end).
        return Err(invalid("unexpected text after the host in the URI".into()));
    }
    Ok(dsn)
}

/// Decodes `%XX` escapes; `%00`, a bad escape or bytes that are not UTF-8 are errors that
/// name `what` but never quote the text (it may be a password).
fn percent_decode(text: &str, what: &str) -> Result<String> {
    let invalid = |msg: String| Error::invalid_input(msg).with_hint(URI_HINT);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(0) => {
                return Err(invalid(format!(
                    "forbidden value %00 in the percent-encoding of {what} in the URI"
                )))
            }
            Some(b) => out.push(b),
            None => {
                return Err(invalid(format!(
                    "invalid percent-encoding in {what} in the URI (\"%\" must be followed by \
                     two hexadecimal digits; write %25 for \"%\" itself)"
                )))
            }
        }
        i += 3;
    }
    String::from_utf8(out).map_err(|_| {
        invalid(format!(
            "the percent-encoded bytes of {what} in the URI are not valid UTF-8"
        ))
    })
}
