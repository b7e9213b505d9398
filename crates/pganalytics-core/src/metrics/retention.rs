//! Snapshot retention: deleting old `sn_snapshot` rows removes their `sn_stat_*` rows too
//! (`ON DELETE CASCADE`).

use crate::api::PruneResult;
use crate::error::{Error, Result};
use crate::repository::Repository;
use chrono::Utc;
use std::time::Duration;

/// Delete snapshots older than `keep` (of one server, or all).
pub async fn prune(repo: &Repository, keep: Duration, server: Option<&str>) -> Result<PruneResult> {
    let server_id = match server {
        Some(name) => Some(crate::server::id_of(repo, name).await?),
        None => None,
    };
    let cutoff = chrono::Duration::from_std(keep)
        .ok()
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .ok_or_else(|| Error::invalid_input("the retention period is too long"))?;
    let deleted = sqlx::query(
        "DELETE FROM sn_snapshot WHERE timestamp < $1 AND ($2::uuid IS NULL OR server_id = $2)",
    )
    .bind(cutoff)
    .bind(server_id)
    .execute(repo.pool())
    .await?
    .rows_affected();
    Ok(PruneResult {
        deleted_snapshots: i64::try_from(deleted).unwrap_or(i64::MAX),
        cutoff,
    })
}
