//! `backup restore`: a completed backup into an empty folder, ready to start with the server
//! version that made it (the WAL it needs to be consistent is inside, so starting it runs
//! crash recovery up to the backup's end; no `recovery.signal` is written — point-in-time
//! recovery will add that).
//!
//! Tablespaces go to `<target>_tablespaces/<oid>` (beside the target, not inside it: a data
//! folder holding its own tablespaces would copy them twice into the next backup); the
//! restored `tablespace_map` and the `pg_tblspc` links point there.
//!
//! Every object is checked (size, SHA-256, GCM tag) before its bytes are written; a damaged
//! one stops the restore. A failed restore removes what it wrote, so a folder is either a
//! complete restore or as empty as it was.

use super::download::{self, Opened, Prefetch};
use super::engine::Progress;
use super::record;
use crate::api::{BackupRestoreRequest, RestoreSummary};
use crate::audit::keys::VerifyingKey;
use crate::cluster::ServerAccount;
use crate::data_dir::DataDir;
use crate::error::{Error, ErrorCode, Result};
use crate::repository::Repository;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub async fn restore(
    repo: &Repository,
    data_dir: &DataDir,
    public_key: Result<VerifyingKey>,
    req: &BackupRestoreRequest,
    progress: &Progress,
) -> Result<RestoreSummary> {
    let target = PathBuf::from(&req.target_dir);
    check_target(&target)?;
    let opened = match download::open(repo, data_dir, public_key.as_ref(), req.id).await {
        Ok(o) => o,
        Err(Ok(problem)) => return Err(download::damaged(&problem)),
        Err(Err(e)) => return Err(e),
    };
    let tablespaces = tablespace_root(&target);
    // Only a backup with tablespaces uses (and may clean up) the folder beside the target.
    let has_tablespaces = opened.catalogue.archives.len() > 1;
    if has_tablespaces {
        check_target(&tablespaces)?;
    }
    let server = opened.summary.server.clone().unwrap_or_default();
    let (id, lock) = record::restore_started(repo, req.id, &server, &req.target_dir).await?;
    let result = async {
        let started = Instant::now();
        let outcome = restore_into(&opened, &target, &tablespaces, progress).await;
        let ms = started.elapsed().as_millis() as i64;
        match outcome {
            Ok((bytes, dirs)) => {
                if !req.start.unwrap_or(false) {
                    return record::restore_finished(repo, id, Ok((bytes, dirs, None)), ms).await;
                }
                // The restore is complete whatever happens next: a server that does not start
                // (a port in use, missing binaries) leaves the restored folder in place.
                let major = opened.catalogue.server_version_num / 10_000;
                match start(&target, major, req.port).await {
                    Ok(port) => {
                        let ms = started.elapsed().as_millis() as i64;
                        record::restore_finished(repo, id, Ok((bytes, dirs, Some(port))), ms).await
                    }
                    Err(e) => {
                        record::restore_finished(repo, id, Ok((bytes, dirs, None)), ms).await?;
                        Err(Error::new(
                            e.code,
                            format!(
                                "the backup is restored in {}, but the server did not start: {}",
                                target.display(),
                                e.message
                            ),
                        )
                        .with_hint(
                            e.hint
                                .unwrap_or_else(|| "start it yourself with pg_ctl".into()),
                        ))
                    }
                }
            }
            Err(e) => {
                remove_contents(&target);
                if has_tablespaces && tablespaces.exists() {
                    remove_contents(&tablespaces);
                    let _ = std::fs::remove_dir(&tablespaces);
                }
                record::restore_finished(repo, id, Err(&e.message), ms).await?;
                Err(e)
            }
        }
    }
    .await;
    lock.release().await;
    result
}

/// `<target>_tablespaces`
pub fn tablespace_root(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push("_tablespaces");
    target.with_file_name(name)
}

/// Absolute; absent or an empty folder (so no server can be running there).
fn check_target(dir: &Path) -> Result<()> {
    if !dir.is_absolute() {
        return Err(Error::invalid_input(format!(
            "give the target folder as an absolute path, not `{}`",
            dir.display()
        )));
    }
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                let running = dir.join("postmaster.pid").exists();
                return Err(Error::invalid_input(format!(
                    "{} is not empty{}",
                    dir.display(),
                    if running {
                        " (a server may be running there: it holds postmaster.pid)"
                    } else {
                        ""
                    }
                ))
                .with_hint("restore into a new or empty folder; nothing was written"));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::new(
            ErrorCode::DataDirUnusable,
            format!("cannot read {}: {e}", dir.display()),
        )),
    }
}

/// Unpack every archive; returns the bytes written and the tablespace folders.
pub async fn restore_into(
    opened: &Opened,
    target: &Path,
    tablespaces: &Path,
    progress: &Progress,
) -> Result<(u64, Vec<String>)> {
    let account = ServerAccount::for_current_process()?;
    create_dir(target, &account)?;
    let total = opened.catalogue.raw_bytes();
    let mut done = 0u64;
    let mut dirs = Vec::new();
    let mut links = Vec::new();
    for archive in &opened.catalogue.archives {
        let dest = match archive.tablespace_oid {
            None => target.to_path_buf(),
            Some(oid) => {
                create_dir(tablespaces, &account)?;
                let d = tablespaces.join(oid.to_string());
                create_dir(&d, &account)?;
                dirs.push(d.display().to_string());
                links.push((oid, d.clone()));
                d
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
        let unpack_dest = dest.clone();
        let archive_name = archive.name.clone();
        let unpacker = tokio::task::spawn_blocking(move || {
            unpack(
                tar::Archive::new(download::archive_reader(rx, &archive_name)?),
                &unpack_dest,
            )
        });
        let mut fetch = Prefetch::new(opened, archive.objects.clone());
        let mut failure = None;
        while let Some((object, fetched)) = fetch.next().await {
            match fetched {
                Ok(bytes) => {
                    done += bytes.len() as u64;
                    if tx.send(bytes).await.is_err() {
                        break; // the unpacker stopped: its error follows
                    }
                    progress.report(done, Some(total));
                }
                Err(Ok(problem)) => {
                    failure = Some(download::damaged(&problem));
                    break;
                }
                Err(Err(e)) => {
                    failure = Some(Error::new(
                        e.code,
                        format!("reading `{}`: {}", object.key, e.message),
                    ));
                    break;
                }
            }
        }
        drop(tx);
        let unpacked = unpacker
            .await
            .map_err(|e| Error::internal(format!("the unpack task failed: {e}")))?;
        if let Some(e) = failure {
            return Err(e);
        }
        unpacked.map_err(|e| write_error(&dest, &e, total))?;
    }
    done += restore_wal(opened, target, progress, done, total).await?;
    relink_tablespaces(target, &links)?;
    give_tree(target, &account)?;
    let mut written = vec![target.to_path_buf()];
    if tablespaces.exists() {
        give_tree(tablespaces, &account)?;
        written.push(tablespaces.to_path_buf());
    }
    tokio::task::spawn_blocking(move || sync_to_disk(&written))
        .await
        .map_err(|e| Error::internal(format!("the sync task failed: {e}")))?
        .map_err(|e| write_error(target, &e, total))?;
    Ok((done, dirs))
}

/// Files at least this large (relation segments, WAL) are written with direct I/O; the many
/// small ones are not worth it.
const DIRECT_FROM_BYTES: u64 = 1024 * 1024;

/// Extract an archive into `dest`: large regular files past the page cache
/// ([`crate::storage::direct`]) — the copy into the cache was most of a restore's CPU —, every
/// other entry as the `tar` crate does it. Nothing is overwritten.
fn unpack<R: std::io::Read>(mut tar: tar::Archive<R>, dest: &Path) -> std::io::Result<()> {
    tar.set_preserve_permissions(true);
    tar.set_overwrite(false);
    let root = dest.canonicalize()?;
    for entry in tar.entries()? {
        let mut entry = entry?;
        let header = entry.header();
        if header.entry_type().is_file() && entry.size() >= DIRECT_FROM_BYTES {
            let mode = header.mode()?;
            // Paths that could leave `dest` are left to `unpack_in`, which refuses them.
            if let Some(path) = inside(&root, &entry.path()?)? {
                let len = entry.size();
                crate::storage::direct::copy_new(&path, &mut entry, len, mode)?;
                continue;
            }
        }
        entry.unpack_in(dest)?;
    }
    Ok(())
}

/// Where a relative archive path goes under `root` (canonical): `None` for a path that is not
/// plain names, whose folder does not exist yet, or whose folder leads out of `root` through a
/// symbolic link unpacked earlier (`unpack_in` then creates or refuses it).
fn inside(root: &Path, path: &Path) -> std::io::Result<Option<PathBuf>> {
    use std::path::Component;
    let plain = path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    let joined = root.join(path);
    let Some(parent) = joined.parent().filter(|_| plain) else {
        return Ok(None);
    };
    match parent.canonicalize() {
        Ok(real) => Ok(real.starts_with(root).then_some(joined)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Make the restored files durable before the restore counts as done: a crash right after it
/// must not leave a cluster that was reported restored with writes still in the page cache.
/// One `syncfs` per folder's filesystem, as PostgreSQL's `recovery_init_sync_method = syncfs`.
fn sync_to_disk(folders: &[PathBuf]) -> std::io::Result<()> {
    for folder in folders {
        let opened = std::fs::File::open(folder)?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            nix::unistd::syncfs(opened.as_raw_fd())?;
        }
        #[cfg(not(target_os = "linux"))]
        {
            drop(opened);
            nix::unistd::sync();
        }
    }
    Ok(())
}

/// Write the WAL segments streamed with the backup into `pg_wal`.
async fn restore_wal(
    opened: &Opened,
    target: &Path,
    progress: &Progress,
    mut done: u64,
    total: u64,
) -> Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let pg_wal = target.join("pg_wal");
    std::fs::create_dir_all(&pg_wal).map_err(|e| write_error(&pg_wal, &e, total))?;
    let start = done;
    let mut fetch = Prefetch::new(opened, opened.catalogue.wal.clone());
    while let Some((object, fetched)) = fetch.next().await {
        let bytes = match fetched {
            Ok(b) => b,
            Err(Ok(problem)) => return Err(download::damaged(&problem)),
            Err(Err(e)) => return Err(e),
        };
        let name = object
            .key
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let path = pg_wal.join(&name);
        let len = bytes.len() as u64;
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(&bytes)
        })
        .await
        .map_err(|e| Error::internal(format!("the WAL write task failed: {e}")))?
        .map_err(|e| write_error(&pg_wal, &e, total))?;
        done += len;
        progress.report(done, Some(total));
    }
    Ok(done - start)
}

/// Create (or take over an empty) folder: mode 0700 and owned by the server's account, as
/// PostgreSQL demands of a data folder.
fn create_dir(dir: &Path, account: &ServerAccount) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| write_error(dir, &e, 0))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| write_error(dir, &e, 0))?;
    account.own(dir)
}

/// An unpack failure, with the full disk said plainly.
fn write_error(dest: &Path, e: &std::io::Error, total: u64) -> Error {
    let text = e.to_string();
    // The tar crate wraps the file system's error ("failed to unpack …") inside its own.
    let mut full = e.raw_os_error() == Some(28);
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(c) = cause {
        let is_enospc = c
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(28));
        full |= is_enospc || c.to_string().contains("No space left");
        cause = c.source();
    }
    if full {
        return Error::new(
            ErrorCode::DataDirUnusable,
            format!("the file system of {} is full", dest.display()),
        )
        .with_hint(format!(
            "the restore needs about {} MB; free space or choose another folder (what was written is removed)",
            total / 1_000_000 + 1
        ));
    }
    Error::new(
        ErrorCode::DataDirUnusable,
        format!("writing into {} failed: {text}", dest.display()),
    )
}

/// Point `tablespace_map` and `pg_tblspc/<oid>` at the restored tablespace folders.
fn relink_tablespaces(target: &Path, links: &[(u32, PathBuf)]) -> Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    let map: String = links
        .iter()
        .map(|(oid, dir)| format!("{oid} {}\n", dir.display()))
        .collect();
    let map_path = target.join("tablespace_map");
    std::fs::write(&map_path, map).map_err(|e| write_error(target, &e, 0))?;
    let spc = target.join("pg_tblspc");
    std::fs::create_dir_all(&spc).map_err(|e| write_error(target, &e, 0))?;
    for (oid, dir) in links {
        let link = spc.join(oid.to_string());
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(dir, &link).map_err(|e| write_error(target, &e, 0))?;
    }
    Ok(())
}

/// Give every restored file to the account PostgreSQL runs as (when we are root).
fn give_tree(dir: &Path, account: &ServerAccount) -> Result<()> {
    if !account.switch {
        return Ok(());
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        std::os::unix::fs::lchown(&d, Some(account.uid), Some(account.gid)).map_err(|e| {
            Error::internal(format!("give {} to {}: {e}", d.display(), account.name))
        })?;
        let meta = std::fs::symlink_metadata(&d)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&d)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(())
}

/// Empty a folder this restore wrote into (leaving the folder itself).
fn remove_contents(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let _ = if is_dir {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// Start the restored server with the binaries of its major version, on `port` (or a free
/// one), listening on 127.0.0.1 and a socket in its own folder, with WAL archiving off (a
/// restored copy must not push WAL into the original's archive). Returns the port.
pub async fn start(pgdata: &Path, major: u32, port: Option<u16>) -> Result<u16> {
    let bins = crate::cluster::binaries::find(Some(major))?;
    let account = ServerAccount::for_current_process()?;
    account.check_reachable(pgdata)?;
    let port = match port {
        Some(p) => {
            crate::cluster::check_port_free(p)?;
            p
        }
        None => crate::cluster::free_port()?,
    };
    write_missing_config(pgdata, &account)?;
    let log = pgdata.join("pganalytics-start.log");
    let mut pg_ctl = account.command(bins.tool("pg_ctl"));
    pg_ctl
        .arg("-D")
        .arg(pgdata)
        .arg("-l")
        .arg(&log)
        .arg("-o")
        .arg(format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}' -c archive_mode=off",
            pgdata.display()
        ))
        .args(["-w", "-t", "600", "start"]);
    if let Err(err) = crate::cluster::run_checked(pg_ctl, "pg_ctl start").await {
        let tail = crate::cluster::tail(&log, 15);
        return Err(Error::new(
            err.code,
            format!(
                "the restored server in {} did not start: {}\n--- last lines of {} ---\n{tail}",
                pgdata.display(),
                err.message,
                log.display()
            ),
        )
        .with_hint("read the server log above"));
    }
    Ok(port)
}

/// A server whose configuration lived outside its data folder (Debian's /etc/postgresql)
/// restores without it; it cannot start that way. Write minimal files where they are missing
/// (local connections by peer, TCP by password), never over existing ones.
fn write_missing_config(pgdata: &Path, account: &ServerAccount) -> Result<()> {
    let files = [
        (
            "postgresql.conf",
            "# Written by pgAnalytics: the backed-up server kept its configuration outside its
# data folder. Put its settings here before using this copy for real.
",
        ),
        (
            "pg_hba.conf",
            "# Written by pgAnalytics (the backed-up server kept pg_hba.conf elsewhere).
local all all peer
host all all 127.0.0.1/32 scram-sha-256
",
        ),
        ("pg_ident.conf", ""),
    ];
    for (name, text) in files {
        let path = pgdata.join(name);
        if !path.exists() {
            std::fs::write(&path, text).map_err(|e| write_error(pgdata, &e, 0))?;
            std::os::unix::fs::lchown(&path, Some(account.uid), Some(account.gid)).ok();
        }
    }
    Ok(())
}

/// Fast shutdown of a server started by [`start`].
pub async fn stop(pgdata: &Path, major: u32) -> Result<()> {
    let bins = crate::cluster::binaries::find(Some(major))?;
    let account = ServerAccount::for_current_process()?;
    let mut pg_ctl = account.command(bins.tool("pg_ctl"));
    pg_ctl
        .arg("-D")
        .arg(pgdata)
        .args(["-w", "-t", "120", "-m", "fast", "stop"]);
    crate::cluster::run_checked(pg_ctl, "pg_ctl stop").await
}

#[cfg(test)]
mod tests {
    use super::inside;
    use std::path::Path;

    #[test]
    fn only_plain_paths_inside_the_target_are_written_directly() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("base")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
        let at = |p: &str| inside(&root, Path::new(p)).unwrap();
        assert_eq!(at("base/16384"), Some(root.join("base/16384")));
        assert_eq!(at("../base/16384"), None);
        assert_eq!(at("/etc/passwd"), None);
        assert_eq!(at("missing/16384"), None, "a folder not unpacked yet");
        assert_eq!(at("link/16384"), None, "through a link out of the target");
    }
}
