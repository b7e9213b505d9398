//! PostgreSQL connection strings, parsed and resolved the way libpq does it.
//!
//! [`parse`] accepts both forms libpq accepts (a `postgres://` URI or `keyword=value` pairs) and
//! keeps the keywords as written; [`Dsn::resolve`] fills in what is missing from the service
//! file, the `PG*` environment variables and the defaults, in libpq's order;
//! [`ResolvedDsn::connect_options`] turns the result into sqlx options, finding the password in
//! `.pgpass` when nobody gave one.
//!
//! Secrets never leave this module in text: `Display` and `Debug` leave them out, and error
//! messages never quote a value that could be (part of) a password.

use crate::error::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Shown with every malformed connection string.
const FORMS_HINT: &str = "write a URI such as postgres://user@host:5432/dbname, or keyword/value \
     pairs such as host=localhost port=5432 dbname=postgres user=postgres (quote values with \
     spaces: password='my secret')";

/// Shown with malformed URIs, where special characters are the usual cause.
const URI_HINT: &str = "in a URI, percent-encode special characters of the user name, password \
     and database name (@ as %40, / as %2F, : as %3A, space as %20); or write keyword/value pairs \
     such as host=localhost port=5432 dbname=postgres user=postgres";

/// Where the server's socket is when nothing says otherwise (Debian's libpq default).
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Socket folders libpq builds use as their default; `.pgpass` calls them `localhost`.
const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/run/postgresql", "/tmp"];

const DEFAULT_PORT: u16 = 5432;

/// Every keyword libpq (PostgreSQL 18) accepts, with the environment variable that supplies it
/// when neither the string nor the service file does.
const KEYWORDS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("dbname", Some("PGDATABASE")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("require_auth", Some("PGREQUIREAUTH")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("client_encoding", Some("PGCLIENTENCODING")),
    ("options", Some("PGOPTIONS")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("keepalives", None),
    ("keepalives_idle", None),
    ("keepalives_interval", None),
    ("keepalives_count", None),
    ("tcp_user_timeout", None),
    ("replication", None),
    ("gssencmode", Some("PGGSSENCMODE")),
    ("sslmode", Some("PGSSLMODE")),
    ("sslnegotiation", Some("PGSSLNEGOTIATION")),
    ("sslcompression", Some("PGSSLCOMPRESSION")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("sslpassword", None),
    ("sslcertmode", Some("PGSSLCERTMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcrl", Some("PGSSLCRL")),
    ("sslcrldir", Some("PGSSLCRLDIR")),
    ("sslsni", Some("PGSSLSNI")),
    ("sslkeylogfile", Some("PGSSLKEYLOGFILE")),
    ("requirepeer", Some("PGREQUIREPEER")),
    ("ssl_min_protocol_version", Some("PGSSLMINPROTOCOLVERSION")),
    ("ssl_max_protocol_version", Some("PGSSLMAXPROTOCOLVERSION")),
    ("min_protocol_version", Some("PGMINPROTOCOLVERSION")),
    ("max_protocol_version", Some("PGMAXPROTOCOLVERSION")),
    ("krbsrvname", Some("PGKRBSRVNAME")),
    ("gsslib", Some("PGGSSLIB")),
    ("gssdelegation", Some("PGGSSDELEGATION")),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
    ("scram_client_key", None),
    ("scram_server_key", None),
    ("oauth_issuer", None),
    ("oauth_client_id", None),
    ("oauth_client_secret", None),
    ("oauth_scope", None),
    ("service", Some("PGSERVICE")),
    ("servicefile", Some("PGSERVICEFILE")),
];

/// Keywords whose values are secrets: never displayed, never quoted in an error.
const SECRET_KEYWORDS: &[&str] = &[
    "password",
    "sslpassword",
    "oauth_client_secret",
    "scram_client_key",
    "scram_server_key",
];

const SSL_MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

fn is_keyword(key: &str) -> bool {
    KEYWORDS.iter().any(|(k, _)| *k == key)
}

fn is_secret(key: &str) -> bool {
    SECRET_KEYWORDS.contains(&key)
}

/// libpq's `isspace` (the C locale): ASCII blanks, including vertical tab.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// The process environment, for [`Dsn::resolve`] outside tests.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// A connection string as written: keywords in the order first given, values verbatim.
///
/// `Display` renders keyword/value form without any secret (this is what is stored and shown);
/// `Debug` marks secrets as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    params: Vec<(String, String)>,
}

/// Parses a connection string in either form libpq accepts (see the module documentation).
pub fn parse(input: &str) -> Result<Dsn> {
    if input.chars().all(is_space) {
        return Err(Error::invalid_input("the connection string is empty").with_hint(FORMS_HINT));
    }
    for prefix in ["postgresql://", "postgres://"] {
        if let Some(rest) = input.strip_prefix(prefix) {
            return parse_uri(rest);
        }
    }
    parse_keyword_value(input)
}

impl FromStr for Dsn {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        parse(s)
    }
}

impl Dsn {
    /// The value of `key` as written (`None` when absent).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `host` value as written; several hosts are separated by commas.
    pub fn host(&self) -> Option<&str> {
        self.get("host")
    }

    /// The `port` value as written; several ports are separated by commas.
    pub fn port(&self) -> Option<&str> {
        self.get("port")
    }

    pub fn user(&self) -> Option<&str> {
        self.get("user")
    }

    pub fn dbname(&self) -> Option<&str> {
        self.get("dbname")
    }

    pub fn password(&self) -> Option<&str> {
        self.get("password")
    }

    /// Every keyword and value, secrets included, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets a keyword, checking it the way [`parse`] does.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if !is_keyword(key) {
            return Err(
                Error::invalid_input(format!("unknown connection keyword \"{key}\""))
                    .with_hint(FORMS_HINT),
            );
        }
        if let Err(problem) = check_value(key, value, !is_secret(key)) {
            return Err(Error::invalid_input(problem).with_hint(FORMS_HINT));
        }
        self.insert(key, value.to_owned());
        Ok(())
    }

    /// The same connection string without `password` nor the other secrets (`sslpassword`,
    /// `oauth_client_secret`, `scram_*_key`): what may be stored outside the OS keyring.
    pub fn without_password(&self) -> Dsn {
        Dsn {
            params: self
                .params
                .iter()
                .filter(|(k, _)| !is_secret(k))
                .cloned()
                .collect(),
        }
    }

    /// Keyword/value form without secrets; the same as `to_string()`.
    pub fn to_string_redacted(&self) -> String {
        self.to_string()
    }

    /// Replaces the value of `key` in place, or appends it.
    fn insert(&mut self, key: &str, value: String) {
        match self.params.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.params.push((key.to_owned(), value)),
        }
    }

    /// Fills in what the string leaves unset: the service file first, then the `PG*`
    /// environment variables, then the defaults, as libpq does. `env` reads one environment
    /// variable (pass [`process_env`] outside tests).
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<ResolvedDsn> {
        let mut params = self.clone();
        let home = home_dir(env);

        let service = self
            .get("service")
            .map(str::to_owned)
            .or_else(|| env("PGSERVICE"))
            .filter(|s| !s.is_empty());
        if let Some(name) = &service {
            for (key, value) in find_service(name, self.get("servicefile"), home.as_deref(), env)? {
                if params.get(&key).is_none() {
                    params.insert(&key, value);
                }
            }
        }

        for (key, var) in KEYWORDS {
            let Some(var) = var else { continue };
            if params.get(key).is_some() {
                continue;
            }
            if let Some(value) = env(var) {
                if let Err(problem) = check_value(key, &value, !is_secret(key)) {
                    return Err(Error::invalid_input(format!("{problem} (from {var})"))
                        .with_hint(format!("fix or unset the environment variable {var}")));
                }
                params.insert(key, value);
            }
        }

        ResolvedDsn::from_params(params, home, env)
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (key, value) in self.params.iter().filter(|(k, _)| !is_secret(k)) {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{key}=")?;
            write_value(f, value)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.params {
            if is_secret(key) {
                map.entry(key, &"<redacted>");
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

/// Writes a value so that [`parse`] reads it back unchanged.
fn write_value(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    let plain = !value.is_empty() && !value.chars().any(|c| is_space(c) || c == '\'' || c == '\\');
    if plain {
        return f.write_str(value);
    }
    f.write_str("'")?;
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("'")
}

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

fn parse_keyword_value(input: &str) -> Result<Dsn> {
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
fn check_value(key: &str, value: &str, show: bool) -> std::result::Result<(), String> {
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

fn parse_port(text: &str) -> Option<u16> {
    text.trim().parse::<u16>().ok().filter(|p| *p != 0)
}

/// Parses what follows `postgres://` or `postgresql://`, following libpq's
/// `conninfo_uri_parse_options`.
fn parse_uri(rest: &str) -> Result<Dsn> {
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

/// The home folder as libpq finds it: `$HOME`, else the account's home.
fn home_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(home) = env("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.dir)
}

/// The name of the account we run as, as libpq finds it (then `$USER`).
fn os_user_name(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| env("USER"))
        .filter(|n| !n.is_empty())
}

/// The settings of service `name`, from the first service file that defines it, in libpq's
/// order: `servicefile` / `PGSERVICEFILE` / `~/.pg_service.conf`, then the system-wide file.
fn find_service(
    name: &str,
    servicefile: Option<&str>,
    home: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    match servicefile
        .map(str::to_owned)
        .or_else(|| env("PGSERVICEFILE"))
        .filter(|f| !f.is_empty())
    {
        Some(file) => files.push(PathBuf::from(file)),
        None => {
            if let Some(home) = home {
                files.push(home.join(".pg_service.conf"));
            }
        }
    }
    match env("PGSYSCONFDIR").filter(|d| !d.is_empty()) {
        Some(dir) => files.push(Path::new(&dir).join("pg_service.conf")),
        None => {
            files.push(PathBuf::from("/etc/postgresql-common/pg_service.conf"));
            files.push(PathBuf::from("/etc/pg_service.conf"));
        }
    }
    for file in &files {
        if let Some(entries) = read_service(file, name)? {
            return Ok(entries);
        }
    }
    let searched: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    Err(Error::invalid_input(format!(
        "service \"{name}\" is not defined in any service file (searched {})",
        searched.join(", ")
    ))
    .with_hint(format!(
        "add a [{name}] section of keyword=value lines to one of these files (PGSERVICEFILE \
         names another), or remove service= and unset PGSERVICE"
    )))
}

/// The entries of section `[name]` of one service file; `None` when the file or the section is
/// missing. Errors never quote values (service files hold passwords).
fn read_service(path: &Path, name: &str) -> Result<Option<Vec<(String, String)>>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::invalid_input(format!(
                "could not read service file {}: {e}",
                path.display()
            ))
            .with_hint("make the file readable by this account, or point PGSERVICEFILE elsewhere"))
        }
    };
    let syntax = |line_no: usize, problem: &str| {
        Error::invalid_input(format!(
            "syntax error in service file {}, line {line_no}: {problem}",
            path.display()
        ))
        .with_hint("a service file holds [name] sections of keyword=value lines")
    };
    let mut entries: Option<Vec<(String, String)>> = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            if entries.is_some() {
                break;
            }
            if section
                .strip_prefix(name)
                .is_some_and(|tail| tail.starts_with(']'))
            {
                entries = Some(Vec::new());
            }
            continue;
        }
        let Some(found) = entries.as_mut() else {
            continue;
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(syntax(index + 1, "missing \"=\""));
        };
        let key = key.trim();
        if key == "service" || key == "servicefile" {
            return Err(syntax(
                index + 1,
                "a service cannot name another service (nested services are not supported)",
            ));
        }
        if !is_keyword(key) {
            return Err(syntax(
                index + 1,
                &format!("unknown connection keyword \"{key}\""),
            ));
        }
        let value = value.trim();
        if let Err(problem) = check_value(key, value, !is_secret(key)) {
            return Err(syntax(index + 1, &problem));
        }
        if !found.iter().any(|(k, _)| k == key) {
            found.push((key.to_owned(), value.to_owned()));
        }
    }
    Ok(entries)
}

/// A connection string with everything libpq would fill in filled in; the first host is the
/// one connected to.
#[derive(Clone)]
pub struct ResolvedDsn {
    params: Dsn,
    /// Host name, IP address or socket folder of the first host.
    host: String,
    hostaddr: Option<String>,
    port: u16,
    user: String,
    dbname: String,
    ssl_mode: PgSslMode,
    password: Option<String>,
    passfile: Option<PathBuf>,
    server_options: Vec<(String, String)>,
    ssl_root_cert: Option<PathBuf>,
    ssl_cert: Option<PathBuf>,
    ssl_key: Option<PathBuf>,
}

impl ResolvedDsn {
    fn from_params(
        params: Dsn,
        home: Option<PathBuf>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ResolvedDsn> {
        let set = |key: &str| params.get(key).filter(|v| !v.is_empty());
        let invalid = |msg: String| Error::invalid_input(msg).with_hint(FORMS_HINT);

        let hosts: Vec<&str> = set("host")
            .map(|h| h.split(',').map(str::trim).collect())
            .unwrap_or_default();
        let hostaddrs: Vec<&str> = set("hostaddr")
            .map(|h| h.split(',').map(str::trim).collect())
            .unwrap_or_default();
        if !hosts.is_empty() && !hostaddrs.is_empty() && hosts.len() != hostaddrs.len() {
            return Err(invalid(format!(
                "could not match {} host names to {} hostaddr values",
                hosts.len(),
                hostaddrs.len()
            )));
        }
        let count = hosts.len().max(hostaddrs.len()).max(1);
        let ports: Vec<&str> = set("port")
            .map(|p| p.split(',').map(str::trim).collect())
            .unwrap_or_default();
        if ports.len() > 1 && ports.len() != count {
            return Err(invalid(format!(
                "could not match {} port numbers to {count} hosts",
                ports.len()
            )));
        }

        let hostaddr = hostaddrs
            .first()
            .filter(|a| !a.is_empty())
            .map(|a| (*a).to_owned());
        let host = match hosts.first().filter(|h| !h.is_empty()) {
            Some(h) => (*h).to_owned(),
            None => match &hostaddr {
                Some(addr) => addr.clone(),
                None if Path::new(DEFAULT_SOCKET_DIR).is_dir() => DEFAULT_SOCKET_DIR.to_owned(),
                None => "localhost".to_owned(),
            },
        };
        let port = match ports.first().filter(|p| !p.is_empty()) {
            Some(p) => {
                parse_port(p).ok_or_else(|| invalid(format!("invalid port number \"{p}\"")))?
            }
            None => DEFAULT_PORT,
        };
        let user = match set("user") {
            Some(user) => user.to_owned(),
            None => os_user_name(env).ok_or_else(|| {
                Error::invalid_input("could not find the name of the current account")
                    .with_hint("give the user: user=... in the connection string, or PGUSER")
            })?,
        };
        let dbname = set("dbname").unwrap_or(&user).to_owned();
        let ssl_mode = match set("sslmode").unwrap_or("prefer") {
            "disable" => PgSslMode::Disable,
            "allow" => PgSslMode::Allow,
            "prefer" => PgSslMode::Prefer,
            "require" => PgSslMode::Require,
            "verify-ca" => PgSslMode::VerifyCa,
            "verify-full" => PgSslMode::VerifyFull,
            other => {
                return Err(invalid(format!(
                    "invalid sslmode value \"{other}\": valid values are {}",
                    SSL_MODES.join(", ")
                )))
            }
        };
        let server_options = match set("options") {
            Some(text) => parse_server_options(text).map_err(invalid)?,
            None => Vec::new(),
        };
        let passfile = set("passfile")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".pgpass")));
        // libpq's defaults for the certificate files, used when they exist.
        let default_file = |name: &str| {
            home.as_ref()
                .map(|h| h.join(".postgresql").join(name))
                .filter(|p| p.is_file())
        };
        let ssl_root_cert = match set("sslrootcert") {
            Some("system") => None,
            Some(path) => Some(PathBuf::from(path)),
            None => default_file("root.crt"),
        };
        let ssl_cert = set("sslcert")
            .map(PathBuf::from)
            .or_else(|| default_file("postgresql.crt"));
        let ssl_key = set("sslkey")
            .map(PathBuf::from)
            .or_else(|| default_file("postgresql.key"));
        let password = set("password").map(str::to_owned);

        Ok(ResolvedDsn {
            host,
            hostaddr,
            port,
            user,
            dbname,
            ssl_mode,
            password,
            passfile,
            server_options,
            ssl_root_cert,
            ssl_cert,
            ssl_key,
            params,
        })
    }

    /// Every keyword after resolution (defaults excepted), secrets included.
    pub fn params(&self) -> &Dsn {
        &self.params
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key)
    }

    /// Host name, IP address or socket folder of the first host.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn hostaddr(&self) -> Option<&str> {
        self.hostaddr.as_deref()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    pub fn ssl_mode(&self) -> PgSslMode {
        self.ssl_mode
    }

    /// Whether the connection goes through a Unix-domain socket (the host is a folder).
    pub fn is_unix_socket(&self) -> bool {
        self.hostaddr.is_none() && self.host.starts_with('/')
    }

    /// The password the string, the service file or `PGPASSWORD` gave (not `.pgpass`).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The password file libpq would read: `passfile`, `PGPASSFILE` or `~/.pgpass`.
    pub fn passfile(&self) -> Option<&Path> {
        self.passfile.as_deref()
    }

    /// libpq's `connect_timeout`: none when unset or not positive, at least 2 seconds.
    /// sqlx has no such setting: wrap the connection attempt in a timeout of this length.
    pub fn connect_timeout(&self) -> Option<Duration> {
        let secs: i64 = self.get("connect_timeout")?.trim().parse().ok()?;
        (secs > 0).then(|| Duration::from_secs(secs.max(2).unsigned_abs()))
    }

    /// The password to use: `password` (from the OS keyring), else the one in the string, the
    /// service file or `PGPASSWORD`, else a matching `.pgpass` line.
    pub fn effective_password(&self, password: Option<&str>) -> Option<String> {
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            return Some(p.to_owned());
        }
        if let Some(p) = &self.password {
            return Some(p.clone());
        }
        let file = self.passfile.as_deref()?;
        pgpass_lookup(file, &self.host, self.port, &self.dbname, &self.user)
    }

    /// sqlx options for the first host.
    ///
    /// Unknown to sqlx and so ignored: `connect_timeout` (see [`Self::connect_timeout`]),
    /// `keepalives*`, `target_session_attrs`, `client_encoding` (sqlx always uses UTF8),
    /// `sslpassword`, `gssencmode` and the other GSSAPI/Kerberos settings.
    pub fn connect_options(&self, password: Option<&str>) -> PgConnectOptions {
        // Fields left unset keep what sqlx read from the process environment.
        let mut options = PgConnectOptions::new_without_pgpass()
            .port(self.port)
            .username(&self.user)
            .database(&self.dbname);
        if self.is_unix_socket() {
            // libpq never asks for TLS over a socket.
            options = options
                .host("localhost")
                .socket(&self.host)
                .ssl_mode(PgSslMode::Disable);
        } else {
            options = options
                .host(self.hostaddr.as_deref().unwrap_or(&self.host))
                .ssl_mode(self.ssl_mode);
        }
        if let Some(cert) = &self.ssl_root_cert {
            options = options.ssl_root_cert(cert);
        }
        if let Some(cert) = &self.ssl_cert {
            options = options.ssl_client_cert(cert);
        }
        if let Some(key) = &self.ssl_key {
            options = options.ssl_client_key(key);
        }
        let application_name = self
            .get("application_name")
            .filter(|a| !a.is_empty())
            .or_else(|| {
                self.get("fallback_application_name")
                    .filter(|a| !a.is_empty())
            });
        if let Some(name) = application_name {
            options = options.application_name(name);
        }
        if !self.server_options.is_empty() {
            options = options.options(
                self.server_options
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
        }
        if let Some(password) = self.effective_password(password) {
            options = options.password(&password);
        }
        options
    }

    /// `user@host:port/dbname`, for messages (never the password).
    pub fn describe(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('/') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{}@{host}:{}/{}", self.user, self.port, self.dbname)
    }
}

impl fmt::Debug for ResolvedDsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedDsn")
            .field("target", &self.describe())
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// Splits libpq's `options` (server command-line switches) into `name=value` settings.
/// Backslash escapes are kept: the server removes them after sqlx passes the settings on.
fn parse_server_options(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if is_space(c) {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
        } else if c == '\\' {
            word.push(c);
            if let Some(next) = chars.next() {
                word.push(next);
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let setting = if word == "-c" {
            words
                .next()
                .ok_or_else(|| "\"-c\" at the end of options lacks name=value".to_owned())?
        } else if let Some(rest) = word.strip_prefix("--") {
            rest.to_owned()
        } else if let Some(rest) = word.strip_prefix("-c") {
            rest.to_owned()
        } else {
            return Err(format!(
                "unsupported switch \"{word}\" in options (only -c name=value and --name=value \
                 are supported)"
            ));
        };
        let Some((name, value)) = setting.split_once('=') else {
            return Err(format!(
                "missing \"=\" in the setting \"{setting}\" of options"
            ));
        };
        settings.push((name.to_owned(), value.to_owned()));
    }
    Ok(settings)
}

/// The password for `host:port:db:user` in a `.pgpass` file, exactly as libpq finds it: the
/// first matching line wins, `*` matches anything, `\` escapes `:` and `\`, and a file that
/// the group or others may access (or that is not a plain file) is ignored with a warning.
/// A host that is empty or the default socket folder matches `localhost`.
pub fn pgpass_lookup(path: &Path, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    if db.is_empty() || user.is_empty() {
        return None;
    }
    let host = if host.is_empty() || DEFAULT_SOCKET_DIRS.contains(&host.trim_end_matches('/')) {
        "localhost"
    } else {
        host
    };
    let port = port.to_string();
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        tracing::warn!(path = %path.display(), "password file is not a plain file; ignored");
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            "password file has group or world access; permissions should be u=rw (0600) or \
             less; ignored"
        );
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    for line in text.split('\n') {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let rest = pgpass_field(line, host)
            .and_then(|r| pgpass_field(r, &port))
            .and_then(|r| pgpass_field(r, db))
            .and_then(|r| pgpass_field(r, user));
        let Some(rest) = rest else { continue };
        let mut password = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                ':' => break,
                '\\' => match chars.next() {
                    Some(next) => password.push(next),
                    None => password.push('\\'),
                },
                _ => password.push(c),
            }
        }
        return (!password.is_empty()).then_some(password);
    }
    None
}

/// Matches the first field of `line` against `token` (libpq's `pwdfMatchesString`); returns
/// the text after the field's ":".
fn pgpass_field<'a>(line: &'a str, token: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut chars = line.char_indices();
    let mut expected = token.chars();
    let mut want = expected.next();
    loop {
        let (index, mut c) = chars.next()?;
        let mut escaped = false;
        if c == '\\' {
            c = chars.next()?.1;
            escaped = true;
        }
        if c == ':' && !escaped && want.is_none() {
            return Some(&line[index + 1..]);
        }
        if want != Some(c) {
            return None;
        }
        want = expected.next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use std::collections::HashMap;
    use std::fs;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key: &str| map.get(key).cloned()
    }

    fn parse_err(input: &str) -> Error {
        match parse(input) {
            Ok(dsn) => panic!("{input:?} should be rejected, got {dsn:?}"),
            Err(e) => e,
        }
    }

    fn write_private(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn keyword_value_form() {
        let dsn = parse("host=db1 port=5433 dbname=sales user=alice").unwrap();
        assert_eq!(dsn.host(), Some("db1"));
        assert_eq!(dsn.port(), Some("5433"));
        assert_eq!(dsn.dbname(), Some("sales"));
        assert_eq!(dsn.user(), Some("alice"));
        assert_eq!(dsn.password(), None);
        // Keywords keep the order written.
        let keys: Vec<&str> = dsn.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["host", "port", "dbname", "user"]);
    }

    #[test]
    fn keyword_value_quoting_and_escapes() {
        let dsn = parse(
            "  host = localhost\tport= 5432 dbname ='my db' password='it\\'s' \
             application_name=a\\ b options='-c geqo=off' sslkey='' user=o'brien",
        )
        .unwrap();
        // Blanks around "=" are allowed, as libpq allows them.
        assert_eq!(dsn.host(), Some("localhost"));
        assert_eq!(dsn.port(), Some("5432"));
        assert_eq!(dsn.dbname(), Some("my db"));
        assert_eq!(dsn.password(), Some("it's"));
        // A backslash escapes a blank outside quotes too.
        assert_eq!(dsn.get("application_name"), Some("a b"));
        assert_eq!(dsn.get("options"), Some("-c geqo=off"));
        assert_eq!(dsn.get("sslkey"), Some(""));
        // A quote inside an unquoted value is literal.
        assert_eq!(dsn.user(), Some("o'brien"));
        // A later keyword replaces an earlier one, as in libpq.
        assert_eq!(parse("port=1 port=2").unwrap().port(), Some("2"));
        // An unquoted value may contain "=".
        assert_eq!(
            parse("options=-cgeqo=off").unwrap().get("options"),
            Some("-cgeqo=off")
        );
    }

    #[test]
    fn uri_form() {
        let dsn = parse(
            "postgresql://alice:s%40cret@db1:5433/sales?sslmode=require&application_name=pg%20an",
        )
        .unwrap();
        assert_eq!(dsn.user(), Some("alice"));
        assert_eq!(dsn.password(), Some("s@cret"));
        assert_eq!(dsn.host(), Some("db1"));
        assert_eq!(dsn.port(), Some("5433"));
        assert_eq!(dsn.dbname(), Some("sales"));
        assert_eq!(dsn.get("sslmode"), Some("require"));
        assert_eq!(dsn.get("application_name"), Some("pg an"));

        let short = parse("postgres://db1").unwrap();
        assert_eq!(short.host(), Some("db1"));
        assert_eq!(short.port(), None);
        // An empty URI means "all defaults", as in libpq.
        assert_eq!(parse("postgres://").unwrap(), Dsn::default());
        // JDBC's ssl=true is understood.
        assert_eq!(
            parse("postgres://h?ssl=true").unwrap().get("sslmode"),
            Some("require")
        );
    }

    #[test]
    fn uri_several_hosts() {
        let dsn =
            parse("postgres://u@h1:5432,h2:5433,h3/db?target_session_attrs=read-write").unwrap();
        assert_eq!(dsn.host(), Some("h1,h2,h3"));
        // A host without a port gets an empty slot, meaning the default.
        assert_eq!(dsn.port(), Some("5432,5433,"));
        let resolved = dsn.resolve(&env_of(&[])).unwrap();
        // The first host is the one connected to.
        assert_eq!(resolved.host(), "h1");
        assert_eq!(resolved.port(), 5432);
    }

    #[test]
    fn uri_ipv6() {
        let dsn = parse("postgres://[::1]:5433/db").unwrap();
        assert_eq!(dsn.host(), Some("::1"));
        assert_eq!(dsn.port(), Some("5433"));
        let resolved = dsn.resolve(&env_of(&[("PGUSER", "u")])).unwrap();
        assert_eq!(resolved.describe(), "u@[::1]:5433/db");
        let zoned = parse("postgres://[fe80::1%25eth0],[::2]:6000/db").unwrap();
        assert_eq!(zoned.host(), Some("fe80::1%eth0,::2"));
        assert_eq!(zoned.port(), Some(",6000"));
    }

    #[test]
    fn unix_socket_hosts() {
        let encoded = parse("postgres://%2Fvar%2Frun%2Fpostgresql:5433/db").unwrap();
        assert_eq!(encoded.host(), Some("/var/run/postgresql"));
        let query = parse("postgresql:///db?host=/tmp/pg&port=5434").unwrap();
        assert_eq!(query.host(), Some("/tmp/pg"));
        let resolved = query.resolve(&env_of(&[("PGUSER", "u")])).unwrap();
        assert!(resolved.is_unix_socket());
        assert_eq!(resolved.describe(), "u@/tmp/pg:5434/db");
        let options = resolved.connect_options(None);
        assert_eq!(
            options.get_socket().map(|p| p.as_path()),
            Some(Path::new("/tmp/pg"))
        );
        // libpq does not ask for TLS over a socket.
        assert!(matches!(options.get_ssl_mode(), PgSslMode::Disable));
        let kv = parse("host=/var/run/postgresql port=5432").unwrap();
        assert_eq!(kv.host(), Some("/var/run/postgresql"));
    }

    fn assert_invalid(input: &str, names: &str) {
        let err = parse_err(input);
        assert_eq!(err.code, ErrorCode::InvalidInput, "{input:?}: {err}");
        assert!(
            err.message.contains(names),
            "{input:?}: message {:?} should name {names:?}",
            err.message
        );
        let hint = err.hint.unwrap_or_default();
        // Every parse error shows both forms.
        assert!(
            hint.contains("postgres://user@host:5432/dbname") || hint.contains("URI"),
            "{hint}"
        );
        assert!(hint.contains("host=localhost port=5432"), "{hint}");
    }

    #[test]
    fn malformed_inputs_are_invalid_input() {
        assert_invalid("", "empty");
        assert_invalid("   ", "empty");
        assert_invalid("host='db1", "unterminated quoted string");
        assert_invalid("host=db1 port", "missing \"=\" after \"port\"");
        assert_invalid("localhost", "missing \"=\" after \"localhost\"");
        assert_invalid("host=db1 port=54x", "invalid port number \"54x\"");
        assert_invalid("port=0", "invalid port number");
        assert_invalid("port=70000", "invalid port number");
        assert_invalid("postgres://h:abc/db", "invalid port number \"abc\"");
        assert_invalid("sslmode=sometimes", "invalid sslmode value \"sometimes\"");
        assert_invalid(
            "postgres://h/db?sslmode=maybe",
            "invalid sslmode value \"maybe\"",
        );
        assert_invalid(
            "postgres://h/d%zzb",
            "invalid percent-encoding in the database name",
        );
        assert_invalid("postgres://h/d%4", "invalid percent-encoding");
        assert_invalid("postgres://h/d%00b", "%00");
        assert_invalid("postgres://h/d%ffb", "not valid UTF-8");
        assert_invalid("postgres://[::1/db", "missing \"]\"");
        assert_invalid("postgres://[]/db", "IPv6 host address in the URI is empty");
        assert_invalid("postgres://[::1]x/db", "unexpected character");
        assert_invalid(
            "postgres://h/db?sslmode",
            "missing \"=\" in the URI query parameter",
        );
        assert_invalid("postgres://h/db?a=b=c", "extra \"=\"");
        assert_invalid("connect_timeout=soon", "invalid integer value \"soon\"");
        assert_invalid("hostaddr=db.example.com", "invalid hostaddr");
    }

    #[test]
    fn unknown_keywords_are_named() {
        assert_invalid(
            "host=h colour=blue",
            "unknown connection keyword \"colour\"",
        );
        assert_invalid(
            "postgres://h/db?colour=blue",
            "unknown URI query parameter \"colour\"",
        );
    }

    #[test]
    fn every_libpq_keyword_is_accepted() {
        for keyword in [
            "host",
            "hostaddr",
            "port",
            "dbname",
            "user",
            "password",
            "passfile",
            "connect_timeout",
            "client_encoding",
            "options",
            "application_name",
            "fallback_application_name",
            "keepalives",
            "keepalives_idle",
            "keepalives_interval",
            "keepalives_count",
            "tcp_user_timeout",
            "sslmode",
            "sslcert",
            "sslkey",
            "sslrootcert",
            "sslcrl",
            "sslcrldir",
            "sslpassword",
            "sslsni",
            "requirepeer",
            "require_auth",
            "target_session_attrs",
            "service",
            "servicefile",
            "gssencmode",
            "krbsrvname",
            "gsslib",
            "gssdelegation",
            "channel_binding",
            "sslnegotiation",
            "sslcompression",
            "sslcertmode",
            "ssl_min_protocol_version",
            "ssl_max_protocol_version",
            "load_balance_hosts",
            "replication",
        ] {
            // Values every keyword accepts are hard to find; these suffice for the checked ones.
            let value = match keyword {
                "port" => "5432",
                "hostaddr" => "127.0.0.1",
                "sslmode" => "require",
                "gssencmode" | "channel_binding" => "prefer",
                "target_session_attrs" => "any",
                "load_balance_hosts" => "disable",
                k if k.starts_with("keepalives")
                    || k == "connect_timeout"
                    || k == "tcp_user_timeout" =>
                {
                    "1"
                }
                _ => "x",
            };
            let dsn = parse(&format!("{keyword}={value}"))
                .unwrap_or_else(|e| panic!("{keyword} should be accepted: {e}"));
            assert_eq!(dsn.get(keyword), Some(value));
        }
    }

    /// Every way a password could end up in an error message.
    #[test]
    fn password_never_in_errors() {
        let cases: &[(&str, &[&str])] = &[
            ("host=h password='S3cretPw", &["S3cretPw"]),
            // An unquoted password with a space: the rest looks like a keyword.
            ("host=h password=S3cret Pw port=5", &["S3cret", "Pw"]),
            ("host=h password=S3cret Pw=x", &["S3cret", "Pw"]),
            ("password='S3c'retPw' host=h", &["S3c", "retPw"]),
            ("password=S3cretPw port=S3cretPw", &["S3cretPw"]),
            ("password=S3cretPw sslmode=S3cretPw", &["S3cretPw"]),
            (
                "password=S3cretPw colour=blue sslmode=S3cret",
                &["S3cretPw"],
            ),
            ("postgres://u:S3cret%zzPw@h/db", &["S3cret", "zzPw"]),
            ("postgres://u:S3cret%00Pw@h/db", &["S3cret"]),
            // An unencoded "/" or "@" in the password.
            ("postgres://u:S3c/retPw@h/db", &["S3c", "retPw"]),
            ("postgres://u:S3c@retPw@h/db", &["S3c", "retPw"]),
            ("postgres://u:S3c@retPw:5432@h/db", &["S3c", "retPw"]),
            ("postgres://u:5432/retPw@h/db", &["retPw"]),
            ("postgres://u:S3cretPw@h:S3cretPw/db", &["S3cretPw"]),
            ("postgres://u:S3cretPw@h/db?sslmode=S3cretPw", &["S3cretPw"]),
            ("postgres://h/db?password=S3c&retPw", &["S3c", "retPw"]),
            ("postgres://h/db?password=S3c&retPw=1", &["S3c", "retPw"]),
            ("postgres://h/db?password=S3c=retPw", &["S3c", "retPw"]),
        ];
        for (input, secrets) in cases {
            let err = parse_err(input);
            assert_eq!(err.code, ErrorCode::InvalidInput, "{input}");
            let text = format!("{err} {err:?}");
            for secret in *secrets {
                assert!(
                    !text.contains(secret),
                    "{input:?} leaked {secret:?}: {text}"
                );
            }
        }
    }

    #[test]
    fn password_never_displayed() {
        for input in [
            "host=h user=u password=S3cretPw dbname=d",
            "host=h password='S3cret Pw' sslpassword=KeyPass",
            "postgres://u:S3cretPw@h/d?sslpassword=KeyPass",
        ] {
            let dsn = parse(input).unwrap();
            for text in [
                dsn.to_string(),
                dsn.to_string_redacted(),
                format!("{dsn:?}"),
                dsn.without_password().to_string(),
                format!("{:?}", dsn.resolve(&env_of(&[("PGUSER", "u")])).unwrap()),
            ] {
                assert!(!text.contains("S3cret"), "{input:?}: {text}");
                assert!(!text.contains("KeyPass"), "{input:?}: {text}");
            }
            assert!(dsn.password().is_some());
            assert_eq!(dsn.without_password().password(), None);
            assert_eq!(dsn.without_password().get("sslpassword"), None);
        }
    }

    #[test]
    fn display_round_trips() {
        let dsn = parse(
            "postgres://u@h1,h2:5433/my%20db?application_name=it%27s%5Cme&options=-c%20a%3Db",
        )
        .unwrap();
        let text = dsn.to_string();
        assert_eq!(
            text,
            "user=u host=h1,h2 port=,5433 dbname='my db' application_name='it\\'s\\\\me' \
             options='-c a=b'"
        );
        assert_eq!(parse(&text).unwrap(), dsn);
        let empty = parse("host=h sslkey=''").unwrap();
        assert_eq!(parse(&empty.to_string()).unwrap(), empty);
    }

    #[test]
    fn set_checks_keywords_and_values() {
        let mut dsn = Dsn::default();
        dsn.set("host", "db1").unwrap();
        dsn.set("port", "5433").unwrap();
        assert_eq!(dsn.to_string(), "host=db1 port=5433");
        assert_eq!(
            dsn.set("colour", "x").unwrap_err().code,
            ErrorCode::InvalidInput
        );
        assert_eq!(
            dsn.set("port", "x").unwrap_err().code,
            ErrorCode::InvalidInput
        );
    }

    #[test]
    fn env_fills_what_the_string_leaves_unset() {
        let env = env_of(&[
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("PGPASSWORD", "envpw"),
            ("PGSSLMODE", "require"),
            ("PGAPPNAME", "envapp"),
            ("PGCONNECT_TIMEOUT", "1"),
        ]);
        let resolved = parse("host=h user=u").unwrap().resolve(&env).unwrap();
        // Explicit keywords win over the environment.
        assert_eq!(resolved.host(), "h");
        assert_eq!(resolved.user(), "u");
        // The environment fills the rest.
        assert_eq!(resolved.port(), 6000);
        assert_eq!(resolved.dbname(), "envdb");
        assert_eq!(resolved.password(), Some("envpw"));
        assert!(matches!(resolved.ssl_mode(), PgSslMode::Require));
        assert_eq!(resolved.get("application_name"), Some("envapp"));
        // libpq raises a 1-second timeout to 2.
        assert_eq!(resolved.connect_timeout(), Some(Duration::from_secs(2)));
        let options = resolved.connect_options(None);
        assert_eq!(options.get_host(), "h");
        assert_eq!(options.get_port(), 6000);
        assert_eq!(options.get_username(), "u");
        assert_eq!(options.get_database(), Some("envdb"));
        assert_eq!(options.get_application_name(), Some("envapp"));

        let bad = parse("host=h")
            .unwrap()
            .resolve(&env_of(&[("PGPORT", "x")]));
        let err = bad.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.message.contains("PGPORT"), "{}", err.message);
    }

    #[test]
    fn defaults() {
        let resolved = parse("host=h")
            .unwrap()
            .resolve(&env_of(&[("PGUSER", "bob")]))
            .unwrap();
        assert_eq!(resolved.port(), 5432);
        // The database defaults to the user name.
        assert_eq!(resolved.dbname(), "bob");
        assert!(matches!(resolved.ssl_mode(), PgSslMode::Prefer));
        assert_eq!(resolved.connect_timeout(), None);

        let resolved = parse("port=5432").unwrap().resolve(&env_of(&[])).unwrap();
        let expected_host = if Path::new(DEFAULT_SOCKET_DIR).is_dir() {
            DEFAULT_SOCKET_DIR
        } else {
            "localhost"
        };
        assert_eq!(resolved.host(), expected_host);
        // The user defaults to the account we run as.
        assert!(!resolved.user().is_empty());
        assert_eq!(resolved.dbname(), resolved.user());
    }

    #[test]
    fn hostaddr_and_port_lists() {
        let resolved = parse("host=db.example.com hostaddr=10.0.0.5 port=5433")
            .unwrap()
            .resolve(&env_of(&[("PGUSER", "u")]))
            .unwrap();
        assert_eq!(resolved.host(), "db.example.com");
        assert_eq!(resolved.connect_options(None).get_host(), "10.0.0.5");
        let err = parse("host=a,b,c port=1,2")
            .unwrap()
            .resolve(&env_of(&[("PGUSER", "u")]))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.message.contains("port numbers"), "{}", err.message);
    }

    #[test]
    fn server_options_are_passed_on() {
        let resolved = parse(
            r"host=h user=u options='-c geqo=off --statement_timeout=5min -csearch_path=a,\\ b'",
        )
        .unwrap()
        .resolve(&env_of(&[]))
        .unwrap();
        let options = resolved.connect_options(None);
        assert_eq!(
            options.get_options(),
            Some(r"-c geqo=off -c statement_timeout=5min -c search_path=a,\ b")
        );
        let err = parse("host=h user=u options='-B 100'")
            .unwrap()
            .resolve(&env_of(&[]))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
    }

    #[test]
    fn service_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("services.conf");
        fs::write(
            &file,
            "# comment\n[other]\nhost=wrong\n\n[sales]\nhost = sales-db\nport=6543\n\
             dbname=sales\npassword=ServicePw\n[after]\nhost=wrong\n",
        )
        .unwrap();
        let env = env_of(&[
            ("PGSERVICEFILE", file.to_str().unwrap()),
            ("PGSYSCONFDIR", dir.path().to_str().unwrap()),
            ("HOME", dir.path().to_str().unwrap()),
            ("PGHOST", "env-host"),
            ("PGUSER", "envuser"),
            ("PGPORT", "7000"),
        ]);
        let resolved = parse("service=sales port=5000")
            .unwrap()
            .resolve(&env)
            .unwrap();
        // Explicit keywords win over the service file...
        assert_eq!(resolved.port(), 5000);
        // ...which wins over the environment...
        assert_eq!(resolved.host(), "sales-db");
        assert_eq!(resolved.dbname(), "sales");
        assert_eq!(resolved.password(), Some("ServicePw"));
        // ...which fills the rest.
        assert_eq!(resolved.user(), "envuser");

        // PGSERVICE names the service when the string does not.
        let env_service = env_of(&[
            ("PGSERVICE", "sales"),
            ("PGSERVICEFILE", file.to_str().unwrap()),
            ("HOME", dir.path().to_str().unwrap()),
            ("PGUSER", "u"),
        ]);
        let resolved = parse("user=u").unwrap().resolve(&env_service).unwrap();
        assert_eq!(resolved.host(), "sales-db");

        // The system-wide file is searched after the user's.
        let sysdir = tempfile::tempdir().unwrap();
        fs::write(
            sysdir.path().join("pg_service.conf"),
            "[sys]\nhost=sys-db\n",
        )
        .unwrap();
        let env_sys = env_of(&[
            ("PGSERVICEFILE", file.to_str().unwrap()),
            ("PGSYSCONFDIR", sysdir.path().to_str().unwrap()),
            ("PGUSER", "u"),
        ]);
        let resolved = parse("service=sys").unwrap().resolve(&env_sys).unwrap();
        assert_eq!(resolved.host(), "sys-db");

        // An unknown service names the files searched.
        let err = parse("service=nope").unwrap().resolve(&env).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.message.contains("\"nope\""), "{}", err.message);
        assert!(
            err.message.contains(file.to_str().unwrap()),
            "{}",
            err.message
        );
        assert!(err.message.contains("pg_service.conf"), "{}", err.message);

        // Syntax errors name the file and line, and never quote the value.
        let broken = dir.path().join("broken.conf");
        fs::write(&broken, "[b]\nhost=h\npassword BadPw\n").unwrap();
        let env_broken = env_of(&[("PGSERVICEFILE", broken.to_str().unwrap()), ("PGUSER", "u")]);
        let err = parse("service=b")
            .unwrap()
            .resolve(&env_broken)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.message.contains("line 3"), "{}", err.message);
        assert!(!err.to_string().contains("BadPw"));
    }

    #[test]
    fn pgpass_matching() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        write_private(
            &file,
            "# comment\n\
             db1:5432:sales:alice:first\n\
             db1:5432:sales:alice:second\n\
             db1:*:*:bob:bob\\:pw\\\\x\n\
             ho\\:st:5432:*:*:escaped\n\
             ::1:5432:*:*:v6\n\
             localhost:5432:*:carol:local\r\n\
             /srv/sock:5432:*:carol:custom-socket\n\
             *:*:*:*:fallback:ignored-field\n",
        );
        let find = |host, port, db, user| pgpass_lookup(&file, host, port, db, user);
        // The first matching line wins.
        assert_eq!(
            find("db1", 5432, "sales", "alice").as_deref(),
            Some("first")
        );
        // "*" matches anything; "\:" and "\\" are escapes in the password.
        assert_eq!(
            find("db1", 6000, "any", "bob").as_deref(),
            Some("bob:pw\\x")
        );
        // "\:" in a field matches ":".
        assert_eq!(find("ho:st", 5432, "d", "u").as_deref(), Some("escaped"));
        // An unescaped IPv6 address still matches, as in libpq.
        assert_eq!(find("::1", 5432, "d", "u").as_deref(), Some("v6"));
        // localhost stands for the default socket folder and for no host; CR LF is fine.
        assert_eq!(
            find("localhost", 5432, "d", "carol").as_deref(),
            Some("local")
        );
        assert_eq!(
            find("/var/run/postgresql", 5432, "d", "carol").as_deref(),
            Some("local")
        );
        assert_eq!(find("", 5432, "d", "carol").as_deref(), Some("local"));
        // Any other socket folder is matched by its path.
        assert_eq!(
            find("/srv/sock", 5432, "d", "carol").as_deref(),
            Some("custom-socket")
        );
        // The password ends at the next unescaped ":".
        assert_eq!(find("other", 1, "d", "u").as_deref(), Some("fallback"));
        // A file the group or others can read is ignored, as libpq ignores it.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(find("db1", 5432, "sales", "alice"), None);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o604)).unwrap();
        assert_eq!(find("db1", 5432, "sales", "alice"), None);
        // A missing file or a folder gives nothing.
        assert_eq!(
            pgpass_lookup(&dir.path().join("none"), "h", 5432, "d", "u"),
            None
        );
        assert_eq!(pgpass_lookup(dir.path(), "h", 5432, "d", "u"), None);
    }

    #[test]
    fn password_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let pgpass = dir.path().join(".pgpass");
        write_private(
            &pgpass,
            "h:5432:d:u:from-pgpass\nlocalhost:5432:d:u:socket-pw\n",
        );
        let env = env_of(&[("HOME", dir.path().to_str().unwrap())]);

        let plain = parse("host=h dbname=d user=u")
            .unwrap()
            .resolve(&env)
            .unwrap();
        assert_eq!(plain.passfile(), Some(pgpass.as_path()));
        // The keyring's password wins...
        assert_eq!(
            plain.effective_password(Some("keyring")).as_deref(),
            Some("keyring")
        );
        // ...else .pgpass (~/.pgpass by default).
        assert_eq!(
            plain.effective_password(None).as_deref(),
            Some("from-pgpass")
        );

        // The string's password wins over .pgpass.
        let with_pw = parse("host=h dbname=d user=u password=dsn")
            .unwrap()
            .resolve(&env)
            .unwrap();
        assert_eq!(with_pw.effective_password(None).as_deref(), Some("dsn"));
        assert_eq!(
            with_pw.effective_password(Some("keyring")).as_deref(),
            Some("keyring")
        );

        // passfile= and PGPASSFILE name another file.
        let other = dir.path().join("other");
        write_private(&other, "*:*:*:*:other-file\n");
        let env_file = env_of(&[
            ("HOME", dir.path().to_str().unwrap()),
            ("PGPASSFILE", other.to_str().unwrap()),
        ]);
        let via_env = parse("host=h dbname=d user=u")
            .unwrap()
            .resolve(&env_file)
            .unwrap();
        assert_eq!(
            via_env.effective_password(None).as_deref(),
            Some("other-file")
        );
        let keyword = format!("host=h dbname=d user=u passfile={}", pgpass.display());
        let via_keyword = parse(&keyword).unwrap().resolve(&env_file).unwrap();
        assert_eq!(
            via_keyword.effective_password(None).as_deref(),
            Some("from-pgpass")
        );

        // A socket in the default folder matches "localhost" lines.
        let socket = parse("host=/var/run/postgresql dbname=d user=u")
            .unwrap()
            .resolve(&env)
            .unwrap();
        assert_eq!(
            socket.effective_password(None).as_deref(),
            Some("socket-pw")
        );
    }
}
