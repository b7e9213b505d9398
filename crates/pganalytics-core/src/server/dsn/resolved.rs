//! [`Dsn::resolve`] and its result, [`ResolvedDsn`], which turns into sqlx options.

use super::parse::{check_value, parse_port};
use super::pgpass::pgpass_lookup;
use super::service::{find_service, home_dir, os_user_name};
use super::{
    is_secret, is_space, Dsn, DEFAULT_PORT, DEFAULT_SOCKET_DIR, FORMS_HINT, KEYWORDS, SSL_MODES,
};
use crate::error::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

impl Dsn {
    /// Fills in what the string leaves unset: the service file first, then the `PG*`
    /// environment variables, then the defaults, as libpq does. `env` reads one environment
    /// variable (pass [`process_env`](super::process_env) outside tests).
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

    /// The CA certificates to check the server's against: `sslrootcert`, else libpq's
    /// `~/.postgresql/root.crt` when it exists; `None` for neither (or `system`).
    pub fn ssl_root_cert(&self) -> Option<&Path> {
        self.ssl_root_cert.as_deref()
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
        self.password_for(password, &self.dbname)
    }

    /// The same for a physical replication connection: libpq matches its `.pgpass` lines
    /// against the database name `replication`.
    pub fn replication_password(&self, password: Option<&str>) -> Option<String> {
        self.password_for(password, "replication")
    }

    fn password_for(&self, password: Option<&str>, dbname: &str) -> Option<String> {
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            return Some(p.to_owned());
        }
        if let Some(p) = &self.password {
            return Some(p.clone());
        }
        let file = self.passfile.as_deref()?;
        pgpass_lookup(file, &self.host, self.port, dbname, &self.user)
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
