//! The server's refusals, turned into errors that say what to change on the server.

use crate::error::{Error, ErrorCode};
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::ErrorResponseBody;

/// The fields of an ErrorResponse that matter to us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerError {
    pub severity: String,
    /// SQLSTATE, e.g. `42501`.
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl ServerError {
    pub(crate) fn parse(body: &ErrorResponseBody) -> ServerError {
        let mut err = ServerError::default();
        let mut fields = body.fields();
        while let Ok(Some(field)) = fields.next() {
            let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
            match field.type_() {
                b'V' => err.severity = value,
                b'S' if err.severity.is_empty() => err.severity = value,
                b'C' => err.code = value,
                b'M' => err.message = value,
                b'D' => err.detail = Some(value),
                b'H' => err.hint = Some(value),
                _ => {}
            }
        }
        err
    }

    /// `FATAL: message (SQLSTATE 42501; detail)`.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{}: {} (SQLSTATE {})",
            self.severity, self.message, self.code
        );
        if let Some(detail) = &self.detail {
            text.push_str(&format!("; {detail}"));
        }
        text
    }
}

/// Who was connecting where, for hints.
pub(crate) struct Peer<'a> {
    pub server: &'a str,
    pub user: &'a str,
    /// The client address to put into a pg_hba.conf line (`127.0.0.1/32`, or `local`).
    pub hba_address: Option<String>,
}

/// Map a refusal while connecting or running a replication command.
pub(crate) fn map_server_error(err: &ServerError, peer: &Peer<'_>, doing: &str) -> Error {
    let what = format!("{} refused {doing}: {}", peer.server, err.describe());
    let user = peer.user;
    let hba_line = match &peer.hba_address {
        Some(addr) => format!("host replication {user} {addr} scram-sha-256"),
        None => format!("local replication {user} peer"),
    };
    let lower = err.message.to_lowercase();
    match err.code.as_str() {
        // invalid_authorization_specification: a `reject` line matches (PostgreSQL adds
        // "no encryption" when the connection was not encrypted) ...
        "28000" if lower.contains("pg_hba.conf rejects") => {
            let hint = if lower.contains("no encryption") {
                "pg_hba.conf rejects unencrypted connections here: set sslmode=require (or verify-ca / verify-full with sslrootcert) in the server's DSN".to_string()
            } else {
                format!("a `reject` line of pg_hba.conf matches this connection: put `{hba_line}` above it and reload (`SELECT pg_reload_conf()`)")
            };
            Error::new(ErrorCode::PermissionDenied, what).with_hint(hint)
        }
        // ... or no line matches.
        "28000" if lower.contains("pg_hba.conf") => Error::new(ErrorCode::PermissionDenied, what)
            .with_hint(format!(
                "pg_hba.conf has no line for replication connections (the `all` database does not cover them): add `{hba_line}` to pg_hba.conf and reload (`SELECT pg_reload_conf()`)"
            )),
        "28000" | "28P01" => Error::new(ErrorCode::AuthenticationFailed, what)
            .with_hint(format!("check the password of `{user}` and the method its pg_hba.conf replication line names")),
        // insufficient_privilege: the role may not start a WAL sender.
        "42501" => Error::new(ErrorCode::PermissionDenied, what).with_hint(format!(
            "the role needs the REPLICATION attribute: `ALTER ROLE {user} REPLICATION;` (as a superuser)"
        )),
        // too_many_connections: max_wal_senders is 0 or every WAL sender is busy.
        "53300" if lower.contains("max_wal_senders") => {
            let zero = lower.contains("currently 0");
            Error::new(ErrorCode::InvalidInput, what).with_hint(if zero {
                "the server allows no replication connections: set `max_wal_senders = 10` (and `wal_level = replica`, which it requires) in postgresql.conf and restart the server".to_string()
            } else {
                "every WAL sender is in use: raise `max_wal_senders` in postgresql.conf and restart the server, or wait for other backups and standbys to finish".to_string()
            })
        }
        "53300" => Error::new(ErrorCode::Unreachable, what)
            .with_hint("the server has no free connection slot: raise `max_connections` or close idle sessions"),
        // object_not_in_prerequisite_state: e.g. "WAL level not sufficient for making an online backup".
        "55000" if lower.contains("wal level") || lower.contains("wal_level") => {
            Error::new(ErrorCode::InvalidInput, what).with_hint(
                "set `wal_level = replica` in postgresql.conf and restart the server",
            )
        }
        // The WAL of a backup is streamed through a temporary replication slot.
        "55000" if lower.contains("max_replication_slots") => Error::new(ErrorCode::InvalidInput, what)
            .with_hint("a backup holds a temporary replication slot while it runs: set `max_replication_slots = 10` in postgresql.conf and restart the server"),
        "55000" => Error::new(ErrorCode::InvalidInput, what),
        // configuration_limit_exceeded: every replication slot is taken.
        "53400" => Error::new(ErrorCode::InvalidInput, what)
            .with_hint("every replication slot is in use: raise `max_replication_slots` and restart, or drop slots nobody uses (`SELECT slot_name, active FROM pg_replication_slots`)"),
        // cannot_connect_now (starting up, shutting down, recovery not ready) and admin shutdown.
        "57P03" | "57P01" | "57P02" | "57P05" => Error::new(ErrorCode::Unreachable, what)
            .with_hint("the server is starting, stopping or in recovery; try again once it accepts connections"),
        // syntax_error: the server does not understand the command (an unsupported version).
        "42601" => Error::new(ErrorCode::UnsupportedVersion, what)
            .with_hint("pgAnalytics takes backups of PostgreSQL 13 and newer"),
        "3D000" => Error::new(ErrorCode::InvalidInput, what),
        _ => Error::internal(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: &str, message: &str) -> ServerError {
        ServerError {
            severity: "FATAL".into(),
            code: code.into(),
            message: message.into(),
            ..Default::default()
        }
    }

    fn peer() -> Peer<'static> {
        Peer {
            server: "127.0.0.1:5432",
            user: "bob",
            hba_address: Some("127.0.0.1/32".into()),
        }
    }

    #[test]
    fn each_setup_mistake_names_its_fix() {
        let e = map_server_error(
            &err("28000", "no pg_hba.conf entry for replication connection from host \"127.0.0.1\", user \"bob\", no encryption"),
            &peer(),
            "the replication connection",
        );
        assert_eq!(e.code, ErrorCode::PermissionDenied);
        assert!(e
            .hint
            .unwrap()
            .contains("host replication bob 127.0.0.1/32 scram-sha-256"));

        let e = map_server_error(
            &err(
                "53300",
                "number of requested standby connections exceeds max_wal_senders (currently 0)",
            ),
            &peer(),
            "the replication connection",
        );
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.hint.unwrap().contains("max_wal_senders = 10"));

        let e = map_server_error(
            &err("42501", "permission denied to start WAL sender"),
            &peer(),
            "the replication connection",
        );
        assert_eq!(e.code, ErrorCode::PermissionDenied);
        assert!(e.hint.unwrap().contains("ALTER ROLE bob REPLICATION"));

        let e = map_server_error(
            &err(
                "55000",
                "WAL level not sufficient for making an online backup",
            ),
            &peer(),
            "BASE_BACKUP",
        );
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.hint.unwrap().contains("wal_level = replica"));

        let e = map_server_error(
            &err("53400", "all replication slots are in use"),
            &peer(),
            "CREATE_REPLICATION_SLOT",
        );
        assert!(e.hint.unwrap().contains("max_replication_slots"));
        let e = map_server_error(
            &err(
                "55000",
                "replication slots can only be used if max_replication_slots > 0",
            ),
            &peer(),
            "CREATE_REPLICATION_SLOT",
        );
        assert!(e.hint.unwrap().contains("max_replication_slots = 10"));
    }
}
