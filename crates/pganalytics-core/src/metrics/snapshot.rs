//! Taking and storing snapshots. A [`Collector`] keeps its connection to the server between
//! snapshots (a connection per snapshot would fork a backend on the server every time) and
//! reconnects once when the connection broke (a restart, a network blip).
//!
//! One snapshot is one repository transaction: `nextval('sn_stat_snapshot_seq')`, then one
//! statement whose data-modifying CTEs insert the `sn_snapshot` row and every `sn_stat_*` row
//! from the collected JSON document, then the server's collection status. Either all of it is
//! stored or nothing.

use super::{collect, rates, report};
use crate::api::{SnapshotResult, SnapshotValues};
use crate::error::{Error, ErrorCode, Result};
use crate::repository::Repository;
use anyhow::Context;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Connection, Row};

pub struct Collector {
    name: String,
    server_id: uuid::Uuid,
    conn: Option<PgConnection>,
    /// The last snapshot this collector stored: the base of the next archive rate without
    /// reading it back from the repository.
    last: Option<SnapshotValues>,
}

impl Collector {
    /// A collector for a registered server (`NotFound` when there is none). Connects lazily.
    pub async fn new(repo: &Repository, name: &str) -> Result<Collector> {
        let server_id = crate::server::id_of(repo, name).await?;
        Ok(Collector {
            name: name.to_string(),
            server_id,
            conn: None,
            last: None,
        })
    }

    pub fn server(&self) -> &str {
        &self.name
    }

    /// Read the server and store one snapshot; a failure is recorded in the server's
    /// collection status (and returned) so that `metrics show` and the app can show it.
    pub async fn snapshot(&mut self, repo: &Repository) -> Result<SnapshotResult> {
        let result = match self.read(repo).await {
            Ok(values) => write(repo.pool(), self.server_id, values, self.last.as_ref())
                .await
                .map(|(snap_id, values)| SnapshotResult {
                    snap_id,
                    server: self.name.clone(),
                    values,
                }),
            Err(e) => Err(e),
        };
        self.last = result.as_ref().ok().map(|r| r.values.clone());
        if let Err(e) = &result {
            if let Err(rec) = record_failure(repo.pool(), self.server_id, e).await {
                tracing::warn!(server = %self.name, "failed to record the collection failure: {rec:#}");
            }
        }
        result
    }

    async fn read(&mut self, repo: &Repository) -> Result<SnapshotValues> {
        let reused = self.conn.is_some();
        for attempt in 0..2 {
            if self.conn.is_none() {
                let mut conn = crate::server::connect(repo, &self.name).await?;
                super::prepare_connection(&mut conn).await?;
                self.conn = Some(conn);
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            match collect(conn).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    // A kept connection may have died with a server restart: retry once on a
                    // fresh one. Other errors (privileges) would only repeat.
                    if let Some(c) = self.conn.take() {
                        let _ = c.close().await;
                    }
                    if !(reused && attempt == 0 && e.code == ErrorCode::Unreachable) {
                        return Err(e);
                    }
                }
            }
        }
        Err(Error::new(
            ErrorCode::Unreachable,
            format!("server `{}` could not be read", self.name),
        ))
    }

    /// The server-side process id of the collector's connection (connecting first if needed),
    /// so that a benchmark can read that backend's CPU time from `/proc`.
    pub async fn backend_pid(&mut self, repo: &Repository) -> Result<i32> {
        if self.conn.is_none() {
            let mut conn = crate::server::connect(repo, &self.name).await?;
            super::prepare_connection(&mut conn).await?;
            self.conn = Some(conn);
        }
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Error::internal("the collector has no connection"))?;
        let pid: i32 = sqlx::query("SELECT pg_backend_pid()")
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        Ok(pid)
    }

    /// Close the kept connection.
    pub async fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            let _ = c.close().await;
        }
    }
}

/// `(column, type in the JSON record, expression stored)`; the expression defaults to the column.
type Col = (&'static str, &'static str, Option<&'static str>);

const BGWRITER: &[Col] = &[
    ("checkpoints_timed", "bigint", None),
    ("checkpoints_req", "bigint", None),
    ("checkpoints_done", "bigint", None),
    ("restartpoints_timed", "bigint", None),
    ("restartpoints_req", "bigint", None),
    ("restartpoints_done", "bigint", None),
    ("checkpoint_write_time", "float8", None),
    ("checkpoint_sync_time", "float8", None),
    ("buffers_checkpoint", "bigint", None),
    ("slru_written", "bigint", None),
    ("buffers_clean", "bigint", None),
    ("maxwritten_clean", "bigint", None),
    ("buffers_backend", "bigint", None),
    ("buffers_backend_fsync", "bigint", None),
    ("buffers_alloc", "bigint", None),
    ("stats_reset", "timestamptz", None),
    ("checkpointer_stats_reset", "timestamptz", None),
    ("io_stats_reset", "timestamptz", None),
];

const ARCHIVER: &[Col] = &[
    ("archived_count", "bigint", None),
    ("last_archived_wal", "text", None),
    ("last_archived_time", "timestamptz", None),
    ("failed_count", "bigint", None),
    ("last_failed_wal", "text", None),
    ("last_failed_time", "timestamptz", None),
    ("stats_reset", "timestamptz", None),
    ("current_wal_file", "text", None),
    ("archive_lag_segments", "bigint", None),
    ("archive_lag_bytes", "bigint", None),
    ("archive_rate", "float8", None),
];

const REPLICATION: &[Col] = &[
    ("pid", "integer", None),
    ("usesysid", "oid", None),
    ("usename", "name", None),
    ("application_name", "text", None),
    ("client_addr", "inet", None),
    ("state", "text", None),
    ("backend_start", "timestamptz", None),
    ("sync_state", "text", None),
    ("wal_sent_lsn", "pg_lsn", None),
    ("wal_write_lsn", "pg_lsn", None),
    ("wal_flush_lsn", "pg_lsn", None),
    ("wal_replay_lsn", "pg_lsn", None),
    // Seconds in the document, INTERVAL in the board's table.
    (
        "write_lag",
        "float8",
        Some("make_interval(secs => r.write_lag)"),
    ),
    (
        "flush_lag",
        "float8",
        Some("make_interval(secs => r.flush_lag)"),
    ),
    (
        "replay_lag",
        "float8",
        Some("make_interval(secs => r.replay_lag)"),
    ),
    ("lag_bytes", "bigint", None),
];

const WAL_RECEIVER: &[Col] = &[
    ("pid", "integer", None),
    ("status", "text", None),
    ("receive_start_lsn", "pg_lsn", None),
    ("written_lsn", "pg_lsn", None),
    ("flushed_lsn", "pg_lsn", None),
    ("received_tli", "integer", None),
    ("last_msg_send_time", "timestamptz", None),
    ("last_msg_receipt_time", "timestamptz", None),
    ("latest_end_lsn", "pg_lsn", None),
    ("latest_end_time", "timestamptz", None),
    ("slot_name", "text", None),
    ("sender_host", "text", None),
    ("sender_port", "integer", None),
    ("replay_lsn", "pg_lsn", None),
    ("replay_lag_bytes", "bigint", None),
    ("last_replay_time", "timestamptz", None),
];

const SLOTS: &[Col] = &[
    ("slot_name", "text", None),
    ("plugin", "text", None),
    ("slot_type", "text", None),
    ("database", "text", None),
    ("temporary", "boolean", None),
    ("active", "boolean", None),
    ("active_pid", "integer", None),
    ("restart_lsn", "pg_lsn", None),
    ("confirmed_flush_lsn", "pg_lsn", None),
    ("wal_status", "text", None),
    ("safe_wal_size", "bigint", None),
    ("retained_bytes", "bigint", None),
    ("conflicting", "boolean", None),
    ("inactive_since", "timestamptz", None),
    ("invalidation_reason", "text", None),
];

const WAL: &[Col] = &[
    ("wal_records", "bigint", None),
    ("wal_fpi", "bigint", None),
    ("wal_bytes", "numeric", None),
    ("wal_buffers_full", "bigint", None),
    ("wal_write", "bigint", None),
    ("wal_sync", "bigint", None),
    ("wal_write_time", "float8", None),
    ("wal_sync_time", "float8", None),
    ("stats_reset", "timestamptz", None),
];

const IO: &[Col] = &[
    ("backend_type", "text", None),
    ("object", "text", None),
    ("context", "text", None),
    ("reads", "bigint", None),
    ("read_bytes", "numeric", None),
    ("read_time", "float8", None),
    ("writes", "bigint", None),
    ("write_bytes", "numeric", None),
    ("write_time", "float8", None),
    ("writebacks", "bigint", None),
    ("writeback_time", "float8", None),
    ("extends", "bigint", None),
    ("extend_bytes", "numeric", None),
    ("extend_time", "float8", None),
    ("op_bytes", "bigint", None),
    ("hits", "bigint", None),
    ("evictions", "bigint", None),
    ("reuses", "bigint", None),
    ("fsyncs", "bigint", None),
    ("fsync_time", "float8", None),
    ("stats_reset", "timestamptz", None),
];

/// One CTE inserting the rows of `key` of the document `$3` into `table`.
fn insert_cte(name: &str, table: &str, key: &str, cols: &[Col], many: bool) -> String {
    let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
    let exprs: Vec<String> = cols
        .iter()
        .map(|c| {
            c.2.map(str::to_string)
                .unwrap_or_else(|| format!("r.{}", c.0))
        })
        .collect();
    let record: Vec<String> = cols.iter().map(|c| format!("{} {}", c.0, c.1)).collect();
    let source = if many {
        // `io` is JSON null before 16: only an array is expanded.
        format!(
            "jsonb_to_recordset(CASE WHEN jsonb_typeof($3->'{key}') = 'array' THEN $3->'{key}' ELSE '[]'::jsonb END)"
        )
    } else {
        format!("jsonb_to_record($3->'{key}')")
    };
    // A missing object (`wal` before 14, `wal_receiver` on a primary) inserts nothing.
    let guard = if many {
        String::new()
    } else {
        format!(" WHERE jsonb_typeof($3->'{key}') = 'object'")
    };
    format!(
        "{name} AS (INSERT INTO {table} (snap_id, server_id, timestamp, {cols})
            SELECT $1, $2, $4, {exprs} FROM {source} AS r({record}){guard})",
        cols = names.join(", "),
        exprs = exprs.join(", "),
        record = record.join(", "),
    )
}

fn insert_statement() -> String {
    let ctes = [
        "snap AS (INSERT INTO sn_snapshot (snap_id, server_id, timestamp, server_version_num,
                in_recovery, postmaster_start_time, current_wal_lsn, wal_segment_size, settings)
            SELECT $1, $2, $4, (d->>'server_version_num')::int, (d->>'in_recovery')::boolean,
                (d->>'postmaster_start_time')::timestamptz, (d->>'current_wal_lsn')::pg_lsn,
                (d->>'wal_segment_size')::bigint, (d->'settings')::jsonb
            FROM (SELECT $3 AS d) doc)"
            .to_string(),
        insert_cte("bg", "sn_stat_bgwriter", "bgwriter", BGWRITER, false),
        insert_cte("arch", "sn_stat_archiver", "archiver", ARCHIVER, false),
        insert_cte(
            "repl",
            "sn_stat_replication",
            "replication",
            REPLICATION,
            true,
        ),
        insert_cte(
            "recv",
            "sn_stat_wal_receiver",
            "wal_receiver",
            WAL_RECEIVER,
            false,
        ),
        insert_cte("slots", "sn_stat_replication_slots", "slots", SLOTS, true),
        insert_cte("wal", "sn_stat_wal", "wal", WAL, false),
        insert_cte("io", "sn_stat_io", "io", IO, true),
    ];
    format!("WITH {} SELECT 1", ctes.join(",\n"))
}

/// Store `values` as a new snapshot of `server_id`; returns its snap_id and the values with
/// `archive_rate` filled in from the previous snapshot (`previous`, or the newest one in the
/// repository when the caller has none).
pub async fn write(
    pool: &PgPool,
    server_id: uuid::Uuid,
    mut values: SnapshotValues,
    previous: Option<&SnapshotValues>,
) -> Result<(i64, SnapshotValues)> {
    let mut tx = pool.begin().await?;
    let loaded = match previous {
        Some(_) => None,
        None => report::load(&mut tx, server_id, report::Window::Latest, false)
            .await?
            .pop()
            .map(|(_, v)| v),
    };
    values.archiver.archive_rate = previous
        .or(loaded.as_ref())
        .and_then(|prev| rates::archive_rate(prev, &values));
    let snap_id: i64 = sqlx::query("SELECT nextval('sn_stat_snapshot_seq')")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    // Bound as jsonb: the server parses the document once. As text cast to `json` in each of
    // the ~20 places the statement reads it, every `->` re-parsed the whole document, which
    // was most of the repository's time per snapshot (≈ 1.7 ms of 2 ms on 16, measured with
    // `pganalytics bench metrics --statements`).
    sqlx::query(&insert_statement())
        .bind(snap_id)
        .bind(server_id)
        .bind(sqlx::types::Json(&values))
        .bind(values.collected_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| Error::internal(format!("store snapshot {snap_id}: {e}")))?;
    sqlx::query(
        "INSERT INTO sn_collection_status (server_id, last_attempt_at, last_success_at, last_snap_id, consecutive_failures)
         VALUES ($1, now(), now(), $2, 0)
         ON CONFLICT (server_id) DO UPDATE SET last_attempt_at = now(), last_success_at = now(),
             last_snap_id = $2, last_error_code = NULL, last_error_message = NULL,
             last_error_hint = NULL, consecutive_failures = 0",
    )
    .bind(server_id)
    .bind(snap_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((snap_id, values))
}

async fn record_failure(pool: &PgPool, server_id: uuid::Uuid, err: &Error) -> anyhow::Result<()> {
    let code = serde_json::to_value(err.code)?
        .as_str()
        .unwrap_or("internal")
        .to_string();
    sqlx::query(
        "INSERT INTO sn_collection_status (server_id, last_attempt_at, last_error_code, last_error_message, last_error_hint, consecutive_failures)
         VALUES ($1, now(), $2, $3, $4, 1)
         ON CONFLICT (server_id) DO UPDATE SET last_attempt_at = now(), last_error_code = $2,
             last_error_message = $3, last_error_hint = $4,
             consecutive_failures = sn_collection_status.consecutive_failures + 1",
    )
    .bind(server_id)
    .bind(code)
    .bind(&err.message)
    .bind(&err.hint)
    .execute(pool)
    .await
    .context("record the collection failure")?;
    Ok(())
}
