//! Reading snapshots back from the repository: the newest one in full, a window of counters for
//! rates, the collection status; and `metrics show`'s report built from them.

use super::{advice, rates};
use crate::api::{CollectionStatus, MetricsReport, SnapshotValues};
use crate::error::{Error, ErrorCode, Result};
use crate::repository::Repository;
use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;
use sqlx::Row;

/// Which snapshots of a server to load.
pub enum Window {
    /// Only the newest.
    Latest,
    /// Every snapshot taken at or after this instant, oldest first.
    Since(DateTime<Utc>),
}

/// Rebuild [`SnapshotValues`] documents from the tables (the reverse of the snapshot insert).
/// Without `full`, only the counters rates need (no I/O, replication or slot rows).
const LOAD: &str = "SELECT s.snap_id, json_build_object(
    'server_version_num', s.server_version_num, 'collected_at', s.timestamp,
    'in_recovery', coalesce(s.in_recovery, false), 'postmaster_start_time', s.postmaster_start_time,
    'current_wal_lsn', s.current_wal_lsn, 'wal_segment_size', s.wal_segment_size,
    'settings', coalesce(s.settings, '{}'::jsonb),
    'bgwriter', coalesce((SELECT to_json(b) FROM sn_stat_bgwriter b WHERE b.snap_id = s.snap_id), '{}'::json),
    'archiver', coalesce((SELECT to_json(a) FROM sn_stat_archiver a WHERE a.snap_id = s.snap_id), '{}'::json),
    'wal', (SELECT to_json(w) FROM sn_stat_wal w WHERE w.snap_id = s.snap_id),
    'io', CASE WHEN $4 AND s.server_version_num >= 160000 THEN coalesce(
        (SELECT json_agg(i ORDER BY i.backend_type, i.object, i.context) FROM sn_stat_io i WHERE i.snap_id = s.snap_id),
        '[]'::json) END,
    'replication', CASE WHEN $4 THEN coalesce((SELECT json_agg(to_jsonb(r) || jsonb_build_object(
            'client_addr', host(r.client_addr), 'usesysid', r.usesysid::bigint,
            'write_lag', extract(epoch FROM r.write_lag), 'flush_lag', extract(epoch FROM r.flush_lag),
            'replay_lag', extract(epoch FROM r.replay_lag), 'lag_bytes', r.lag_bytes::bigint)
          ORDER BY r.application_name, r.pid)
        FROM sn_stat_replication r WHERE r.snap_id = s.snap_id), '[]'::json) ELSE '[]'::json END,
    'wal_receiver', CASE WHEN $4 THEN (SELECT to_json(x) FROM sn_stat_wal_receiver x WHERE x.snap_id = s.snap_id) END,
    'slots', CASE WHEN $4 THEN coalesce((SELECT json_agg(l ORDER BY l.slot_name)
        FROM sn_stat_replication_slots l WHERE l.snap_id = s.snap_id), '[]'::json) ELSE '[]'::json END
    )::text AS doc
  FROM sn_snapshot s
  WHERE s.server_id = $1 AND ($2::timestamptz IS NULL OR s.timestamp >= $2)
  ORDER BY s.timestamp DESC, s.snap_id DESC
  LIMIT $3";

/// Snapshots of `server_id` (oldest first) as `(snap_id, values)`.
pub async fn load(
    conn: &mut PgConnection,
    server_id: uuid::Uuid,
    window: Window,
    full: bool,
) -> Result<Vec<(i64, SnapshotValues)>> {
    let (since, limit): (Option<DateTime<Utc>>, i64) = match window {
        Window::Latest => (None, 1),
        // A day at 15 s is 5,760; the limit only guards against a runaway window.
        Window::Since(t) => (Some(t), 100_000),
    };
    let rows = sqlx::query(LOAD)
        .bind(server_id)
        .bind(since)
        .bind(limit)
        .bind(full)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows.iter().rev() {
        let snap_id: i64 = row.try_get(0)?;
        let doc: String = row.try_get(1)?;
        let values: SnapshotValues = serde_json::from_str(&doc)
            .with_context(|| format!("read snapshot {snap_id} from the repository"))?;
        out.push((snap_id, values));
    }
    Ok(out)
}

pub async fn status(conn: &mut PgConnection, server_id: uuid::Uuid) -> Result<CollectionStatus> {
    let row = sqlx::query(
        "SELECT last_attempt_at, last_success_at, last_snap_id, last_error_code,
                last_error_message, last_error_hint, consecutive_failures
         FROM sn_collection_status WHERE server_id = $1",
    )
    .bind(server_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(CollectionStatus::default());
    };
    let code: Option<String> = row.try_get("last_error_code")?;
    let message: Option<String> = row.try_get("last_error_message")?;
    let last_error = match (code, message) {
        (Some(code), Some(message)) => Some(Error {
            code: serde_json::from_value(serde_json::Value::String(code))
                .unwrap_or(ErrorCode::Internal),
            message,
            hint: row.try_get("last_error_hint")?,
        }),
        _ => None,
    };
    Ok(CollectionStatus {
        last_attempt_at: row.try_get("last_attempt_at")?,
        last_success_at: row.try_get("last_success_at")?,
        last_snap_id: row.try_get("last_snap_id")?,
        last_error,
        consecutive_failures: row.try_get("consecutive_failures")?,
    })
}

/// `metrics show`: the newest values, rates and advice over the window, and the status.
pub async fn show(
    repo: &Repository,
    name: &str,
    since: std::time::Duration,
) -> Result<MetricsReport> {
    let server_id = crate::server::id_of(repo, name).await?;
    let since = chrono::Duration::from_std(since)
        .ok()
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .ok_or_else(|| Error::invalid_input("the --since window is too long"))?;
    let mut conn = repo.pool().acquire().await?;
    let latest = load(&mut conn, server_id, Window::Latest, true)
        .await?
        .pop();
    let window = load(&mut conn, server_id, Window::Since(since), false).await?;
    let status = status(&mut conn, server_id).await?;
    let rates = rates::over(&window.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>());
    let advice = match &latest {
        Some((_, v)) => advice::advise(v, &window, &rates),
        None => Vec::new(),
    };
    Ok(MetricsReport {
        server: name.to_string(),
        latest_snap_id: latest.as_ref().map(|(id, _)| *id),
        latest: latest.map(|(_, v)| v),
        since,
        snapshots_in_window: i32::try_from(window.len()).unwrap_or(i32::MAX),
        rates,
        advice,
        status,
    })
}
