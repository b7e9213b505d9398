//! The audit commands of [`Api`]. Reading the log is itself recorded (auditors ask who looked).

use super::*;
use crate::audit::{self, checkpoint::Store, Actor, NewEvent};
use crate::error::ErrorCode;
use serde_json::json;
use std::path::Path;

impl Api {
    /// Record an event sent from outside; returns its position once it is durable.
    pub async fn audit_log_event(&self, req: AuditLogRequest) -> Result<AuditLogged> {
        if req.actor.trim().is_empty() {
            return Err(Error::invalid_input(
                "the actor of an audit event cannot be empty",
            ));
        }
        let recorder = self.audit.actor_id(&self.caller.actor).await?;
        let mut changes = req.details.unwrap_or_else(|| json!({}));
        match &mut changes {
            serde_json::Value::Object(map) => {
                map.insert("recorded_by".into(), json!(recorder));
            }
            _ => {
                return Err(
                    Error::invalid_input("audit event details must be a JSON object")
                        .with_hint("pass e.g. --details '{\"ticket\": \"CHG-1234\"}'"),
                )
            }
        }
        let mut event = NewEvent::new(
            req.event_type
                .as_deref()
                .unwrap_or(&format!("external.{}", req.action)),
            &req.action,
            &req.resource_type,
        )
        .changes(changes);
        event.resource_id = req.resource_id;
        event.outcome = req.outcome.unwrap_or(AuditOutcome::Success);
        event.old_values = req.old_values;
        event.new_values = req.new_values;
        event.personal_details = req.personal_details;
        let caller = Caller {
            actor: Actor::external(&req.actor),
            ..self.caller.clone()
        };
        let (id, event_id) = self.audit.log_durable(&caller, event).await?;
        Ok(AuditLogged { id, event_id })
    }

    pub async fn audit_logs(&self, req: AuditLogsRequest) -> Result<AuditPage> {
        let result = audit::query::list(self.repo.pool(), &req).await;
        // An actor named in the filter is personal data: kept where erasure reaches it.
        let mut filter = req.clone();
        let actor = filter.actor.take();
        let mut event = NewEvent::new("audit.logs_read", "read", "audit_log")
            .changes(json!({ "filter": filter }))
            .outcome_of(&result);
        event.personal_details = actor.map(|a| json!({ "actor_filter": a }));
        self.noted(event).await;
        result
    }

    pub async fn audit_show(&self, req: AuditEventId) -> Result<AuditEvent> {
        let result = audit::query::show(self.repo.pool(), req.id).await;
        self.noted(
            NewEvent::new("audit.event_read", "read", "audit_event")
                .resource(req.id.to_string())
                .outcome_of(&result),
        )
        .await;
        result
    }

    pub async fn audit_activity(&self, req: AuditActivityRequest) -> Result<Vec<AuditEvent>> {
        let result =
            audit::query::activity(self.repo.pool(), &req.actor, req.since, req.until).await;
        let mut event = NewEvent::new("audit.activity_read", "read", "actor").outcome_of(&result);
        // A UUID is a pseudonym; a name is personal data, kept where erasure reaches it.
        match req.actor.parse::<uuid::Uuid>() {
            Ok(id) => {
                event.resource_id = Some(id.to_string());
                event.subject_id = Some(id);
            }
            Err(_) => event.personal_details = Some(json!({ "actor": req.actor })),
        }
        self.noted(event).await;
        result
    }

    pub async fn audit_status(&self, _req: Empty) -> Result<AuditStatus> {
        self.audit.status(&self.repo).await
    }

    /// Verify the log (or a range) against the external checkpoints with the public key; the
    /// result is recorded in `audit_log_verification` and as an event.
    pub async fn audit_verify(&self, req: AuditVerifyRequest) -> Result<AuditVerification> {
        self.verify_with_progress(req, &|_, _| {}).await
    }

    /// Start verification as a job (the desktop's "Verify now" shows its progress).
    pub async fn audit_verify_start(&self, req: AuditVerifyRequest) -> Result<JobId> {
        let api = self.clone();
        let id = self.jobs.spawn("audit_verify", move |progress| async move {
            let report = api
                .verify_with_progress(req, &move |done, total| progress.set(done, total))
                .await?;
            serde_json::to_value(report)
                .map_err(|e| Error::internal(format!("serialize the verification: {e}")))
        });
        Ok(JobId { id })
    }

    pub async fn job_status(&self, req: JobId) -> Result<JobStatus> {
        self.jobs.status(req.id)
    }

    async fn verify_with_progress(
        &self,
        req: AuditVerifyRequest,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<AuditVerification> {
        if let (Some(from), Some(to)) = (req.from, req.to) {
            if from > to || from < 1 {
                return Err(Error::invalid_input(format!("invalid range {from}..{to}"))
                    .with_hint("give 1 ≤ --from ≤ --to"));
            }
        }
        // Everything this process queued is part of what gets verified.
        self.audit.sync().await?;
        // Without any key (none created, none given) only the chain can be checked; the
        // report says so in its warnings.
        let key = if req.public_key.is_none() && !self.audit.has_key(&self.data_dir)? {
            None
        } else {
            Some(
                self.audit
                    .public_key(&self.data_dir, req.public_key.as_deref().map(Path::new))
                    .await?,
            )
        };
        let store = match &req.checkpoints {
            Some(dir) => Store::new(Path::new(dir), self.audit.log_id()),
            None => self.audit.store(),
        };
        let report = audit::verify::verify(
            self.repo.pool(),
            audit::verify::Request {
                from: req.from,
                to: req.to,
                key: key.as_ref(),
                store: &store,
                progress,
            },
        )
        .await?;
        sqlx::query(
            "INSERT INTO audit_log_verification (batch_id, log_count, batch_hash, verified,
                 verified_at, created_at, kind, tree_size, key_fingerprint, checked_from,
                 checked_to, first_bad_id, problem)
             VALUES ($1, $2, $3, $4, now(), now(), 'verification', $5, $6, $7, $8, $9, $10)",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(i32::try_from(report.events_checked).unwrap_or(i32::MAX))
        .bind(
            report
                .checkpoint
                .as_ref()
                .map_or(String::new(), |c| c.root_hash.clone()),
        )
        .bind(report.intact)
        .bind(report.checkpoint.as_ref().map(|c| c.tree_size))
        .bind(key.as_ref().map(|k| k.fingerprint()))
        .bind(report.checked_from)
        .bind(report.checked_to)
        .bind(report.first_bad_id)
        .bind(report.problem.map(|p| p.describe()))
        .execute(self.repo.pool())
        .await?;
        let mut event = NewEvent::new("audit.verified", "verify", "audit_log").changes(json!({
            "intact": report.intact,
            "problem": report.problem,
            "first_bad_id": report.first_bad_id,
            "events_checked": report.events_checked,
            "checked_from": report.checked_from,
            "checked_to": report.checked_to,
            "key_fingerprint": key.as_ref().map(|k| k.fingerprint()),
        }));
        if !report.intact {
            event.outcome = AuditOutcome::Failure;
        }
        self.audit.log_durable(&self.caller, event).await?;
        Ok(report)
    }

    pub async fn audit_keygen(&self, req: AuditKeygenRequest) -> Result<AuditKeyInfo> {
        let event = NewEvent::new("audit.key_created", "create", "audit_key");
        let result = async {
            let algorithm = audit::parse_algorithm(req.algorithm.as_deref())?;
            let absolute = |p: &str| -> Result<std::path::PathBuf> {
                let path = Path::new(p);
                Ok(if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    std::env::current_dir()?.join(path)
                })
            };
            let key_file = req.key_file.as_deref().map(absolute).transpose()?;
            let checkpoints = req.checkpoints.as_deref().map(absolute).transpose()?;
            self.audit
                .keygen(&self.data_dir, algorithm, key_file, checkpoints)
                .await
        }
        .await;
        let event = match &result {
            Ok(info) => event.new_values(json!({
                "algorithm": info.algorithm,
                "fingerprint": info.fingerprint,
                "checkpoints": info.checkpoints,
            })),
            Err(_) => event,
        };
        let info = self.audited(event, result).await?;
        // Sign what is already logged, so verification has a checkpoint from now on.
        self.audit.flush().await?;
        Ok(info)
    }

    /// Write the public key (PEM) where the user says.
    pub async fn audit_export_public_key(
        &self,
        req: AuditExportKeyRequest,
    ) -> Result<AuditKeyInfo> {
        let key = self.audit.public_key(&self.data_dir, None).await?;
        let pem = key
            .to_public_key_pem()
            .map_err(|e| Error::internal(format!("encode the public key: {e}")))?;
        std::fs::write(&req.out, pem).map_err(|e| {
            Error::new(
                ErrorCode::DataDirUnusable,
                format!("cannot write {}: {e}", req.out),
            )
        })?;
        let status = self.audit.status(&self.repo).await?;
        let info = AuditKeyInfo {
            algorithm: key.algorithm().to_string(),
            fingerprint: key.fingerprint(),
            private_key: self.audit.key_location().unwrap_or_default(),
            public_key_path: req.out.clone(),
            checkpoints: status.checkpoints,
        };
        self.noted(
            NewEvent::new("audit.public_key_exported", "export", "audit_key").resource(req.out),
        )
        .await;
        Ok(info)
    }

    pub async fn audit_prove(&self, req: AuditEventId) -> Result<AuditProof> {
        let key = self.audit.public_key(&self.data_dir, None).await?;
        let result = self.audit.prove(req.id, &key).await;
        self.noted(
            NewEvent::new("audit.proof_made", "read", "audit_event")
                .resource(req.id.to_string())
                .outcome_of(&result),
        )
        .await;
        result
    }

    /// Sign a checkpoint now; `None` when the newest one already covers every event.
    pub async fn audit_checkpoint(&self, _req: Empty) -> Result<Option<AuditCheckpointInfo>> {
        let result = self.audit.checkpoint().await;
        let event = NewEvent::new("audit.checkpoint_signed", "create", "audit_checkpoint");
        let event = match &result {
            Ok(Some(c)) => {
                event.changes(json!({ "tree_size": c.tree_size, "root_hash": c.root_hash }))
            }
            _ => event,
        };
        self.noted(event.outcome_of(&result)).await;
        result
    }

    pub async fn audit_erase_subject(&self, req: AuditEraseRequest) -> Result<AuditErased> {
        let ids = audit::query::resolve_actor(self.repo.pool(), &req.actor).await?;
        let actor = match ids.as_slice() {
            [id] => *id,
            [] => {
                return Err(Error::not_found(format!("no actor named `{}`", req.actor))
                    .with_hint("give the actor's id (UUID) as shown by `pganalytics audit logs`"))
            }
            _ => {
                return Err(Error::invalid_input(format!(
                    "several actors are named `{}`",
                    req.actor
                ))
                .with_hint("give the actor's id (UUID) as shown by `pganalytics audit logs`"))
            }
        };
        let result = self.audit.erase_subject(actor).await;
        let mut event =
            NewEvent::new("gdpr.subject_erased", "erase", "actor").resource(actor.to_string());
        event.subject_id = Some(actor);
        let event = match &result {
            Ok(r) => event.changes(json!({ "events_erased": r.events_erased })),
            Err(_) => event,
        };
        let erased = self.audited(event, result).await?;
        self.audit.flush().await?;
        Ok(erased)
    }

    pub async fn audit_retention_set(
        &self,
        req: AuditRetentionSetRequest,
    ) -> Result<AuditRetentionPolicy> {
        let old = audit::retention_policy(self.repo.pool()).await?;
        let result = audit::set_retention(self.repo.pool(), &req).await;
        let mut event = NewEvent::new("audit.retention_set", "update", "audit_retention_policy")
            .new_values(json!(req));
        if let Some(old) = old {
            event = event.old(json!(old));
        }
        self.audited(event, result).await
    }

    pub async fn audit_retention_apply(
        &self,
        req: AuditRetentionApplyRequest,
    ) -> Result<AuditRetentionResult> {
        let dry_run = req.dry_run.unwrap_or(false);
        let result = self.audit.apply_retention(dry_run).await;
        // A dry run changes nothing, and neither does a run with nothing old enough.
        if dry_run || matches!(&result, Ok(r) if r.removed == 0) {
            return result;
        }
        let event = NewEvent::new("audit.retention_applied", "delete", "audit_log");
        let event = match &result {
            Ok(r) => event.changes(json!({ "through_id": r.through_id, "removed": r.removed })),
            Err(_) => event,
        };
        let applied = self.audited(event, result).await?;
        self.audit.flush().await?;
        Ok(applied)
    }
}
