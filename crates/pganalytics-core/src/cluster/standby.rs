//! A streaming standby without `pg_basebackup` (the relocatable binaries have none): reserve
//! WAL with a physical slot, take a non-exclusive backup, copy the files, write the backup
//! label, and start the copy as a standby that streams from the slot.

use super::{append_settings, free_port, prepare_folder, Cluster, ClusterOptions, SUPERUSER};
use crate::error::{Error, Result};
use anyhow::Context;
use sqlx::{ConnectOptions, Connection, Row};
use std::collections::BTreeMap;
use std::path::Path;

pub(super) async fn create(
    primary: &Cluster,
    folder: &Path,
    options: &ClusterOptions,
) -> Result<Cluster> {
    let account = primary.account.clone();
    prepare_folder(folder, &account)?;
    let pgdata = folder.join("pgdata");
    let run = folder.join("run");
    let name = folder
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>();
    let slot = format!("standby_{name}");

    let mut conn = primary
        .connect_options("postgres")
        .connect()
        .await
        .context("connect to the primary")?;
    sqlx::query("SELECT pg_create_physical_replication_slot($1, true)")
        .bind(&slot)
        .execute(&mut conn)
        .await
        .with_context(|| format!("create replication slot {slot}"))?;
    // Stop without waiting for WAL archiving: the standby streams from its slot, and a primary
    // whose archive_command fails (a test of ours) would otherwise block here forever.
    let (start_sql, stop_sql) = if primary.major() >= 15 {
        (
            "SELECT pg_backup_start('pganalytics standby', true)",
            "SELECT labelfile FROM pg_backup_stop(false)",
        )
    } else {
        (
            "SELECT pg_start_backup('pganalytics standby', true, false)",
            "SELECT labelfile FROM pg_stop_backup(false, false)",
        )
    };
    sqlx::query(start_sql)
        .execute(&mut conn)
        .await
        .context("start the base backup")?;

    let src = primary.pgdata();
    let dst = pgdata.clone();
    let acct = account.clone();
    let major = primary.major();
    let copied = tokio::task::spawn_blocking(move || copy_data_dir(&src, &dst, &acct, major))
        .await
        .map_err(|e| Error::internal(format!("copy task failed: {e}")))?;

    // Always end the backup, also when the copy failed, so the primary is left clean.
    let label: String = sqlx::query(stop_sql)
        .fetch_one(&mut conn)
        .await
        .context("stop the base backup")?
        .try_get("labelfile")
        .context("read the backup label")?;
    let _ = conn.close().await;
    copied?;

    std::fs::write(pgdata.join("backup_label"), label).context("write backup_label")?;
    std::fs::write(pgdata.join("standby.signal"), "").context("write standby.signal")?;
    std::fs::create_dir_all(&run).with_context(|| format!("create {}", run.display()))?;
    for path in [
        pgdata.join("backup_label"),
        pgdata.join("standby.signal"),
        run.clone(),
    ] {
        account.own(&path)?;
    }

    let port = match options.port {
        Some(p) => p,
        None => free_port()?,
    };
    let primary_host = if primary.listen_tcp {
        "127.0.0.1".to_string()
    } else {
        primary.socket_dir().display().to_string()
    };
    let mut settings = BTreeMap::new();
    settings.insert("port".to_string(), port.to_string());
    settings.insert(
        "listen_addresses".to_string(),
        if options.listen_tcp { "127.0.0.1" } else { "" }.to_string(),
    );
    settings.insert(
        "unix_socket_directories".to_string(),
        run.display().to_string(),
    );
    settings.insert(
        "primary_conninfo".to_string(),
        format!(
            "host={primary_host} port={} user={SUPERUSER} application_name={name}",
            primary.port
        ),
    );
    settings.insert("primary_slot_name".to_string(), slot);
    settings.insert("hot_standby".to_string(), "on".to_string());
    settings.extend(options.settings.clone());
    append_settings(&pgdata.join("postgresql.conf"), &settings)?;

    let mut standby = Cluster {
        folder: folder.to_path_buf(),
        bins: primary.bins.clone(),
        account,
        port,
        listen_tcp: options.listen_tcp,
        stop_on_drop: options.stop_on_drop,
        started_here: false,
    };
    standby.save()?;
    standby.start().await?;
    Ok(standby)
}

/// Copy PGDATA as a base backup does: without the postmaster's files, WAL, or slots.
fn copy_data_dir(src: &Path, dst: &Path, account: &super::ServerAccount, major: u32) -> Result<()> {
    const SKIP_FILES: [&str; 3] = ["postmaster.pid", "postmaster.opts", "backup_label"];
    const EMPTY_DIRS: [&str; 4] = ["pg_wal", "pg_replslot", "pg_stat_tmp", "pg_dynshmem"];
    copy_tree(src, dst, account, &|rel: &Path| {
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().to_string());
        let Some(first) = first else { return true };
        if rel.components().count() == 1 && SKIP_FILES.contains(&first.as_str()) {
            return false;
        }
        !(EMPTY_DIRS.contains(&first.as_str()) && rel.components().count() > 1)
    })?;
    let mut wal_dirs = vec![dst.join("pg_wal/archive_status")];
    if major >= 17 {
        wal_dirs.push(dst.join("pg_wal/summaries"));
    }
    for dir in wal_dirs {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        account.own(&dir)?;
    }
    Ok(())
}

fn copy_tree(
    src: &Path,
    dst: &Path,
    account: &super::ServerAccount,
    keep: &dyn Fn(&Path) -> bool,
) -> Result<()> {
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let from = src.join(&rel);
        let to = dst.join(&rel);
        std::fs::create_dir_all(&to).with_context(|| format!("create {}", to.display()))?;
        // PostgreSQL refuses a data folder readable by others.
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .with_context(|| format!("restrict {}", to.display()))?;
        account.own(&to)?;
        let entries = match std::fs::read_dir(&from) {
            Ok(e) => e,
            // A folder can vanish while the server runs (temporary files).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::internal(format!("read {}: {e}", from.display()))),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("read {}", from.display()))?;
            let child = rel.join(entry.file_name());
            if !keep(&child) {
                continue;
            }
            let file_type = entry.file_type().context("read file type")?;
            if file_type.is_dir() {
                stack.push(child);
            } else if file_type.is_file() {
                let target = dst.join(&child);
                match std::fs::copy(entry.path(), &target) {
                    Ok(_) => account.own(&target)?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::internal(format!(
                            "copy {}: {e}",
                            entry.path().display()
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}
