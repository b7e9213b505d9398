//! PostgreSQL connection strings, parsed and resolved the way libpq does it.
//!
//! [`parse()`] accepts both forms libpq accepts (a `postgres://` URI or `keyword=value` pairs) and
//! keeps the keywords as written; [`Dsn::resolve`] fills in what is missing from the service
//! file, the `PG*` environment variables and the defaults, in libpq's order;
//! [`ResolvedDsn::connect_options`] turns the result into sqlx options, finding the password in
//! `.pgpass` when nobody gave one.
//!
//! Secrets never leave this module in text: `Display` and `Debug` leave them out, and error
//! messages never quote a value that could be (part of) a password.

mod parse;
mod pgpass;
mod resolved;
mod service;
#[cfg(test)]
mod tests;

pub use pgpass::pgpass_lookup;
pub use resolved::ResolvedDsn;

use crate::error::{Error, Result};
use parse::{check_value, parse_keyword_value, parse_uri};
use std::fmt;
use std::str::FromStr;

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

    /// Sets a keyword, checking it the way [`parse()`] does.
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

/// Writes a value so that [`parse()`] reads it back unchanged.
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
