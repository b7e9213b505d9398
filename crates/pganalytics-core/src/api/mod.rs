//! The one surface the three shells call. Each operation is an `async fn` on [`Api`] taking a
//! typed request and returning a typed response; [`commands!`] lists them once, and from that
//! list come the JSON dispatcher used by the desktop IPC ([`Api::dispatch`]) and the
//! TypeScript bindings in `ui/src/generated/` ([`export_typescript`]).

mod audit;
mod audit_types;
mod backup;
mod backup_types;
mod storage_types;
mod types;

pub use audit_types::*;
pub use backup_types::*;
pub use storage_types::*;
pub use types::*;

use crate::audit::{AuditLog, Caller, NewEvent, Source};
use crate::data_dir::DataDir;
use crate::error::{Error, Result};
use crate::jobs::Jobs;
use crate::repository::Repository;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the state lives; both fields follow the global `--data-dir` / `--repository` options.
#[derive(Debug, Clone, Default)]
pub struct ApiOptions {
    pub data_dir: Option<PathBuf>,
    /// URI of an external repository database; overrides the config file.
    pub repository: Option<String>,
    /// Which shell acts (recorded in every audit event).
    pub source: Source,
}

/// An opened pgAnalytics: the data directory, a migrated repository, the audit log's writer,
/// and who is calling. Cloning is cheap; [`Api::with_caller`] gives the daemon one per request.
#[derive(Clone)]
pub struct Api {
    data_dir: DataDir,
    repo: Repository,
    audit: Arc<AuditLog>,
    jobs: Jobs,
    caller: Caller,
}

impl Api {
    /// Resolve the data directory, open (or create and start) the repository, apply migrations.
    pub async fn open(options: ApiOptions) -> Result<Api> {
        let data_dir = DataDir::resolve(options.data_dir.as_deref())?;
        data_dir.ensure()?;
        let config = data_dir.load_config()?;
        let uri = options.repository.or(config.repository);
        let repo = Repository::open(&data_dir, uri.as_deref()).await?;
        let audit = AuditLog::open(&repo, &data_dir, &config.audit).await?;
        Ok(Api {
            data_dir,
            repo,
            audit: Arc::new(audit),
            jobs: Jobs::default(),
            caller: Caller::local(options.source),
        })
    }

    /// The same Api acting for another caller (the daemon: the token's actor, its address).
    pub fn with_caller(&self, caller: Caller) -> Api {
        Api {
            caller,
            ..self.clone()
        }
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// Make every audit event durable and signed, then close the repository's connections.
    pub async fn close(&self) {
        if let Err(e) = self.audit.flush().await {
            tracing::error!("audit events could not be made durable: {}", e.message);
        }
        self.repo.close().await;
    }

    /// Record what a mutating command did (success or failure) and wait until it is durable:
    /// the command does not report success for an action the log does not hold.
    async fn audited<T>(&self, event: NewEvent, result: Result<T>) -> Result<T> {
        let event = event.outcome_of(&result);
        if let Err(e) = self.audit.log_durable(&self.caller, event).await {
            return match result {
                Ok(_) => Err(Error::new(
                    e.code,
                    format!("the action was done but could not be recorded in the audit log: {}", e.message),
                )
                .with_hint("check the repository database; `pganalytics audit verify` shows the log's state")),
                Err(original) => Err(original),
            };
        }
        result
    }

    /// Record a read or a minor event without waiting (it is durable within milliseconds).
    async fn noted(&self, event: NewEvent) {
        if let Err(e) = self.audit.log(&self.caller, event).await {
            tracing::error!("audit event not recorded: {}", e.message);
        }
    }

    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }

    pub async fn version(&self, _req: Empty) -> Result<VersionInfo> {
        Ok(version_info())
    }

    pub async fn repo_status(&self, _req: Empty) -> Result<RepoStatus> {
        self.repo.status(&self.data_dir).await
    }

    pub async fn server_list(&self, _req: Empty) -> Result<Vec<ServerSummary>> {
        crate::server::list(&self.repo).await
    }

    pub async fn server_add(&self, req: ServerAddRequest) -> Result<ServerSummary> {
        let event = NewEvent::new("server.added", "create", "server").resource(req.name.clone());
        let result = crate::server::add(&self.repo, req).await;
        let event = match &result {
            Ok(s) => event.new_values(serde_json::json!({ "name": s.name, "dsn": s.dsn })),
            Err(_) => event,
        };
        self.audited(event, result).await
    }

    pub async fn server_remove(&self, req: ServerName) -> Result<ServerSummary> {
        let event = NewEvent::new("server.removed", "delete", "server").resource(req.name.clone());
        let result = crate::server::remove(&self.repo, &req.name).await;
        let event = match &result {
            Ok(s) => event.old(serde_json::json!({ "name": s.name, "dsn": s.dsn })),
            Err(_) => event,
        };
        self.audited(event, result).await
    }

    pub async fn server_check(&self, req: ServerName) -> Result<ServerCheck> {
        crate::server::check(&self.repo, &req.name).await
    }

    pub async fn storage_list(&self, _req: Empty) -> Result<Vec<StorageTarget>> {
        crate::storage::list(&self.repo).await
    }

    pub async fn storage_add(&self, req: StorageAddRequest) -> Result<StorageTarget> {
        let event =
            NewEvent::new("storage.added", "create", "storage_target").resource(req.name.clone());
        let result = crate::storage::add(&self.repo, req).await;
        let event = match &result {
            Ok(t) => event.new_values(storage_event_values(t)),
            Err(_) => event,
        };
        self.audited(event, result).await
    }

    pub async fn storage_remove(&self, req: StorageName) -> Result<StorageTarget> {
        let event =
            NewEvent::new("storage.removed", "delete", "storage_target").resource(req.name.clone());
        let result = crate::storage::remove(&self.repo, &req.name).await;
        let event = match &result {
            Ok(t) => event.old(storage_event_values(t)),
            Err(_) => event,
        };
        self.audited(event, result).await
    }

    pub async fn storage_check(&self, req: StorageName) -> Result<StorageCheck> {
        crate::storage::check(&self.repo, &req.name).await
    }

    pub async fn token_create(&self, req: TokenCreateRequest) -> Result<CreatedToken> {
        let event =
            NewEvent::new("token.created", "create", "api_token").resource(req.name.clone());
        let result = crate::token::create(&self.repo, &req.name).await;
        self.audited(event, result).await
    }

    pub async fn token_list(&self, _req: Empty) -> Result<Vec<TokenSummary>> {
        crate::token::list(&self.repo).await
    }

    /// Read every statistics view of a server and store one snapshot.
    pub async fn metrics_snapshot(&self, req: MetricsSnapshotRequest) -> Result<SnapshotResult> {
        let mut collector = crate::metrics::Collector::new(&self.repo, &req.server).await?;
        let result = collector.snapshot(&self.repo).await;
        collector.close().await;
        result
    }

    /// A collector that keeps its connection between snapshots (`metrics collect`, daemon).
    pub async fn metrics_collector(&self, server: &str) -> Result<crate::metrics::Collector> {
        crate::metrics::Collector::new(&self.repo, server).await
    }

    /// Latest values, rates and advice over a window, and the collection status.
    pub async fn metrics_show(&self, req: MetricsShowRequest) -> Result<MetricsReport> {
        let since = match req.since.as_deref() {
            Some(text) => crate::metrics::parse_duration(text)?,
            None => std::time::Duration::from_secs(3600),
        };
        crate::metrics::report::show(&self.repo, &req.server, since).await
    }

    /// Charts of a server's engine metrics over a window (SVG drawn by the core), with advice
    /// and the collection status.
    pub async fn metrics_charts(&self, req: MetricsChartsRequest) -> Result<EngineCharts> {
        let since = match req.since.as_deref() {
            Some(text) => crate::metrics::parse_duration(text)?,
            None => std::time::Duration::from_secs(3600),
        };
        crate::charts::engine(
            &self.repo,
            &req.server,
            since,
            req.utc_offset_minutes.unwrap_or(0),
        )
        .await
    }

    /// Delete snapshots older than the retention period.
    pub async fn metrics_prune(&self, req: MetricsPruneRequest) -> Result<PruneResult> {
        let event = NewEvent::new("metrics.pruned", "delete", "metrics_snapshot")
            .changes(serde_json::json!({ "keep": req.keep, "server": req.server }));
        let result = async {
            let keep = crate::metrics::parse_duration(&req.keep)?;
            crate::metrics::retention::prune(&self.repo, keep, req.server.as_deref()).await
        }
        .await;
        let event = match &result {
            Ok(r) => event.changes(
                serde_json::json!({ "keep": req.keep, "server": req.server, "result": r }),
            ),
            Err(_) => event,
        };
        self.audited(event, result).await
    }

    /// Check a bearer token presented to the daemon; returns the token's name. Both outcomes
    /// are audited (a rejected token as `denied`, from the caller's address).
    pub async fn authenticate_token(&self, token: &str) -> Result<String> {
        let result = crate::token::authenticate(&self.repo, token).await;
        match &result {
            Ok(name) => {
                let api = self.with_caller(Caller {
                    actor: crate::audit::Actor::api_token(name),
                    ..self.caller.clone()
                });
                api.noted(
                    NewEvent::new("auth.token_used", "login", "api_token").resource(name.clone()),
                )
                .await;
            }
            Err(_) => {
                let api = self.with_caller(Caller {
                    actor: crate::audit::Actor::anonymous(),
                    ..self.caller.clone()
                });
                let mut event = NewEvent::new("auth.token_rejected", "login", "api_token");
                event.outcome = AuditOutcome::Denied;
                api.noted(event).await;
            }
        }
        result
    }

    /// A person started an interactive session (the desktop app).
    pub async fn session_started(&self) -> Result<()> {
        self.audited(
            NewEvent::new("auth.session_started", "login", "session"),
            Ok(()),
        )
        .await
    }
}

/// Stop the embedded repository cluster without opening the repository; `false` when it was
/// not running (or never created).
pub async fn stop_embedded_repository(data_dir: Option<&std::path::Path>) -> Result<bool> {
    let data_dir = DataDir::resolve(data_dir)?;
    crate::repository::stop_embedded(&data_dir).await
}

/// What the audit log keeps of a storage target (no credentials: it has none).
fn storage_event_values(t: &StorageTarget) -> serde_json::Value {
    serde_json::json!({
        "name": t.name,
        "kind": t.kind,
        "url": t.url,
        "options": t.options,
        "secret_in_keyring": t.secret_in_keyring,
    })
}

/// Version of this build (no repository needed).
pub fn version_info() -> VersionInfo {
    VersionInfo {
        version: crate::VERSION.to_string(),
        min_server_version_num: crate::server::MIN_SERVER_VERSION_NUM,
    }
}

/// Declares every command once. Generates [`COMMANDS`], [`Api::dispatch`] and
/// [`export_typescript`].
macro_rules! commands {
    ($( $(#[doc = $doc:literal])* $name:ident ( $req:ty ) -> $res:ty; )*) => {
        /// Names of all commands, in declaration order.
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        impl Api {
            /// Run a command named by a string with JSON arguments (desktop IPC).
            pub async fn dispatch(&self, command: &str, args: serde_json::Value) -> Result<serde_json::Value> {
                match command {
                    $(stringify!($name) => {
                        let req: $req = parse_args(command, args)?;
                        let res: $res = self.$name(req).await?;
                        serde_json::to_value(res).map_err(|e| Error::internal(format!("serialize {command} result: {e}")))
                    })*
                    other => Err(Error::invalid_input(format!("unknown command `{other}`"))),
                }
            }
        }

        /// Write the TypeScript bindings of every command's types, plus `commands.ts`, into
        /// `dir` (the `ts_bindings` test keeps `ui/src/generated/` equal to this).
        pub fn export_typescript(dir: &std::path::Path) -> Result<()> {
            use ts_rs::TypeVisitor;
            let mut exporter = TsExporter { dir, names: Vec::new(), error: None };
            exporter.visit::<Error>();
            $(
                exporter.visit::<$req>();
                exporter.visit::<$res>();
            )*
            if let Some(e) = exporter.error {
                return Err(Error::internal(format!("export TypeScript bindings: {e}")));
            }
            let mut names = exporter.names;
            names.sort();
            let mut out = String::from("// Generated from crates/pganalytics-core/src/api/mod.rs (`commands!`). Do not edit.\n");
            for t in &names {
                out.push_str(&format!("import type {{ {t} }} from \"./{t}\";\n"));
            }
            out.push_str("\nexport type { ");
            out.push_str(&names.join(", "));
            out.push_str(" };\n\n/** Every command of the core API with its request and response type. */\nexport interface Commands {\n");
            $(
                $(out.push_str(&format!("  /**{} */\n", $doc));)*
                out.push_str(&format!("  {}: {{ request: {}; response: {} }};\n",
                    stringify!($name), <$req as ts_rs::TS>::name(), <$res as ts_rs::TS>::name()));
            )*
            out.push_str("}\n");
            std::fs::write(dir.join("commands.ts"), out)
                .map_err(|e| Error::internal(format!("write commands.ts: {e}")))?;
            Ok(())
        }
    };
}

/// Exports every type it visits (and, for containers such as `Vec<T>`, the types inside).
struct TsExporter<'a> {
    dir: &'a std::path::Path,
    names: Vec<String>,
    error: Option<ts_rs::ExportError>,
}

impl ts_rs::TypeVisitor for TsExporter<'_> {
    fn visit<T: ts_rs::TS + 'static + ?Sized>(&mut self) {
        if T::output_path().is_some() {
            let ident = T::ident();
            if self.names.contains(&ident) {
                return;
            }
            self.names.push(ident);
            if let Err(e) = T::export_all_to(self.dir) {
                self.error.get_or_insert(e);
            }
        } else {
            T::visit_generics(self);
            T::visit_dependencies(self);
        }
    }
}

/// Compile-time check: the daemon and the desktop run commands on a multi-threaded runtime,
/// so every command's future must be `Send` (a non-`Send` future breaks both shells' builds
/// far from the cause).
#[allow(dead_code)]
fn dispatch_future_is_send(
    api: &Api,
) -> impl std::future::Future<Output = Result<serde_json::Value>> + Send + '_ {
    api.dispatch("", serde_json::Value::Null)
}

/// Same for opening: the desktop opens the Api on a spawned task.
#[allow(dead_code)]
fn open_future_is_send() -> impl std::future::Future<Output = Result<Api>> + Send {
    Api::open(ApiOptions::default())
}

fn parse_args<T: serde::de::DeserializeOwned>(command: &str, args: serde_json::Value) -> Result<T> {
    // The desktop sends `null` for commands without arguments.
    let args = if args.is_null() {
        serde_json::json!({})
    } else {
        args
    };
    serde_json::from_value(args)
        .map_err(|e| Error::invalid_input(format!("invalid arguments for `{command}`: {e}")))
}

commands! {
    /// Build version of the core.
    version(Empty) -> VersionInfo;
    /// Repository kind, location, server version and applied migrations.
    repo_status(Empty) -> RepoStatus;
    /// Monitored servers, by name.
    server_list(Empty) -> Vec<ServerSummary>;
    /// Register a monitored server; the DSN's password moves to the OS keyring.
    server_add(ServerAddRequest) -> ServerSummary;
    /// Forget a monitored server and its keyring entry.
    server_remove(ServerName) -> ServerSummary;
    /// Connect and report version, privileges and feature readiness.
    server_check(ServerName) -> ServerCheck;
    /// Storage targets for backups and WAL, by name (never their credentials).
    storage_list(Empty) -> Vec<StorageTarget>;
    /// Register a storage target (folder, S3, GCS, Azure Blob) after a probe; credentials
    /// stay in the environment or move to the OS keyring.
    storage_add(StorageAddRequest) -> StorageTarget;
    /// Forget a storage target and its keyring entry (its objects stay).
    storage_remove(StorageName) -> StorageTarget;
    /// Write, read back, list and delete a probe object under the target's prefix.
    storage_check(StorageName) -> StorageCheck;
    /// Create an API token for the daemon; the token is shown once.
    token_create(TokenCreateRequest) -> CreatedToken;
    /// API tokens (names and dates, never the tokens).
    token_list(Empty) -> Vec<TokenSummary>;
    /// Read a server's statistics views and store one snapshot.
    metrics_snapshot(MetricsSnapshotRequest) -> SnapshotResult;
    /// Latest engine metrics of a server, rates and advice over a window, collection status.
    metrics_show(MetricsShowRequest) -> MetricsReport;
    /// Engine charts of a server over a window (SVG), advice and collection status.
    metrics_charts(MetricsChartsRequest) -> EngineCharts;
    /// Delete engine-metric snapshots older than a retention period.
    metrics_prune(MetricsPruneRequest) -> PruneResult;
    /// Record an event sent from outside (who did what to which resource).
    audit_log_event(AuditLogRequest) -> AuditLogged;
    /// Audit events, newest first, filtered and paged.
    audit_logs(AuditLogsRequest) -> AuditPage;
    /// One audit event with its before/after values.
    audit_show(AuditEventId) -> AuditEvent;
    /// Everything one actor did (or that concerned them) in a window.
    audit_activity(AuditActivityRequest) -> Vec<AuditEvent>;
    /// Events, signing key, checkpoints and retention of the audit log.
    audit_status(Empty) -> AuditStatus;
    /// Verify the audit log against the external checkpoints with the public key.
    audit_verify(AuditVerifyRequest) -> AuditVerification;
    /// Start verification as a job; read it with `job_status`.
    audit_verify_start(AuditVerifyRequest) -> JobId;
    /// Progress and result of a long operation.
    job_status(JobId) -> JobStatus;
    /// Create the checkpoint signing key (keyring or a file) and export its public key.
    audit_keygen(AuditKeygenRequest) -> AuditKeyInfo;
    /// Write the public key that verifies the checkpoints.
    audit_export_public_key(AuditExportKeyRequest) -> AuditKeyInfo;
    /// Inclusion proof of one event in a signed checkpoint.
    audit_prove(AuditEventId) -> AuditProof;
    /// Sign a checkpoint of the audit log now.
    audit_checkpoint(Empty) -> Option<AuditCheckpointInfo>;
    /// GDPR erasure of one actor's personal fields; the log still verifies.
    audit_erase_subject(AuditEraseRequest) -> AuditErased;
    /// Set the audit retention policy.
    audit_retention_set(AuditRetentionSetRequest) -> AuditRetentionPolicy;
    /// Seal and delete audit events older than the retention policy allows.
    audit_retention_apply(AuditRetentionApplyRequest) -> AuditRetentionResult;
    /// Create the key that wraps each encrypted backup's data key (keyring or a file).
    backup_keygen(BackupKeygenRequest) -> BackupKeyInfo;
    /// Whether the backup key here opens the encrypted backups on record.
    backup_key_status(Empty) -> BackupKeyStatus;
    /// Take a full physical backup of a server into a storage target; returns when done.
    backup_run(BackupRunRequest) -> BackupSummary;
    /// Start a backup as a job (progress in bytes); read it with `job_status`.
    backup_start(BackupRunRequest) -> JobId;
    /// Backups, newest first.
    backup_list(BackupListRequest) -> Vec<BackupSummary>;
    /// One backup with its catalogue and restores.
    backup_show(BackupId) -> BackupDetail;
    /// Check every object against the signed catalogue and the server's manifest.
    backup_verify(BackupVerifyRequest) -> BackupVerification;
    /// Start verification as a job.
    backup_verify_start(BackupVerifyRequest) -> JobId;
    /// Restore a backup into an empty folder, optionally starting the server.
    backup_restore(BackupRestoreRequest) -> RestoreSummary;
    /// Start a restore as a job.
    backup_restore_start(BackupRestoreRequest) -> JobId;
    /// Remove expired backups of a server (never the last good one).
    backup_prune(BackupPruneRequest) -> BackupPruneResult;
    /// Record the backups a storage target holds, from their signed catalogues.
    backup_import(BackupImportRequest) -> BackupImportResult;
}
