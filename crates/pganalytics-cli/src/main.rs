//! `pganalytics`: the headless shell over the core. Each subcommand parses its arguments,
//! calls one `Api` function and prints the result (a table, or JSON with `--json`).
//!
//! Exit status: 0 success, 1 error, 2 usage error (clap), 3 a verification found damage.

mod audit;
mod backup;
mod bench;
mod cli;
mod collect;
mod output;
mod serve;

use clap::Parser;
use cli::{
    BenchCommand, Cli, Command, ExportFormat, GrafanaCommand, MetricsCommand, RepoCommand,
    ServerCommand, StorageCommand, TokenCommand,
};
use output::Output;
use pganalytics_core::api::{
    Api, ApiOptions, Empty, MetricsPruneRequest, MetricsShowRequest, MetricsSnapshotRequest,
    ServerAddRequest, ServerName, StorageAddRequest, StorageName, StorageOptions,
    TokenCreateRequest,
};
use pganalytics_core::audit::Source;
use pganalytics_core::Error;
use std::process::ExitCode;

/// See the workspace Cargo.toml: verification allocates per event.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`pganalytics server list | head`) instead of panicking on a broken pipe.
    // SAFETY: called first in main, before any other thread exists.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Serve(_)));
    let out = Output { json: cli.json };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.error(&Error::internal(format!("start the async runtime: {e}")));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli, &out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            out.error(&err);
            ExitCode::from(err.code.exit_status() as u8)
        }
    }
}

fn init_tracing(daemon: bool) {
    let default = if daemon { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGANALYTICS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli, out: &Output) -> Result<(), Error> {
    let options = ApiOptions {
        data_dir: cli.data_dir.clone(),
        repository: cli.repository.clone(),
        source: match cli.command {
            Command::Serve(_) => Source::Daemon,
            _ => Source::Cli,
        },
    };
    // Commands that must not open (or start) the repository.
    if let Command::Repo(RepoCommand::Stop) = &cli.command {
        let stopped =
            pganalytics_core::api::stop_embedded_repository(options.data_dir.as_deref()).await?;
        out.message(if stopped {
            "embedded repository cluster stopped"
        } else {
            "embedded repository cluster was not running"
        });
        return Ok(());
    }
    if let Command::Grafana(GrafanaCommand::Export { out: dir }) = &cli.command {
        // Files generated from code: no repository needed.
        out.paths(&pganalytics_core::grafana::export(dir)?);
        return Ok(());
    }
    if let Command::Bench(BenchCommand::Metrics(args)) = cli.command {
        // Starts its own server and repository database.
        return bench::metrics(args).await;
    }
    if let Command::Bench(BenchCommand::Audit(args)) = cli.command {
        return bench::audit(args).await;
    }
    if let Command::Bench(BenchCommand::Backup(args)) = cli.command {
        return bench::backup(args, out.json).await;
    }
    let api = Api::open(options).await?;
    if let Command::Serve(args) = cli.command {
        return serve::run(std::sync::Arc::new(api), args).await;
    }
    if let Command::Metrics(MetricsCommand::Collect(args)) = cli.command {
        // Collection runs one task per server: they share the Api.
        let api = std::sync::Arc::new(api);
        let result = collect::run(api.clone(), args, *out).await;
        api.close().await;
        return result;
    }
    let result = dispatch(&api, cli.command, out).await;
    api.close().await;
    result
}

async fn dispatch(api: &Api, command: Command, out: &Output) -> Result<(), Error> {
    match command {
        Command::Server(cmd) => match cmd {
            ServerCommand::Add(a) => {
                let s = api
                    .server_add(ServerAddRequest {
                        name: a.name,
                        dsn: a.dsn,
                        skip_check: Some(a.skip_check),
                    })
                    .await?;
                out.server_added(&s);
            }
            ServerCommand::List => out.servers(&api.server_list(Empty {}).await?),
            ServerCommand::Remove { name } => {
                let s = api.server_remove(ServerName { name }).await?;
                out.server_removed(&s);
            }
            ServerCommand::Check { name } => {
                out.server_check(&api.server_check(ServerName { name }).await?)
            }
        },
        Command::Storage(cmd) => match cmd {
            StorageCommand::Add(a) => {
                let t = api
                    .storage_add(StorageAddRequest {
                        name: a.name,
                        url: a.url,
                        options: StorageOptions {
                            endpoint: a.endpoint,
                            region: a.region,
                            account: a.account,
                            anonymous: a.anonymous.then_some(true),
                        },
                        secret_from_env: Some(a.secret_from_env),
                        skip_check: Some(a.skip_check),
                    })
                    .await?;
                out.storage_added(&t);
            }
            StorageCommand::List => out.storage_targets(&api.storage_list(Empty {}).await?),
            StorageCommand::Remove { name } => {
                let t = api.storage_remove(StorageName { name }).await?;
                out.storage_removed(&t);
            }
            StorageCommand::Check { name } => {
                out.storage_check(&api.storage_check(StorageName { name }).await?)
            }
        },
        Command::Repo(RepoCommand::Status) => out.repo_status(&api.repo_status(Empty {}).await?),
        // Handled in run() before the repository is opened.
        Command::Repo(RepoCommand::Stop) => {}
        Command::Token(cmd) => match cmd {
            TokenCommand::Create { name } => {
                out.token_created(&api.token_create(TokenCreateRequest { name }).await?)
            }
            TokenCommand::List => out.tokens(&api.token_list(Empty {}).await?),
        },
        Command::Metrics(cmd) => match cmd {
            MetricsCommand::Snapshot { server } => out.metrics_snapshot(
                &api.metrics_snapshot(MetricsSnapshotRequest { server })
                    .await?,
            ),
            MetricsCommand::Show { server, since } => out.metrics_report(
                &api.metrics_show(MetricsShowRequest {
                    server,
                    since: Some(since),
                })
                .await?,
            ),
            MetricsCommand::Prune { keep, server } => out.pruned(
                &api.metrics_prune(MetricsPruneRequest { keep, server })
                    .await?,
            ),
            MetricsCommand::Export { server, format } => {
                let ExportFormat::Prometheus = format;
                export_prometheus(api, &server, out).await?;
            }
            // Handled in run(): collection tasks share the Api.
            MetricsCommand::Collect(_) => {}
        },
        Command::Audit(cmd) => audit::dispatch(api, cmd, out).await?,
        Command::Backup(cmd) => backup::dispatch(api, cmd, out).await?,
        // Handled in run(): the daemon owns the Api; the others need no repository.
        Command::Serve(_) | Command::Grafana(_) | Command::Bench(_) => {}
    }
    Ok(())
}

/// `metrics export`: collect each server once (storing the snapshot, like any collection) and
/// print one scrape. A server that fails still appears (`pganalytics_up 0` and the reason), so
/// a node_exporter textfile or a cron job sees the failure; the exit status is then 1.
async fn export_prometheus(api: &Api, servers: &[String], out: &Output) -> Result<(), Error> {
    use pganalytics_core::metrics::prometheus::{collect_into, render, ServerState};
    // Unknown names fail before anything is collected.
    let mut collectors = Vec::new();
    for name in servers {
        collectors.push(api.metrics_collector(name).await?);
    }
    let mut states = Vec::new();
    let mut failed: Option<Error> = None;
    for mut collector in collectors {
        let mut state = ServerState::new(collector.server());
        if let Err(e) = collect_into(&mut collector, api.repository(), &mut state).await {
            out.collect_failed(collector.server(), &e);
            failed.get_or_insert(e);
        }
        collector.close().await;
        states.push(state);
    }
    print!("{}", render(&states));
    match failed {
        Some(e) => Err(Error::new(
            e.code,
            format!(
                "{} of {} servers could not be collected",
                states.iter().filter(|s| !s.up()).count(),
                states.len()
            ),
        )),
        None => Ok(()),
    }
}
