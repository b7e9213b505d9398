//! pgAnalytics core: every capability of the product, with no knowledge of Tauri, terminals or
//! HTTP. The three shells (desktop app, `pganalytics` CLI, `pganalytics serve` daemon) call
//! [`api::Api`] and nothing else.
//!
//! Modules follow the domain:
//! - [`cluster`]: find PostgreSQL binaries, run local clusters (embedded repository, tests).
//! - [`repository`]: the database holding pgAnalytics' own state (sqlx, migrations).
//! - [`server`]: the registry of monitored PostgreSQL servers and their capabilities.
//! - [`secrets`]: passwords in the OS keyring, never in the repository.
//! - [`storage`]: storage targets for backups and WAL (folder, S3, GCS, Azure Blob).
//! - [`backup`]: physical base backups over the replication protocol (the engine is growing).
//! - [`metrics`]: engine metrics collectors, snapshots, rates and advice.
//! - [`charts`]: engine-metric charts drawn as SVG (desktop panel, later PDF reports).
//! - [`audit`]: the tamper-evident audit log (hash chain, Merkle tree, signed checkpoints).
//! - [`jobs`]: long operations with readable progress.
//! - [`token`]: API tokens for the daemon (only hashes are stored).
//! - [`data_dir`]: the local folder with config, embedded cluster and state.

pub mod api;
pub mod audit;
pub mod backup;
pub mod charts;
pub mod cluster;
pub mod data_dir;
pub mod error;
pub mod grafana;
pub mod jobs;
pub mod metrics;
pub mod repository;
pub mod secrets;
pub mod server;
pub mod storage;
pub mod token;

pub use error::{Error, ErrorCode, Result};

/// The product version, shown by `pganalytics --version`, `/api/v1/version` and the app.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
