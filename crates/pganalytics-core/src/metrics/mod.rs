//! Engine metrics: version-aware collectors for PostgreSQL 13–18, snapshots into the
//! repository's `sn_stat_*` tables, rates that survive resets and restarts, and advice.
//!
//! - [`collect`] reads every view of one server in **one statement** (one round trip) that
//!   returns a JSON document; the statement is assembled per `server_version_num`, and each
//!   view's version differences live in one place: [`bgwriter`], [`archiver`],
//!   [`replication`], [`wal`], [`io`].
//! - [`snapshot`] writes one snapshot (snap_id from `sn_stat_snapshot_seq`, then all rows) in
//!   one repository transaction, and records the outcome per server.
//! - [`rates`] turns cumulative counters into deltas and rates; [`advice`] into actions.
//! - [`report`] reads a server's latest snapshot, rates and status back; [`retention`] prunes.
//! - [`prometheus`] renders the latest values of many servers in the Prometheus text format.

pub mod advice;
pub mod archiver;
pub mod bgwriter;
pub mod duration;
pub mod io;
pub mod prometheus;
pub mod rates;
pub mod replication;
pub mod report;
pub mod retention;
pub mod snapshot;
pub mod wal;

pub use duration::parse_duration;
pub use snapshot::Collector;

use crate::api::SnapshotValues;
use crate::error::{Error, ErrorCode, Result};
use anyhow::Context;
use sqlx::postgres::PgConnection;
use sqlx::Row;

/// Settings kept with each snapshot for advice (never archive_command: it may hold secrets).
pub const ADVICE_SETTINGS: [&str; 8] = [
    "max_wal_size",
    "checkpoint_timeout",
    "checkpoint_completion_target",
    "bgwriter_delay",
    "bgwriter_lru_maxpages",
    "bgwriter_lru_multiplier",
    "shared_buffers",
    "archive_mode",
];

/// The one statement that reads a whole snapshot from a server of `version_num`. It has no
/// parameters and is prepared once per connection: planning this many subqueries costs more
/// than running them (measured on 18: 3.6 ms unprepared, 1.1 ms prepared, p50).
///
/// Consistency across views: see [`prepare_connection`]. Before 15 a backend reads the
/// statistics file once per transaction, so one statement sees one state of every view.
pub fn statement(version_num: i32) -> String {
    let settings = ADVICE_SETTINGS
        .iter()
        .map(|s| format!("'{s}', current_setting('{s}')"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT json_build_object(
    'server_version_num', current_setting('server_version_num')::int,
    'collected_at', now(),
    'in_recovery', pg_is_in_recovery(),
    'postmaster_start_time', pg_postmaster_start_time(),
    'current_wal_lsn', {current},
    'wal_segment_size', pg_size_bytes(current_setting('wal_segment_size')),
    'settings', json_build_object({settings}),
    'current_user', current_user,
    -- Without pg_read_all_stats (pg_monitor) most columns read as NULL: refuse rather than
    -- store NULLs that look like missing metrics.
    'can_read_stats', (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
        OR pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'),
    'bgwriter', {bgwriter},
    'archiver', {archiver},
    'wal', {wal},
    'io', {io},
    'replication', {senders},
    'wal_receiver', {receiver},
    'slots', {slots})::text",
        current = replication::CURRENT_LSN,
        bgwriter = bgwriter::sql(version_num),
        archiver = archiver::SQL,
        wal = wal::sql(version_num),
        io = io::sql(version_num),
        senders = replication::senders_sql(),
        receiver = replication::RECEIVER_SQL,
        slots = replication::slots_sql(version_num),
    )
}

/// Make a connection read every cumulative-statistics view from one snapshot: on 15+ the
/// default `stats_fetch_consistency = cache` caches each view separately at its first access,
/// so two views read in one statement could come from different moments; `snapshot` takes
/// all of them at once. Session-level, on the collector's own connection (one round trip per
/// connection, not per snapshot). Nothing to do before 15.
pub async fn prepare_connection(conn: &mut PgConnection) -> Result<()> {
    if conn.server_version_num().is_some_and(|n| n >= 150000) {
        sqlx::query("SET stats_fetch_consistency = snapshot")
            .execute(&mut *conn)
            .await
            .map_err(|e| query_error(&e))?;
    }
    Ok(())
}

/// What [`collect`] parses: the values plus who we are on that server.
#[derive(serde::Deserialize)]
struct Collected {
    #[serde(flatten)]
    values: SnapshotValues,
    current_user: String,
    can_read_stats: bool,
}

/// Read a snapshot of every view from a connected server, in one round trip. Runs in the
/// caller's transaction if there is one; call [`prepare_connection`] once per connection for
/// cross-view consistency on 15+.
///
/// Fails with `PermissionDenied` when the role cannot read all statistics (the hint says what
/// to grant), `UnsupportedVersion` before 13.
pub async fn collect(conn: &mut PgConnection) -> Result<SnapshotValues> {
    let version_num = match conn.server_version_num() {
        Some(n) => i32::try_from(n).unwrap_or(i32::MAX),
        None => sqlx::query("SELECT current_setting('server_version_num')::int")
            .fetch_one(&mut *conn)
            .await
            .context("read server_version_num")?
            .try_get(0)
            .context("read server_version_num")?,
    };
    if version_num < crate::server::MIN_SERVER_VERSION_NUM {
        return Err(Error::new(
            ErrorCode::UnsupportedVersion,
            format!(
                "the server runs PostgreSQL {}; engine metrics need 13 or later",
                crate::server::format_version_num(version_num)
            ),
        ));
    }
    let sql = statement(version_num);
    // Prepared and cached by sqlx per connection (keyed by the text, which is stable).
    let row = sqlx::query(&sql)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| query_error(&e))?;
    let text: String = row.try_get(0).context("read the snapshot document")?;
    let collected: Collected =
        serde_json::from_str(&text).context("parse the snapshot document")?;
    if !collected.can_read_stats {
        let user = collected.current_user;
        return Err(Error::new(
            ErrorCode::PermissionDenied,
            format!("role `{user}` cannot read all statistics: replication LSNs, lags and other columns would be hidden"),
        )
        .with_hint(format!("run `GRANT pg_monitor TO \"{user}\"` on the server")));
    }
    let mut values = collected.values;
    let archive_mode = values.settings.get("archive_mode").cloned();
    archiver::compute_lag(
        &mut values.archiver,
        archive_mode.as_deref(),
        values.in_recovery,
        values.current_wal_lsn.as_deref(),
        values.wal_segment_size,
    );
    Ok(values)
}

/// A failing collector statement: a lost connection is `Unreachable`, a refused function
/// `PermissionDenied`, anything else `Internal` with PostgreSQL's message.
fn query_error(e: &sqlx::Error) -> Error {
    match e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42501") => Error::new(
            ErrorCode::PermissionDenied,
            format!("reading the statistics views was refused: {}", db.message()),
        )
        .with_hint("grant the role pg_monitor: `GRANT pg_monitor TO <role>`"),
        // The server shut down, restarted or dropped us (57P01–57P03, class 08).
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")) =>
        {
            Error::new(
                ErrorCode::Unreachable,
                format!(
                    "the server ended the connection while reading statistics: {}",
                    db.message()
                ),
            )
            .with_hint("check that the server runs; the next snapshot reconnects")
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_) => Error::new(
            ErrorCode::Unreachable,
            format!("the connection to the server failed while reading statistics: {e}"),
        )
        .with_hint("check that the server runs; the next snapshot reconnects"),
        other => Error::internal(format!("reading the statistics views failed: {other}")),
    }
}
