//! The pgAnalytics desktop app: a thin shell around the core.
//!
//! One window shows `ui/dist`. Every UI call goes through the single `rpc` command to
//! [`Api::dispatch`], so the desktop app has no behaviour of its own. The repository (the
//! embedded cluster, whose first start runs initdb) opens in the background: the window renders
//! at once, and `rpc` calls wait until the repository is ready or report why it could not open.
//! The one plugin is the dialog plugin, for native folder pickers (the Restore wizard).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use pganalytics_core::api::{Api, ApiOptions};
use pganalytics_core::{Error, ErrorCode};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tauri::Manager;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

/// Where opening the repository has got to.
#[derive(Clone)]
enum Repo {
    Starting,
    Ready(Arc<Api>),
    Failed(Error),
}

/// Tauri managed state.
struct Shell {
    repo: watch::Sender<Repo>,
    /// `PGANALYTICS_BENCH=1`: log the UI's timing marks (see `scripts/bench-desktop`).
    bench: bool,
}

impl Shell {
    /// Open the repository in the background (the first start of the embedded cluster runs
    /// initdb and takes seconds); `rpc` calls wait for it.
    fn start_opening(&self) {
        let tx = self.repo.clone();
        let bench = self.bench;
        tauri::async_runtime::spawn(async move {
            let state = match Api::open(options_from_env()).await {
                Ok(api) => {
                    tracing::info!("repository ready");
                    // The OS user opened the console: an interactive session in the audit log.
                    if let Err(e) = api.session_started().await {
                        tracing::error!("audit: {e}");
                    }
                    if bench {
                        log_bench_mark("repository_ready");
                    }
                    Repo::Ready(Arc::new(api))
                }
                Err(err) => {
                    tracing::error!(code = ?err.code, "failed to open the repository: {err}");
                    Repo::Failed(err)
                }
            };
            tx.send_replace(state);
        });
    }

    /// The opened API, waiting for the background start if it is still running. After a
    /// failed start, each call tries again (the user may have fixed the cause meanwhile).
    async fn api(&self) -> Result<Arc<Api>, Error> {
        let retry = self.repo.send_if_modified(|r| {
            let failed = matches!(r, Repo::Failed(_));
            if failed {
                *r = Repo::Starting;
            }
            failed
        });
        if retry {
            self.start_opening();
        }
        let mut repo = self.repo.subscribe();
        let state = repo
            .wait_for(|r| !matches!(r, Repo::Starting))
            .await
            .map_err(|_| Error::internal("the repository start-up task ended without a result"))?;
        match &*state {
            Repo::Ready(api) => Ok(api.clone()),
            Repo::Failed(err) => Err(err.clone()),
            Repo::Starting => unreachable!("wait_for returned while starting"),
        }
    }
}

/// Run one core API command. `args` is the command's request as JSON (`null` for none); the
/// error is the core's `{code, message, hint?}`.
#[tauri::command]
async fn rpc(shell: tauri::State<'_, Shell>, command: String, args: Value) -> Result<Value, Error> {
    if command == "version" {
        // The build's version needs no repository: show it while the repository starts.
        return serde_json::to_value(pganalytics_core::api::version_info())
            .map_err(|e| Error::internal(format!("serialize version: {e}")));
    }
    let api = shell.api().await?;
    // Never log `args`: a DSN may carry a password.
    let result = api.dispatch(&command, args).await;
    match &result {
        Ok(_) => tracing::debug!(command, "rpc done"),
        Err(e) => tracing::info!(command, code = ?e.code, "rpc failed: {}", e.message),
    }
    result
}

/// Where the repository start-up is, without waiting (for the status line).
#[tauri::command]
fn startup_status(shell: tauri::State<'_, Shell>) -> Value {
    match &*shell.repo.borrow() {
        Repo::Starting => serde_json::json!({ "state": "starting" }),
        Repo::Ready(_) => serde_json::json!({ "state": "ready" }),
        Repo::Failed(err) => serde_json::json!({ "state": "failed", "error": err }),
    }
}

/// The UI reports a timing mark (`script_started`, `panel_rendered`, `data_loaded`); logged on
/// stderr with the wall clock only when `PGANALYTICS_BENCH=1`, for `scripts/bench-desktop`.
#[tauri::command]
fn bench_mark(shell: tauri::State<'_, Shell>, mark: String) {
    if shell.bench {
        log_bench_mark(&mark);
    }
}

fn log_bench_mark(mark: &str) {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or_default();
    eprintln!(
        "pganalytics-bench mark={mark} unix_ms={unix_ms:.1} pid={}",
        std::process::id()
    );
}

fn options_from_env() -> ApiOptions {
    let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    ApiOptions {
        data_dir: non_empty("PGANALYTICS_DATA_DIR").map(PathBuf::from),
        repository: non_empty("PGANALYTICS_REPOSITORY"),
        source: pganalytics_core::audit::Source::Desktop,
    }
}

const NO_DISPLAY_HINT: &str = "the desktop app needs a graphical session (DISPLAY or \
     WAYLAND_DISPLAY); without one, run the headless daemon instead: `pganalytics serve`";

fn main() {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        eprintln!("error: no display available\nhint: {NO_DISPLAY_HINT}");
        std::process::exit(1);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("PGANALYTICS_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,tao=warn,wry=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let bench = std::env::var_os("PGANALYTICS_BENCH").is_some_and(|v| v == "1");
    if bench {
        log_bench_mark("main_entered");
    }
    let shell = Shell {
        repo: watch::Sender::new(Repo::Starting),
        bench,
    };

    let app = tauri::Builder::default()
        // The Restore wizard's "Choose…" (a native folder dialog; the capability allows `open`).
        .plugin(tauri_plugin_dialog::init())
        .invoke_handler(tauri::generate_handler![rpc, startup_status, bench_mark])
        .setup(move |app| {
            shell.start_opening();
            app.manage(shell);
            Ok(())
        })
        .build(tauri::generate_context!("../tauri.conf.json"));

    match app {
        Ok(app) => app.run(|app, event| {
            if let tauri::RunEvent::Exit = event {
                // Queued audit events become durable and signed before the process ends.
                let api = match &*app.state::<Shell>().repo.borrow() {
                    Repo::Ready(api) => Some(api.clone()),
                    _ => None,
                };
                if let Some(api) = api {
                    tauri::async_runtime::block_on(api.close());
                }
            }
        }),
        Err(err) => {
            let err = Error::new(
                ErrorCode::Internal,
                format!("failed to start the desktop app: {err}"),
            )
            .with_hint(NO_DISPLAY_HINT);
            eprintln!("error: {err}");
            std::process::exit(1);
        }
    }
}
