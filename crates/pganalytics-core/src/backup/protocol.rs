//! A connection in physical replication mode (`replication=true` in the startup packet) and
//! the commands of the replication grammar that return plain result sets
//! (`IDENTIFY_SYSTEM`). Messages are encoded and decoded by `postgres-protocol`, which also
//! computes the MD5 and SCRAM-SHA-256 answers; this file only drives the exchange.
//!
//! Over TCP, TLS is negotiated as the DSN's `sslmode` asks (see [`super::tls`]).

use super::errors::{map_server_error, Peer, ServerError};
use super::tls::{negotiate, Negotiated, TlsMode};
use crate::error::{Error, ErrorCode, Result};
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::backend::{self, Message};
use postgres_protocol::message::frontend;
use std::path::Path;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// No message we expect is near this size (CopyData of a base backup is 32 kB); a larger
/// length means a broken or hostile peer, and we refuse before buffering it.
pub(crate) const MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// Where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectParams {
    /// A host name or IP address, or an absolute folder holding the server's unix socket.
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Needed when the server asks for a password (MD5, SCRAM-SHA-256 or cleartext).
    pub password: Option<String>,
    pub application_name: String,
    /// TLS over TCP (never on a unix socket).
    pub tls: TlsMode,
    /// The name a `verify-full` certificate must carry when `host` is an address taken from
    /// the DSN's `hostaddr`; `host` otherwise.
    pub tls_name: Option<String>,
}

impl ConnectParams {
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>) -> Self {
        ConnectParams {
            host: host.into(),
            port,
            user: user.into(),
            password: None,
            application_name: "pganalytics".into(),
            tls: TlsMode::default(),
            tls_name: None,
        }
    }

    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    fn is_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    /// `host:port`, or the socket path, for messages.
    pub fn describe(&self) -> String {
        if self.is_socket() {
            format!("{}/.s.PGSQL.{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// What `IDENTIFY_SYSTEM` reports, with the server's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemIdentity {
    /// pg_control's system identifier (decimal; it does not fit an i64 reliably).
    pub system_identifier: String,
    pub timeline: u32,
    /// Current WAL flush position, e.g. `0/3000148`.
    pub xlogpos: String,
    /// e.g. `150020` for 15.20.
    pub server_version_num: u32,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A message read where copy-both mode may begin.
pub(crate) enum Frame {
    CopyBoth,
    Message(Message),
}

/// One connection in physical replication mode.
pub struct ReplicationConnection {
    io: Box<dyn Io>,
    read_buf: BytesMut,
    write_buf: BytesMut,
    params: ConnectParams,
    server_version: String,
    server_version_num: u32,
}

impl std::fmt::Debug for ReplicationConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationConnection")
            .field("server", &self.params.describe())
            .field("user", &self.params.user)
            .field("server_version", &self.server_version)
            .finish()
    }
}

impl ReplicationConnection {
    /// Connect, authenticate and wait until the WAL sender is ready for commands.
    pub async fn connect(params: &ConnectParams) -> Result<ReplicationConnection> {
        let io: Box<dyn Io> = if params.is_socket() {
            let path = Path::new(&params.host).join(format!(".s.PGSQL.{}", params.port));
            let stream = tokio::net::UnixStream::connect(&path)
                .await
                .map_err(|e| unreachable(params, &e))?;
            Box::new(stream)
        } else {
            let stream = tokio::net::TcpStream::connect((params.host.as_str(), params.port))
                .await
                .map_err(|e| unreachable(params, &e))?;
            let _ = stream.set_nodelay(true);
            if params.tls == TlsMode::Disable {
                Box::new(stream)
            } else {
                let name = params.tls_name.as_deref().unwrap_or(&params.host);
                match negotiate(stream, &params.tls, name, &params.describe()).await? {
                    Negotiated::Tls(tls) => Box::new(tls),
                    Negotiated::Plain(tcp) => Box::new(tcp),
                }
            }
        };
        let mut conn = ReplicationConnection {
            io,
            read_buf: BytesMut::with_capacity(64 * 1024),
            write_buf: BytesMut::with_capacity(1024),
            params: params.clone(),
            server_version: String::new(),
            server_version_num: 0,
        };
        conn.startup().await?;
        Ok(conn)
    }

    pub fn params(&self) -> &ConnectParams {
        &self.params
    }

    /// The server's version as it reports it (`15.20 (Debian …)`).
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    pub fn server_version_num(&self) -> u32 {
        self.server_version_num
    }

    async fn startup(&mut self) -> Result<()> {
        let params = [
            ("user", self.params.user.as_str()),
            // A physical replication connection: BASE_BACKUP is refused in
            // `replication=database` mode before 15 and needs no database.
            ("replication", "true"),
            ("application_name", self.params.application_name.as_str()),
            ("client_encoding", "UTF8"),
        ];
        frontend::startup_message(params, &mut self.write_buf).map_err(io_error)?;
        self.flush().await?;
        self.authenticate().await?;
        loop {
            match self.read_message().await? {
                Message::ParameterStatus(body) => {
                    let name = body.name().map_err(io_error)?;
                    if name == "server_version" {
                        self.server_version = body.value().map_err(io_error)?.to_string();
                        self.server_version_num = parse_version_num(&self.server_version);
                    }
                }
                Message::BackendKeyData(_) | Message::NoticeResponse(_) => {}
                Message::ReadyForQuery(_) => break,
                Message::ErrorResponse(body) => {
                    return Err(
                        self.refusal(&ServerError::parse(&body), "the replication connection")
                    )
                }
                _ => return Err(self.unexpected("while starting up")),
            }
        }
        if self.server_version_num < super::options::MIN_VERSION {
            return Err(Error::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "{} runs PostgreSQL {}; backups need 13 or newer",
                    self.params.describe(),
                    self.server_version
                ),
            ));
        }
        Ok(())
    }

    async fn authenticate(&mut self) -> Result<()> {
        let mut scram: Option<ScramSha256> = None;
        loop {
            match self.read_message().await? {
                Message::AuthenticationOk => return Ok(()),
                Message::AuthenticationCleartextPassword => {
                    let password = self.password()?;
                    frontend::password_message(password.as_bytes(), &mut self.write_buf)
                        .map_err(io_error)?;
                    self.flush().await?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let password = self.password()?;
                    let hash = postgres_protocol::authentication::md5_hash(
                        self.params.user.as_bytes(),
                        password.as_bytes(),
                        body.salt(),
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.write_buf)
                        .map_err(io_error)?;
                    self.flush().await?;
                }
                Message::AuthenticationSasl(body) => {
                    let mechanisms: Vec<String> = body
                        .mechanisms()
                        .map(|m| Ok(m.to_string()))
                        .collect()
                        .map_err(io_error)?;
                    if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                        return Err(Error::new(
                            ErrorCode::AuthenticationFailed,
                            format!(
                                "{} offers only SASL mechanisms we do not speak: {}",
                                self.params.describe(),
                                mechanisms.join(", ")
                            ),
                        )
                        .with_hint("use scram-sha-256 (without channel binding) for replication connections in pg_hba.conf"));
                    }
                    let password = self.password()?;
                    let state = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
                    frontend::sasl_initial_response(
                        SCRAM_SHA_256,
                        state.message(),
                        &mut self.write_buf,
                    )
                    .map_err(io_error)?;
                    scram = Some(state);
                    self.flush().await?;
                }
                Message::AuthenticationSaslContinue(body) => {
                    let state = scram
                        .as_mut()
                        .ok_or_else(|| self.unexpected("SASL continue before SASL start"))?;
                    state.update(body.data()).map_err(|e| self.auth_protocol_error(e))?;
                    frontend::sasl_response(state.message(), &mut self.write_buf)
                        .map_err(io_error)?;
                    self.flush().await?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let state = scram
                        .as_mut()
                        .ok_or_else(|| self.unexpected("SASL final before SASL start"))?;
                    state.finish(body.data()).map_err(|e| self.auth_protocol_error(e))?;
                }
                Message::ErrorResponse(body) => {
                    return Err(self.refusal(&ServerError::parse(&body), "the replication connection"))
                }
                Message::NoticeResponse(_) => {}
                _ => {
                    return Err(Error::new(
                        ErrorCode::AuthenticationFailed,
                        format!(
                            "{} asked for an authentication method pgAnalytics does not support (GSSAPI, SSPI or Kerberos)",
                            self.params.describe()
                        ),
                    )
                    .with_hint("use scram-sha-256, md5 or trust for replication connections in pg_hba.conf"))
                }
            }
        }
    }

    fn password(&self) -> Result<String> {
        self.params.password.clone().ok_or_else(|| {
            Error::new(
                ErrorCode::AuthenticationFailed,
                format!(
                    "{} asks for a password for `{}` and none was given",
                    self.params.describe(),
                    self.params.user
                ),
            )
            .with_hint("store the server's password, or allow the connection with another method in pg_hba.conf")
        })
    }

    fn auth_protocol_error(&self, e: std::io::Error) -> Error {
        Error::new(
            ErrorCode::AuthenticationFailed,
            format!(
                "SCRAM authentication with {} failed: {e}",
                self.params.describe()
            ),
        )
    }

    /// `IDENTIFY_SYSTEM`: system identifier, timeline and current WAL position.
    pub async fn identify_system(&mut self) -> Result<SystemIdentity> {
        let rows = self.simple_query("IDENTIFY_SYSTEM").await?;
        let row = rows
            .first()
            .ok_or_else(|| self.unexpected("IDENTIFY_SYSTEM returned no row"))?;
        let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let timeline = field(1)
            .parse()
            .map_err(|_| self.unexpected("IDENTIFY_SYSTEM returned a malformed timeline"))?;
        Ok(SystemIdentity {
            system_identifier: field(0),
            timeline,
            xlogpos: field(2),
            server_version_num: self.server_version_num,
        })
    }

    /// Run a command that returns at most one text result set; rows as optional strings.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        self.send_query(sql).await?;
        let mut rows = Vec::new();
        let mut failure = None;
        loop {
            match self.read_message().await? {
                Message::DataRow(body) => rows.push(data_row(&body)?),
                Message::ErrorResponse(body) => failure = Some(ServerError::parse(&body)),
                Message::ReadyForQuery(_) => break,
                Message::RowDescription(_)
                | Message::CommandComplete(_)
                | Message::EmptyQueryResponse
                | Message::NoticeResponse(_)
                | Message::ParameterStatus(_) => {}
                _ => return Err(self.unexpected(&format!("in the answer to {sql}"))),
            }
        }
        match failure {
            Some(err) => Err(self.refusal(&err, first_word(sql))),
            None => Ok(rows),
        }
    }

    /// Say goodbye (the server ends the WAL sender at once).
    pub async fn close(mut self) -> Result<()> {
        frontend::terminate(&mut self.write_buf);
        self.flush().await?;
        let _ = self.io.shutdown().await;
        Ok(())
    }

    pub(crate) async fn send_query(&mut self, sql: &str) -> Result<()> {
        frontend::query(sql, &mut self.write_buf).map_err(io_error)?;
        self.flush().await
    }

    async fn flush(&mut self) -> Result<()> {
        let buf = self.write_buf.split();
        self.io.write_all(&buf).await.map_err(|e| self.lost(&e))?;
        self.io.flush().await.map_err(|e| self.lost(&e))
    }

    /// The next message, where `CopyBothResponse` (`W`, which `postgres-protocol` does not
    /// parse) is possible: START_REPLICATION answers with it.
    pub(crate) async fn read_frame(&mut self) -> Result<Frame> {
        loop {
            if let Some(header) = backend::Header::parse(&self.read_buf).map_err(io_error)? {
                if header.tag() == b'W' {
                    let len = header.len() as usize + 1;
                    if self.read_buf.len() >= len {
                        let _ = self.read_buf.split_to(len);
                        return Ok(Frame::CopyBoth);
                    }
                } else {
                    return self.read_message().await.map(Frame::Message);
                }
            }
            self.fill().await?;
        }
    }

    /// Send one CopyData message (inside START_REPLICATION's copy-both mode).
    pub(crate) async fn send_copy_data(&mut self, payload: &[u8]) -> Result<()> {
        frontend::CopyData::new(payload)
            .map_err(io_error)?
            .write(&mut self.write_buf);
        self.flush().await
    }

    pub(crate) async fn send_copy_done(&mut self) -> Result<()> {
        frontend::copy_done(&mut self.write_buf);
        self.flush().await
    }

    async fn fill(&mut self) -> Result<()> {
        let n = self
            .io
            .read_buf(&mut self.read_buf)
            .await
            .map_err(|e| self.lost(&e))?;
        if n == 0 {
            return Err(Error::new(
                ErrorCode::Unreachable,
                format!(
                    "{} closed the replication connection unexpectedly",
                    self.params.describe()
                ),
            )
            .with_hint("read the server's log: it says why it ended the session"));
        }
        Ok(())
    }

    /// The next message; its body is at most [`MAX_MESSAGE_LEN`].
    pub(crate) async fn read_message(&mut self) -> Result<Message> {
        loop {
            if let Some(header) = backend::Header::parse(&self.read_buf).map_err(io_error)? {
                let len = header.len() as usize + 1;
                if len > MAX_MESSAGE_LEN {
                    return Err(Error::internal(format!(
                        "{} sent a protocol message of {len} bytes (type `{}`); refusing to buffer it",
                        self.params.describe(),
                        header.tag() as char
                    )));
                }
                if self.read_buf.len() < len {
                    self.read_buf.reserve(len - self.read_buf.len());
                }
            }
            if let Some(message) = Message::parse(&mut self.read_buf).map_err(io_error)? {
                return Ok(message);
            }
            self.fill().await?;
        }
    }

    pub(crate) fn refusal(&self, err: &ServerError, doing: &str) -> Error {
        map_server_error(
            err,
            &Peer {
                server: &self.params.describe(),
                user: &self.params.user,
                hba_address: hba_address(&self.params),
            },
            doing,
        )
    }

    pub(crate) fn unexpected(&self, context: &str) -> Error {
        Error::internal(format!(
            "{} sent an unexpected protocol message {context}",
            self.params.describe()
        ))
    }

    fn lost(&self, e: &std::io::Error) -> Error {
        Error::new(
            ErrorCode::Unreachable,
            format!(
                "the replication connection to {} failed: {e}",
                self.params.describe()
            ),
        )
    }
}

fn unreachable(params: &ConnectParams, e: &std::io::Error) -> Error {
    Error::new(
        ErrorCode::Unreachable,
        format!("cannot connect to {}: {e}", params.describe()),
    )
    .with_hint("check that the server runs and listens there (`listen_addresses`, `port`) and that no firewall is in the way")
}

pub(crate) fn io_error(e: std::io::Error) -> Error {
    Error::internal(format!("malformed protocol message: {e}"))
}

/// The address a pg_hba.conf line needs: the host if it is an IP address, else a
/// placeholder the user must fill in; `None` for a unix socket (`local` line).
fn hba_address(params: &ConnectParams) -> Option<String> {
    if params.is_socket() {
        return None;
    }
    Some(match params.host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_loopback() && ip.is_ipv4() => "127.0.0.1/32".to_string(),
        Ok(ip) if ip.is_loopback() => "::1/128".to_string(),
        _ => "CLIENT_ADDRESS/32".to_string(),
    })
}

pub(crate) fn data_row(body: &backend::DataRowBody) -> Result<Vec<Option<String>>> {
    let buf = body.buffer();
    body.ranges()
        .map(|r| Ok(r.map(|r| String::from_utf8_lossy(&buf[r]).into_owned())))
        .collect()
        .map_err(io_error)
}

fn first_word(sql: &str) -> &str {
    sql.split_whitespace().next().unwrap_or(sql)
}

/// `15.20 (Debian …)` → 150020, `18.1` → 180001, `16beta2` → 160000.
pub fn parse_version_num(version: &str) -> u32 {
    let numeric: String = version
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = numeric.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    if major >= 10 {
        major * 10_000 + minor
    } else {
        let patch = parts.next().unwrap_or(0);
        major * 10_000 + minor * 100 + patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers() {
        assert_eq!(parse_version_num("15.20 (Debian 15.20-0+deb12u1)"), 150_020);
        assert_eq!(parse_version_num("18.1"), 180_001);
        assert_eq!(parse_version_num("16beta2"), 160_000);
        assert_eq!(parse_version_num("9.6.24"), 90_624);
    }
}
