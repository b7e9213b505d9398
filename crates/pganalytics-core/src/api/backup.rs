//! The backup commands of [`Api`]. Each mutating command is an audit event with its outcome;
//! the long ones also run as jobs whose progress the desktop and the daemon read.

use super::*;
use crate::audit::NewEvent;
use crate::backup::engine::{self, Progress};
use serde_json::json;

impl Api {
    pub async fn backup_keygen(&self, req: BackupKeygenRequest) -> Result<BackupKeyInfo> {
        let event = NewEvent::new("backup.key_created", "create", "backup_key");
        let result = crate::backup::keys::keygen(&self.data_dir, &req).await;
        let event = match &result {
            Ok(k) => {
                event.new_values(json!({ "location": k.location, "fingerprint": k.fingerprint }))
            }
            Err(_) => event,
        };
        self.audited(event, result).await
    }

    /// Read-only, so not an audit event (like `backup list`).
    pub async fn backup_key_status(&self, _: Empty) -> Result<BackupKeyStatus> {
        let key = crate::backup::keys::load(&self.data_dir).await;
        let uses = crate::backup::record::key_uses(&self.repo).await?;
        let fingerprint = key.as_ref().ok().map(|k| k.fingerprint());
        let (opens, need_other_keys): (Vec<_>, Vec<_>) = uses
            .into_iter()
            .partition(|u| Some(&u.fingerprint) == fingerprint.as_ref());
        let (key, problem, hint) = match key {
            Ok(k) => (
                Some(BackupKeyInfo {
                    location: k.location().to_string(),
                    fingerprint: k.fingerprint(),
                }),
                None,
                None,
            ),
            Err(e) => (None, Some(e.message), e.hint),
        };
        Ok(BackupKeyStatus {
            key,
            problem,
            hint,
            opens: opens.iter().map(|u| u.backups).sum(),
            need_other_keys,
        })
    }

    pub async fn backup_import(&self, req: BackupImportRequest) -> Result<BackupImportResult> {
        let event = NewEvent::new("backup.imported", "import", "storage_target")
            .resource(req.storage.clone());
        let explicit = req.public_key.as_deref().map(std::path::Path::new);
        let result = match self.audit.public_key(&self.data_dir, explicit).await {
            Ok(key) => crate::backup::import::import(&self.repo, &key, &req).await,
            Err(e) => Err(Error::new(
                e.code,
                format!(
                    "no public key to check the backup catalogues' signatures with: {}",
                    e.message
                ),
            )
            .with_hint(e.hint.unwrap_or_else(|| {
                "give the public key of the installation that made the backups with --public-key FILE".into()
            }))),
        };
        let event = match &result {
            Ok(r) => {
                let mut event = event.changes(json!({
                    "imported": r.imported.iter().map(|b| b.id).collect::<Vec<_>>(),
                    "already_recorded": r.already_recorded,
                    "refused": r.refused,
                }));
                if !r.refused.is_empty() {
                    event.outcome = AuditOutcome::Failure;
                }
                event
            }
            Err(_) => event,
        };
        self.audited(event, result).await
    }

    pub async fn backup_run(&self, req: BackupRunRequest) -> Result<BackupSummary> {
        self.backup_run_with(req, &Progress::none()).await
    }

    /// `backup_run` reporting bytes done and the server's estimate (the CLI's progress line).
    pub async fn backup_run_with(
        &self,
        req: BackupRunRequest,
        progress: &Progress,
    ) -> Result<BackupSummary> {
        let event =
            NewEvent::new("backup.created", "backup", "server").resource(req.server.clone());
        let signer = self.audit.signing_key().await;
        let result = match signer {
            Ok(signer) => engine::run(&self.repo, &self.data_dir, signer, &req, progress).await,
            Err(e) => Err(Error::new(
                e.code,
                "backups are signed with the installation's signing key, and there is none yet",
            )
            .with_hint("create it with `pganalytics audit keygen` (it also signs the audit log)")),
        };
        let event = match &result {
            Ok(b) => event.new_values(backup_event_values(b)),
            Err(_) => event.changes(
                json!({ "storage": req.storage, "compress": req.compress, "encrypt": req.encrypt }),
            ),
        };
        self.audited(event, result).await
    }

    pub async fn backup_start(&self, req: BackupRunRequest) -> Result<JobId> {
        Ok(
            self.byte_job("backup_run", move |api, progress| async move {
                api.backup_run_with(req, &progress).await
            }),
        )
    }

    /// Run `body` as a job whose progress is bytes done of the server's (or catalogue's)
    /// total; its result is the job's result.
    fn byte_job<T, F, Fut>(&self, kind: &str, body: F) -> JobId
    where
        T: serde::Serialize,
        F: FnOnce(Api, Progress) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let api = self.clone();
        let id = self.jobs.spawn(kind, move |job| async move {
            let progress = Progress::new(move |done, total| job.set(done, total.unwrap_or(0)));
            let value = body(api, progress).await?;
            serde_json::to_value(value)
                .map_err(|e| Error::internal(format!("serialize a job result: {e}")))
        });
        JobId { id }
    }

    pub async fn backup_list(&self, req: BackupListRequest) -> Result<Vec<BackupSummary>> {
        crate::backup::record::list(&self.repo, &req).await
    }

    pub async fn backup_show(&self, req: BackupId) -> Result<BackupDetail> {
        crate::backup::record::detail(&self.repo, req.id).await
    }

    pub async fn backup_verify(&self, req: BackupVerifyRequest) -> Result<BackupVerification> {
        self.backup_verify_with(req, &Progress::none()).await
    }

    pub async fn backup_verify_with(
        &self,
        req: BackupVerifyRequest,
        progress: &Progress,
    ) -> Result<BackupVerification> {
        let event =
            NewEvent::new("backup.verified", "verify", "backup").resource(req.id.to_string());
        let public_key = self.audit.public_key(&self.data_dir, None).await;
        // Without the signing key (a machine holding only the public key) the verdict is kept
        // in the repository only.
        let signer = self.audit.signing_key().await.ok();
        let result = crate::backup::verify::verify(
            &self.repo,
            &self.data_dir,
            public_key,
            signer,
            &req,
            progress,
        )
        .await;
        let event = match &result {
            Ok(v) => {
                let mut event = event.changes(json!({
                    "intact": v.intact,
                    "objects_checked": v.objects_checked,
                    "problems": v.problems.iter().take(5).collect::<Vec<_>>(),
                    "restore_test_seconds": v.restore_test_seconds,
                }));
                if !v.intact {
                    event.outcome = AuditOutcome::Failure;
                }
                event
            }
            Err(_) => event,
        };
        self.audited(event, result).await
    }

    pub async fn backup_verify_start(&self, req: BackupVerifyRequest) -> Result<JobId> {
        Ok(
            self.byte_job("backup_verify", move |api, progress| async move {
                api.backup_verify_with(req, &progress).await
            }),
        )
    }

    pub async fn backup_restore(&self, req: BackupRestoreRequest) -> Result<RestoreSummary> {
        self.backup_restore_with(req, &Progress::none()).await
    }

    pub async fn backup_restore_with(
        &self,
        req: BackupRestoreRequest,
        progress: &Progress,
    ) -> Result<RestoreSummary> {
        let event =
            NewEvent::new("backup.restored", "restore", "backup").resource(req.id.to_string());
        let public_key = self.audit.public_key(&self.data_dir, None).await;
        let result =
            crate::backup::restore::restore(&self.repo, &self.data_dir, public_key, &req, progress)
                .await;
        let event = match &result {
            Ok(r) => event.new_values(json!({
                "restore_id": r.id,
                "target_dir": r.target_dir,
                "duration_seconds": r.duration_seconds,
                "started_port": r.started_port,
            })),
            Err(_) => event.changes(json!({ "target_dir": req.target_dir })),
        };
        self.audited(event, result).await
    }

    pub async fn backup_restore_start(&self, req: BackupRestoreRequest) -> Result<JobId> {
        Ok(
            self.byte_job("backup_restore", move |api, progress| async move {
                api.backup_restore_with(req, &progress).await
            }),
        )
    }

    pub async fn backup_prune(&self, req: BackupPruneRequest) -> Result<BackupPruneResult> {
        let dry_run = req.dry_run.unwrap_or(false);
        let result = crate::backup::prune::prune(&self.repo, &req).await;
        if dry_run {
            return result;
        }
        let event = NewEvent::new("backup.pruned", "delete", "server").resource(req.server.clone());
        let event = match &result {
            Ok(r) => event.old(json!({ "removed": r.removed })),
            Err(_) => {
                event.changes(json!({ "keep_full": req.keep_full, "keep_days": req.keep_days }))
            }
        };
        self.audited(event, result).await
    }
}

/// What the audit log keeps of a backup.
fn backup_event_values(b: &BackupSummary) -> serde_json::Value {
    json!({
        "backup_id": b.id,
        "storage": b.storage,
        "destination": b.destination,
        "source_size_bytes": b.source_size_bytes,
        "stored_size_bytes": b.stored_size_bytes,
        "compression": b.compression,
        "encrypted": b.encrypted,
        "checksum": b.checksum,
        "start_lsn": b.start_lsn,
        "stop_lsn": b.stop_lsn,
    })
}
