//! `backup prune`: remove a server's expired backups — their objects, then mark the row
//! `deleted` (the row stays as history). Completed backups go when they are beyond the newest
//! `--keep-full N` or older than `--keep-days D` (default: each backup's own
//! `retention_days`); failed ones (their partial objects) always go. The newest good backup
//! — completed and not found damaged by its last verification (else the newest completed) —
//! is never removed, whatever the options say.

use super::record;
use crate::api::{BackupPruneRequest, BackupPruneResult, BackupStatus, PrunedBackup};
use crate::error::{Error, Result};
use crate::repository::Repository;
use crate::storage::layout;

pub async fn prune(repo: &Repository, req: &BackupPruneRequest) -> Result<BackupPruneResult> {
    if req.keep_full == Some(0) {
        return Err(Error::invalid_input("--keep-full must be at least 1")
            .with_hint("the newest good backup is always kept"));
    }
    let dry_run = req.dry_run.unwrap_or(false);
    let all = record::list(
        repo,
        &crate::api::BackupListRequest {
            server: Some(req.server.clone()),
            include_deleted: Some(false),
        },
    )
    .await?;
    let now = chrono::Utc::now();
    let completed = |b: &&crate::api::BackupSummary| b.status == BackupStatus::Completed;
    let damaged = |b: &&crate::api::BackupSummary| b.verified_at.is_some() && !b.verified;
    let protected = all
        .iter()
        .filter(completed)
        .find(|b| !damaged(b))
        .or_else(|| all.iter().find(completed))
        .map(|b| b.id);
    let mut removed = Vec::new();
    let mut kept = 0;
    let mut completed_seen = 0u32;
    for b in &all {
        let reason = match b.status {
            BackupStatus::Running | BackupStatus::Deleted => continue,
            BackupStatus::Failed => Some("failed: its partial objects go".to_string()),
            BackupStatus::Completed => {
                completed_seen += 1;
                let age_days = b
                    .completed_at
                    .map(|c| (now - c).num_seconds() as f64 / 86_400.0)
                    .unwrap_or(0.0);
                let keep_days = req
                    .keep_days
                    .map(|d| d as f64)
                    .unwrap_or(b.retention_days as f64);
                if Some(b.id) == protected {
                    None // the newest good backup stays
                } else if req.keep_full.is_some_and(|n| completed_seen > n) {
                    Some(format!(
                        "beyond the newest {}",
                        req.keep_full.unwrap_or_default()
                    ))
                } else if age_days > keep_days {
                    Some(format!("older than {keep_days} days"))
                } else {
                    None
                }
            }
        };
        let confirmed = req.only.as_ref().is_none_or(|ids| ids.contains(&b.id));
        let Some(reason) = reason.filter(|_| confirmed) else {
            if b.status == BackupStatus::Completed {
                kept += 1;
            }
            continue;
        };
        let objects_removed = if dry_run {
            0
        } else {
            remove_objects(repo, b).await?
        };
        if !dry_run {
            record::mark_deleted(repo, b.id).await?;
        }
        removed.push(PrunedBackup {
            id: b.id,
            name: b.name.clone(),
            status: b.status,
            completed_at: b.completed_at,
            reason,
            objects_removed,
        });
    }
    Ok(BackupPruneResult {
        dry_run,
        removed,
        kept,
    })
}

/// Delete the backup's folder in its store; the count of objects that were there.
async fn remove_objects(repo: &Repository, b: &crate::api::BackupSummary) -> Result<u64> {
    let Some(storage_id) = record::storage_id(repo, b.id).await? else {
        return Ok(0);
    };
    let Some(sysid) = b.system_identifier.as_deref().and_then(|s| s.parse().ok()) else {
        return Ok(0);
    };
    let (_, target) = crate::storage::open_by_id(repo, storage_id).await?;
    let dir = layout::backup_dir(sysid, b.id);
    let entries = target
        .op
        .list_with(&dir)
        .recursive(true)
        .await
        .map_err(|e| target.error("list", &dir, &e))?;
    let count = entries.iter().filter(|e| !e.path().ends_with('/')).count() as u64;
    target
        .op
        .delete_with(&dir)
        .recursive(true)
        .await
        .map_err(|e| target.error("delete", &dir, &e))?;
    Ok(count)
}
