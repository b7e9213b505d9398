//! The repository: the PostgreSQL database holding pgAnalytics' own state (servers, tokens,
//! snapshots, audit log, backup catalogue). Either the embedded cluster inside the data
//! directory or an external database named by the user. Migrations in `migrations/` are
//! applied by sqlx on every open.

mod embedded;

use crate::api::{AppliedMigration, RepoStatus, RepositoryKind};
use crate::data_dir::DataDir;
use crate::error::{Error, ErrorCode, Result};
use crate::server::dsn;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Row};
use std::time::Duration;

pub use embedded::{stop as stop_embedded, EMBEDDED_DATABASE};

/// The oldest PostgreSQL that can hold the repository (and be monitored).
pub const MIN_REPOSITORY_VERSION_NUM: i32 = 130000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Switch a pooled connection to the application role when the repository has one (see
/// migration 7): a no-op for an external repository whose owner may not create roles.
const APP_ROLE_SQL: &str = "SELECT set_config('role', 'pganalytics_app', false) FROM pg_roles
     WHERE rolname = 'pganalytics_app' AND pg_has_role(session_user, oid, 'MEMBER')";

#[derive(Clone)]
pub struct Repository {
    pool: PgPool,
    kind: RepositoryKind,
    location: String,
    server_version: String,
    server_version_num: i32,
}

impl Repository {
    /// Open the repository named by `uri`, or the embedded one (created and started as needed).
    pub async fn open(data_dir: &DataDir, uri: Option<&str>) -> Result<Repository> {
        let (options, kind, location) = match uri {
            Some(uri) => {
                let parsed = dsn::parse(uri)?;
                let resolved = parsed.resolve(&dsn::process_env)?;
                let location = resolved.describe();
                (
                    resolved.connect_options(None),
                    RepositoryKind::External,
                    location,
                )
            }
            None => {
                let cluster = embedded::ensure_running(data_dir).await?;
                // The version is reported separately (RepoStatus::server_version).
                let location = cluster.folder().display().to_string();
                (
                    cluster.connect_options(EMBEDDED_DATABASE),
                    RepositoryKind::Embedded,
                    location,
                )
            }
        };
        Self::connect(options, kind, location).await
    }

    async fn connect(
        options: PgConnectOptions,
        kind: RepositoryKind,
        location: String,
    ) -> Result<Repository> {
        let options = options.application_name("pganalytics");
        // One direct connection first: a pool retries until its timeout, while a refused
        // connection should be reported at once.
        let probe = tokio::time::timeout(Duration::from_secs(10), options.connect())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorCode::Unreachable,
                    format!("no answer from the repository at {location} within 10 s"),
                )
                .with_hint("check the host and port, that PostgreSQL runs, and firewalls")
            })?
            .map_err(|e| crate::server::connect_error(&location, &e, "repository"))?;
        let mut probe = probe;
        let row = sqlx::query(
            "SELECT current_setting('server_version') AS v, current_setting('server_version_num')::int AS n",
        )
        .fetch_one(&mut probe)
        .await?;
        let server_version: String = row.try_get("v")?;
        let server_version_num: i32 = row.try_get("n")?;
        if server_version_num < MIN_REPOSITORY_VERSION_NUM {
            let _ = probe.close().await;
            return Err(Error::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "the repository database at {location} runs PostgreSQL {server_version}; pgAnalytics needs 13 or later"
                ),
            )
            .with_hint("upgrade that server, name another database with --repository, or omit --repository to use the embedded one"));
        }
        let _ = probe.close().await;
        // Migrations run as the login role (a one-connection pool: `Migrator::run` on a bare
        // connection makes the future non-`Send`); the pool then works as `pganalytics_app`,
        // which may not change or delete audit events.
        let migrations = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|e| crate::server::connect_error(&location, &e, "repository"))?;
        let migrated = MIGRATOR.run(&migrations).await;
        migrations.close().await;
        migrated.map_err(|e| {
            Error::internal(format!("apply repository migrations to {location}: {e}"))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(15))
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::query(APP_ROLE_SQL).execute(conn).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| crate::server::connect_error(&location, &e, "repository"))?;
        Ok(Repository {
            pool,
            kind,
            location,
            server_version,
            server_version_num,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn kind(&self) -> RepositoryKind {
        self.kind
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    pub async fn status(&self, data_dir: &DataDir) -> Result<RepoStatus> {
        let rows = sqlx::query(
            "SELECT version, description, installed_on FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut migrations = Vec::with_capacity(rows.len());
        for row in rows {
            migrations.push(AppliedMigration {
                version: row.try_get("version")?,
                description: row.try_get("description")?,
                installed_on: row.try_get("installed_on")?,
            });
        }
        Ok(RepoStatus {
            kind: self.kind,
            location: self.location.clone(),
            data_dir: data_dir.path().display().to_string(),
            server_version: self.server_version.clone(),
            server_version_num: self.server_version_num,
            migrations,
        })
    }

    /// Close the pool (connections would otherwise linger until the process ends).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
