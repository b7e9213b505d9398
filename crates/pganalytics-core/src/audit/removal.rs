//! The two sanctioned removals: retention (events older than the policy, after a signed seal)
//! and GDPR erasure (one subject's personal fields; the chain still verifies).

use super::*;

impl AuditLog {
    /// GDPR erasure of one subject's personal fields; the chain still verifies.
    pub async fn erase_subject(&self, actor: Uuid) -> Result<AuditErased> {
        self.sync().await?;
        let erased: i64 = sqlx::query_scalar("SELECT audit_erase_subject($1)")
            .bind(actor)
            .fetch_one(&self.pool)
            .await?;
        self.actors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, id| *id != actor);
        Ok(AuditErased {
            actor_id: actor,
            events_erased: erased,
        })
    }

    /// Seal the events older than the policy's retention and delete them.
    pub async fn apply_retention(&self, dry_run: bool) -> Result<AuditRetentionResult> {
        let policy = retention_policy(&self.pool).await?.ok_or_else(no_policy)?;
        let cutoff = chrono::Utc::now() - chrono::Duration::days(policy.retention_days as i64);
        self.apply_retention_before(cutoff, dry_run).await
    }

    /// Seal and delete the events created before `cutoff` (the policy must allow deletion).
    pub async fn apply_retention_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        dry_run: bool,
    ) -> Result<AuditRetentionResult> {
        let policy = retention_policy(&self.pool).await?.ok_or_else(|| {
            Error::not_found("no audit retention policy is set").with_hint(
                "set one with `pganalytics audit retention set --days N --allow-deletion`",
            )
        })?;
        if !policy.deletion_allowed && !dry_run {
            return Err(
                Error::invalid_input("the retention policy does not allow deletion")
                    .with_hint("`pganalytics audit retention set --days N --allow-deletion`"),
            );
        }
        self.sync().await?;
        // The removed range is a prefix: up to the last event before the first young one.
        let through: Option<i64> = sqlx::query_scalar(
            "SELECT max(id) FROM audit_logs WHERE id < COALESCE(
                 (SELECT min(id) FROM audit_logs WHERE created_at >= $1),
                 (SELECT max(id) + 1 FROM audit_logs))",
        )
        .bind(cutoff)
        .fetch_one(&self.pool)
        .await?;
        let Some(through) = through else {
            return Ok(AuditRetentionResult {
                through_id: None,
                removed: 0,
                dry_run,
                seal: None,
            });
        };
        let already: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_logs WHERE id <= $1")
            .bind(through)
            .fetch_one(&self.pool)
            .await?;
        if dry_run {
            return Ok(AuditRetentionResult {
                through_id: Some(through),
                removed: already,
                dry_run,
                seal: None,
            });
        }
        let mut conn = self.pool.acquire().await?;
        // A checkpoint of the whole log first, so the remaining events stay covered.
        self.sealer.checkpoint(&mut conn, None).await?;
        let sealed = self.sealer.checkpoint(&mut conn, Some(through)).await?;
        let removed: i64 = sqlx::query_scalar("SELECT audit_apply_retention($1)")
            .bind(through)
            .fetch_one(&mut *conn)
            .await?;
        Ok(AuditRetentionResult {
            through_id: Some(through),
            removed,
            dry_run,
            seal: sealed.map(|s| self.info_of(&s.statement)),
        })
    }
}

fn no_policy() -> Error {
    Error::not_found("no audit retention policy is set")
        .with_hint("set one with `pganalytics audit retention set --days N --allow-deletion`")
}

pub async fn retention_policy(pool: &PgPool) -> Result<Option<AuditRetentionPolicy>> {
    let row = sqlx::query(
        "SELECT retention_days, archive_after_days, COALESCE(deletion_allowed, false) AS d,
                compliance_framework, created_at
         FROM audit_log_retention_policy ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(AuditRetentionPolicy {
            retention_days: r.try_get("retention_days")?,
            archive_after_days: r.try_get("archive_after_days")?,
            deletion_allowed: r.try_get("d")?,
            compliance_framework: r.try_get("compliance_framework")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .transpose()
}

pub async fn set_retention(
    pool: &PgPool,
    req: &AuditRetentionSetRequest,
) -> Result<AuditRetentionPolicy> {
    if req.retention_days < 1 {
        return Err(Error::invalid_input("retention must be at least 1 day"));
    }
    if let Some(f) = &req.compliance_framework {
        if !["GDPR", "HIPAA", "SOX", "PCI-DSS"].contains(&f.as_str()) {
            return Err(
                Error::invalid_input(format!("unknown compliance framework `{f}`"))
                    .with_hint("use GDPR, HIPAA, SOX or PCI-DSS"),
            );
        }
    }
    sqlx::query(
        "INSERT INTO audit_log_retention_policy (retention_days, archive_after_days,
             deletion_allowed, compliance_framework, created_at) VALUES ($1, $2, $3, $4, now())",
    )
    .bind(req.retention_days)
    .bind(req.archive_after_days)
    .bind(req.deletion_allowed.unwrap_or(false))
    .bind(&req.compliance_framework)
    .execute(pool)
    .await
    .map_err(|e| Error::invalid_input(format!("the retention policy was refused: {e}")))?;
    retention_policy(pool)
        .await?
        .ok_or_else(|| Error::internal("the retention policy just written is gone"))
}
