//! The registry of monitored PostgreSQL servers: add, list, remove, check, connect.
//! A DSN's password is moved to the OS keyring; the repository keeps the DSN without it.

pub mod dsn;

use crate::api::{FeatureReadiness, ServerAddRequest, ServerCheck, ServerSetting, ServerSummary};
use crate::error::{Error, ErrorCode, Result};
use crate::repository::Repository;
use crate::secrets;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};
use std::time::Duration;

/// Oldest monitored server version: 13 (the oldest still in our test matrix).
pub const MIN_SERVER_VERSION_NUM: i32 = 130000;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Names are used in URLs, metric labels and file names: keep them plain.
pub fn validate_name(name: &str, what: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(
            Error::invalid_input(format!("`{name}` is not a valid {what} name")).with_hint(
                "use 1–63 letters, digits, `_`, `.` or `-`, starting with a letter or digit",
            ),
        )
    }
}

struct ServerRow {
    id: uuid::Uuid,
    name: String,
    dsn: String,
    password_in_keyring: bool,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl ServerRow {
    fn from_row(row: &sqlx::postgres::PgRow) -> Result<ServerRow> {
        Ok(ServerRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            dsn: row.try_get("dsn")?,
            password_in_keyring: row.try_get("password_in_keyring")?,
            created_at: row.try_get("created_at")?,
        })
    }

    fn summary(self) -> ServerSummary {
        ServerSummary {
            id: self.id,
            name: self.name,
            dsn: self.dsn,
            password_in_keyring: self.password_in_keyring,
            created_at: self.created_at,
        }
    }
}

/// The id of a registered server (`NotFound` with a hint when there is none).
pub(crate) async fn id_of(repo: &Repository, name: &str) -> Result<uuid::Uuid> {
    Ok(find(repo, name).await?.id)
}

async fn find(repo: &Repository, name: &str) -> Result<ServerRow> {
    let row = sqlx::query(
        "SELECT id, name, dsn, password_in_keyring, created_at FROM monitored_servers WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(repo.pool())
    .await?;
    match row {
        Some(row) => ServerRow::from_row(&row),
        None => Err(Error::not_found(format!("no server named `{name}`"))
            .with_hint("`pganalytics server list` shows the registered servers")),
    }
}

pub async fn list(repo: &Repository) -> Result<Vec<ServerSummary>> {
    let rows = sqlx::query(
        "SELECT id, name, dsn, password_in_keyring, created_at FROM monitored_servers ORDER BY name",
    )
    .fetch_all(repo.pool())
    .await?;
    rows.iter()
        .map(|r| ServerRow::from_row(r).map(ServerRow::summary))
        .collect()
}

/// Register a server. Order matters so that a failure changes nothing: validate, refuse a
/// duplicate, connect (unless skipped), store the password, then insert the row.
pub async fn add(repo: &Repository, req: ServerAddRequest) -> Result<ServerSummary> {
    validate_name(&req.name, "server")?;
    let parsed = dsn::parse(&req.dsn)?;
    let exists: bool =
        sqlx::query("SELECT EXISTS (SELECT 1 FROM monitored_servers WHERE name = $1)")
            .bind(&req.name)
            .fetch_one(repo.pool())
            .await?
            .try_get(0)?;
    if exists {
        return Err(Error::new(
            ErrorCode::AlreadyExists,
            format!("a server named `{}` is already registered", req.name),
        )
        .with_hint("choose another name, or `pganalytics server remove` the old one first"));
    }
    let password = parsed.password().map(str::to_string);
    let stored = parsed.without_password();
    if !req.skip_check.unwrap_or(false) {
        let resolved = parsed.resolve(&dsn::process_env)?;
        let mut conn = connect_with(&resolved, password.as_deref()).await?;
        let version_num = server_version_num(&mut conn).await?;
        let _ = conn.close().await;
        if version_num < MIN_SERVER_VERSION_NUM {
            return Err(Error::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "{} runs PostgreSQL {}; pgAnalytics supports 13 and later",
                    resolved.describe(),
                    format_version_num(version_num)
                ),
            )
            .with_hint("upgrade the server before monitoring it"));
        }
    }
    let id = uuid::Uuid::new_v4();
    if let Some(password) = &password {
        secrets::set(&secrets::server_account(id), password).await?;
    }
    let inserted = sqlx::query(
        "INSERT INTO monitored_servers (id, name, dsn, password_in_keyring) VALUES ($1, $2, $3, $4)
         RETURNING id, name, dsn, password_in_keyring, created_at",
    )
    .bind(id)
    .bind(&req.name)
    .bind(stored.to_string())
    .bind(password.is_some())
    .fetch_one(repo.pool())
    .await;
    match inserted {
        Ok(row) => Ok(ServerRow::from_row(&row)?.summary()),
        Err(e) => {
            if password.is_some() {
                let _ = secrets::delete(&secrets::server_account(id)).await;
            }
            if let sqlx::Error::Database(db) = &e {
                if db.code().as_deref() == Some("23505") {
                    return Err(Error::new(
                        ErrorCode::AlreadyExists,
                        format!("a server named `{}` is already registered", req.name),
                    ));
                }
            }
            Err(e.into())
        }
    }
}

pub async fn remove(repo: &Repository, name: &str) -> Result<ServerSummary> {
    let server = find(repo, name).await?;
    if server.password_in_keyring {
        secrets::delete(&secrets::server_account(server.id)).await?;
    }
    sqlx::query("DELETE FROM monitored_servers WHERE id = $1")
        .bind(server.id)
        .execute(repo.pool())
        .await?;
    Ok(server.summary())
}

/// Open a connection to a registered server, with its password from the keyring.
pub async fn connect(repo: &Repository, name: &str) -> Result<PgConnection> {
    let server = find(repo, name).await?;
    let password = if server.password_in_keyring {
        let secret = secrets::get(&secrets::server_account(server.id)).await?;
        if secret.is_none() {
            return Err(Error::new(
                ErrorCode::AuthenticationFailed,
                format!("the keyring has no password for server `{name}` any more"),
            )
            .with_hint("remove and add the server again with its password, or use ~/.pgpass"));
        }
        secret
    } else {
        None
    };
    let resolved = dsn::parse(&server.dsn)?.resolve(&dsn::process_env)?;
    connect_with(&resolved, password.as_deref()).await
}

/// Where and as whom the backup engine connects to a registered server in replication mode:
/// the DSN's first host (hostaddr when given), port, user and password (keyring, DSN,
/// `PGPASSWORD` or `.pgpass`), and TLS as its `sslmode` and `sslrootcert` say. Returns the
/// server's id too.
pub async fn replication_params(
    repo: &Repository,
    name: &str,
) -> Result<(uuid::Uuid, crate::backup::ConnectParams)> {
    let server = find(repo, name).await?;
    let password = if server.password_in_keyring {
        secrets::get(&secrets::server_account(server.id)).await?
    } else {
        None
    };
    let resolved = dsn::parse(&server.dsn)?.resolve(&dsn::process_env)?;
    let host = resolved.hostaddr().unwrap_or(resolved.host()).to_string();
    let mut params = crate::backup::ConnectParams::new(host, resolved.port(), resolved.user());
    params.password = resolved.replication_password(password.as_deref());
    params.application_name = "pganalytics backup".into();
    params.tls = crate::backup::TlsMode::from_dsn(resolved.ssl_mode(), resolved.ssl_root_cert())?;
    params.tls_name = Some(resolved.host().to_string());
    Ok((server.id, params))
}

async fn connect_with(resolved: &dsn::ResolvedDsn, password: Option<&str>) -> Result<PgConnection> {
    let options: PgConnectOptions = resolved
        .connect_options(password)
        .application_name("pganalytics");
    let what = resolved.describe();
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(connect_error(&what, &e, "server")),
        Err(_) => Err(Error::new(
            ErrorCode::Unreachable,
            format!(
                "no answer from {what} within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        )
        .with_hint("check the host and port, that the server runs, and firewalls")),
    }
}

/// Turn a connection failure into a typed error that says what to do. sqlx errors never
/// contain the password.
pub fn connect_error(what: &str, err: &sqlx::Error, role: &str) -> Error {
    match err {
        sqlx::Error::Io(e) => Error::new(
            ErrorCode::Unreachable,
            format!("cannot reach the {role} at {what}: {e}"),
        )
        .with_hint("check the host and port, that PostgreSQL runs and listens there (listen_addresses), and firewalls"),
        sqlx::Error::Tls(e) => Error::new(
            ErrorCode::Unreachable,
            format!("TLS with the {role} at {what} failed: {e}"),
        )
        .with_hint("check sslmode and the certificates named in the DSN"),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            match code.as_str() {
                "28P01" | "28000" => Error::new(
                    ErrorCode::AuthenticationFailed,
                    format!("the {role} at {what} refused the login: {}", db.message()),
                )
                .with_hint("check the user and password (the password comes from the DSN, the keyring, ~/.pgpass or PGPASSWORD) and pg_hba.conf"),
                "3D000" => Error::new(
                    ErrorCode::NotFound,
                    format!("the {role} at {what} has no such database: {}", db.message()),
                )
                .with_hint("name an existing database with dbname="),
                "57P03" => Error::new(
                    ErrorCode::Unreachable,
                    format!("the {role} at {what} is starting up or shutting down: {}", db.message()),
                )
                .with_hint("try again in a moment"),
                _ => Error::new(
                    ErrorCode::Unreachable,
                    format!("the {role} at {what} refused the connection: {} (SQLSTATE {code})", db.message()),
                ),
            }
        }
        sqlx::Error::Protocol(msg) if msg.contains("password") || msg.contains("authentication") => {
            Error::new(
                ErrorCode::AuthenticationFailed,
                format!("the {role} at {what} asks for a password and none was given"),
            )
            .with_hint("add the password to the DSN (it moves to the keyring), ~/.pgpass or PGPASSWORD")
        }
        sqlx::Error::PoolTimedOut => Error::new(
            ErrorCode::Unreachable,
            format!("no answer from the {role} at {what}"),
        )
        .with_hint("check the host and port, that PostgreSQL runs, and firewalls"),
        other => Error::new(
            ErrorCode::Unreachable,
            format!("cannot connect to the {role} at {what}: {other}"),
        ),
    }
}

async fn server_version_num(conn: &mut PgConnection) -> Result<i32> {
    let n: i32 = sqlx::query("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    Ok(n)
}

/// `150020` → `15.20`; `120022` → `12.22`.
pub fn format_version_num(n: i32) -> String {
    format!("{}.{}", n / 10000, n % 10000)
}

/// Settings a DBA needs to see to know what pgAnalytics can do with this server.
const CHECKED_SETTINGS: [&str; 9] = [
    "wal_level",
    "archive_mode",
    "archive_command",
    "max_wal_senders",
    "max_replication_slots",
    "summarize_wal",
    "data_checksums",
    "wal_segment_size",
    "shared_buffers",
];

pub async fn check(repo: &Repository, name: &str) -> Result<ServerCheck> {
    let mut conn = connect(repo, name).await?;
    let row = sqlx::query(
        "SELECT version() AS version,
                current_setting('server_version_num')::int AS version_num,
                current_user::text AS current_user,
                r.rolsuper AS is_superuser,
                r.rolreplication AS can_replicate,
                pg_has_role(current_user, 'pg_monitor', 'MEMBER') AS pg_monitor,
                pg_is_in_recovery() AS in_recovery
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await?;
    let version: String = row.try_get("version")?;
    let version_num: i32 = row.try_get("version_num")?;
    let current_user: String = row.try_get("current_user")?;
    let is_superuser: bool = row.try_get("is_superuser")?;
    let can_replicate = is_superuser || row.try_get::<bool, _>("can_replicate")?;
    let can_read_stats = is_superuser || row.try_get::<bool, _>("pg_monitor")?;
    let in_recovery: bool = row.try_get("in_recovery")?;

    let names: Vec<String> = CHECKED_SETTINGS.iter().map(|s| s.to_string()).collect();
    let rows = sqlx::query(
        "SELECT name, current_setting(name) AS value FROM pg_settings WHERE name = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut conn)
    .await?;
    let _ = conn.close().await;
    let mut settings: Vec<ServerSetting> = CHECKED_SETTINGS
        .iter()
        .map(|n| ServerSetting {
            name: n.to_string(),
            value: None,
        })
        .collect();
    for row in rows {
        let n: String = row.try_get("name")?;
        let v: String = row.try_get("value")?;
        if let Some(s) = settings.iter_mut().find(|s| s.name == n) {
            s.value = Some(v);
        }
    }
    let features = feature_readiness(&FeatureInputs {
        version_num,
        current_user: &current_user,
        can_read_stats,
        can_replicate,
        setting: &|n: &str| {
            settings
                .iter()
                .find(|s| s.name == n)
                .and_then(|s| s.value.clone())
        },
    });
    Ok(ServerCheck {
        name: name.to_string(),
        version,
        server_version_num: version_num,
        current_user,
        is_superuser,
        can_read_stats,
        can_replicate,
        in_recovery,
        settings,
        features,
    })
}

struct FeatureInputs<'a> {
    version_num: i32,
    current_user: &'a str,
    can_read_stats: bool,
    can_replicate: bool,
    setting: &'a dyn Fn(&str) -> Option<String>,
}

/// What each feature needs, and what to change when it is missing.
fn feature_readiness(i: &FeatureInputs) -> Vec<FeatureReadiness> {
    let user = i.current_user;
    let wal_level = (i.setting)("wal_level").unwrap_or_default();
    let archive_mode = (i.setting)("archive_mode").unwrap_or_default();
    let senders: i64 = (i.setting)("max_wal_senders")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut out = Vec::new();
    out.push(FeatureReadiness {
        feature: "engine_metrics".into(),
        ready: i.can_read_stats,
        detail: if i.can_read_stats {
            "can read all statistics views".into()
        } else {
            format!("run `GRANT pg_monitor TO \"{user}\"` so every statistics column is visible")
        },
    });
    let backup_ready = i.can_replicate && senders > 0;
    out.push(FeatureReadiness {
        feature: "base_backup".into(),
        ready: backup_ready,
        detail: if !i.can_replicate {
            format!("run `ALTER ROLE \"{user}\" REPLICATION` (and allow `replication` connections in pg_hba.conf)")
        } else if senders == 0 {
            "set max_wal_senders above 0 and restart the server".into()
        } else {
            "can stream base backups (pg_hba.conf must allow replication connections)".into()
        },
    });
    let wal_ok = wal_level == "replica" || wal_level == "logical";
    let archiving = wal_ok && (archive_mode == "on" || archive_mode == "always");
    out.push(FeatureReadiness {
        feature: "wal_archiving".into(),
        ready: archiving,
        detail: if !wal_ok {
            format!("wal_level is `{wal_level}`: set it to `replica` and restart")
        } else if !archiving {
            "set archive_mode = on (restart) so WAL can be archived continuously".into()
        } else {
            "archive_mode is on".into()
        },
    });
    out.push(FeatureReadiness {
        feature: "point_in_time_recovery".into(),
        ready: backup_ready && archiving,
        detail: if backup_ready && archiving {
            "base backups and WAL archiving are possible".into()
        } else {
            "needs both base_backup and wal_archiving".into()
        },
    });
    let summarize = (i.setting)("summarize_wal").unwrap_or_default() == "on";
    out.push(FeatureReadiness {
        feature: "incremental_backup".into(),
        ready: i.version_num >= 170000 && summarize && backup_ready,
        detail: if i.version_num < 170000 {
            "needs PostgreSQL 17 or later (WAL summaries)".into()
        } else if !summarize {
            "set summarize_wal = on (reload is enough)".into()
        } else {
            "WAL summaries are on".into()
        },
    });
    out
}
