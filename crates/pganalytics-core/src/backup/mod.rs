//! Physical backups of PostgreSQL servers, taken by our own code over the streaming
//! replication protocol (no `pg_basebackup`: the relocatable binaries have none, and the
//! user's machine need not have one of each server version).
//!
//! This first piece is the protocol client:
//! - [`protocol`]: a connection in physical replication mode (`replication=true`), with
//!   trust, cleartext, MD5 or SCRAM-SHA-256 authentication (computed by `postgres-protocol`)
//!   over a unix socket or TCP, and `IDENTIFY_SYSTEM`.
//! - [`tls`]: TLS over TCP, at the level of certificate checking the DSN's `sslmode` asks.
//! - [`options`]: the `BASE_BACKUP` command in the syntax of 13–14 and of 15+.
//! - [`stream`]: the `BASE_BACKUP` exchange, streaming each tablespace's tar archive and
//!   the server's `backup_manifest` to a [`BackupSink`] in bounded chunks.
//! - [`errors`]: the server's refusals (no `replication` line in pg_hba.conf, a role without
//!   REPLICATION, `max_wal_senders = 0`, `wal_level = minimal`) as errors whose hint says
//!   what to change.
//!
//! The pipeline (chunking, compression, encryption, upload), the catalogue and the commands
//! build on [`ReplicationConnection::base_backup`].

pub mod catalogue;
pub mod codec;
pub mod download;
pub mod engine;
pub mod errors;
pub mod import;
pub mod keys;
pub mod options;
pub mod protocol;
pub mod prune;
pub mod record;
pub mod restore;
pub mod stream;
pub mod tls;
pub mod upload;
pub mod verification_record;
pub mod verify;
pub mod wal_stream;

pub use errors::ServerError;
pub use options::BaseBackupOptions;
pub use protocol::{ConnectParams, ReplicationConnection, SystemIdentity};
pub use stream::{ArchiveInfo, ArchiveSummary, BackupSink, BaseBackupResult, TablespaceInfo};
pub use tls::TlsMode;
