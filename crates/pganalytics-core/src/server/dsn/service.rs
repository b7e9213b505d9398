//! The home folder, the account name and the service files, found the way libpq finds them.

use super::parse::check_value;
use super::{is_keyword, is_secret};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The home folder as libpq finds it: `$HOME`, else the account's home.
pub(super) fn home_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(home) = env("HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.dir)
}

/// The name of the account we run as, as libpq finds it (then `$USER`).
pub(super) fn os_user_name(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| env("USER"))
        .filter(|n| !n.is_empty())
}

/// The settings of service `name`, from the first service file that defines it, in libpq's
/// order: `servicefile` / `PGSERVICEFILE` / `~/.pg_service.conf`, then the system-wide file.
pub(super) fn find_service(
    name: &str,
    servicefile: Option<&str>,
    home: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    match servicefile
        .map(str::to_owned)
        .or_else(|| env("PGSERVICEFILE"))
        .filter(|f| !f.is_empty())
    {
        Some(file) => files.push(PathBuf::from(file)),
        None => {
            if let Some(home) = home {
                files.push(home.join(".pg_service.conf"));
            }
        }
    }
    match env("PGSYSCONFDIR").filter(|d| !d.is_empty()) {
        Some(dir) => files.push(Path::new(&dir).join("pg_service.conf")),
        None => {
            files.push(PathBuf::from("/etc/postgresql-common/pg_service.conf"));
            files.push(PathBuf::from("/etc/pg_service.conf"));
        }
    }
    for file in &files {
        if let Some(entries) = read_service(file, name)? {
            return Ok(entries);
        }
    }
    let searched: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    Err(Error::invalid_input(format!(
        "service \"{name}\" is not defined in any service file (searched {})",
        searched.join(", ")
    ))
    .with_hint(format!(
        "add a [{name}] section of keyword=value lines to one of these files (PGSERVICEFILE \
         names another), or remove service= and unset PGSERVICE"
    )))
}

/// The entries of section `[name]` of one service file; `None` when the file or the section is
/// missing. Errors never quote values (service files hold passwords).
fn read_service(path: &Path, name: &str) -> Result<Option<Vec<(String, String)>>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::invalid_input(format!(
                "could not read service file {}: {e}",
                path.display()
            ))
            .with_hint("make the file readable by this account, or point PGSERVICEFILE elsewhere"))
        }
    };
    let syntax = |line_no: usize, problem: &str| {
        Error::invalid_input(format!(
            "syntax error in service file {}, line {line_no}: {problem}",
            path.display()
        ))
        .with_hint("a service file holds [name] sections of keyword=value lines")
    };
    let mut entries: Option<Vec<(String, String)>> = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            if entries.is_some() {
                break;
            }
            if section
                .strip_prefix(name)
                .is_some_and(|tail| tail.starts_with(']'))
            {
                entries = Some(Vec::new());
            }
            continue;
        }
        let Some(found) = entries.as_mut() else {
            continue;
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(syntax(index + 1, "missing \"=\""));
        };
        let key = key.trim();
        if key == "service" || key == "servicefile" {
            return Err(syntax(
                index + 1,
                "a service cannot name another service (nested services are not supported)",
            ));
        }
        if !is_keyword(key) {
            return Err(syntax(
                index + 1,
                &format!("unknown connection keyword \"{key}\""),
            ));
        }
        let value = value.trim();
        if let Err(problem) = check_value(key, value, !is_secret(key)) {
            return Err(syntax(index + 1, &problem));
        }
        if !found.iter().any(|(k, _)| k == key) {
            found.push((key.to_owned(), value.to_owned()));
        }
    }
    Ok(entries)
}
