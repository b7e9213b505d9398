//! Finding PostgreSQL server binaries: `pg_config --bindir`, `/usr/lib/postgresql/*/bin`, and
//! the cache of relocatable binaries filled by `scripts/fetch-postgres` (one folder per major
//! version, each with `bin/`, `lib/`, `share/`).

use crate::error::{Error, ErrorCode, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Major versions pgAnalytics supports and tests on.
pub const SUPPORTED_MAJORS: [u32; 6] = [13, 14, 15, 16, 17, 18];

/// A set of server binaries (`initdb`, `pg_ctl`, `postgres`) of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    pub major: u32,
    /// Full version as `postgres --version` prints it, e.g. `15.20`.
    pub version: String,
    pub bindir: PathBuf,
}

impl PgBinaries {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// Read the version of the binaries in `bindir`; `None` when they are not usable.
    pub fn probe(bindir: &Path) -> Option<PgBinaries> {
        for tool in ["initdb", "pg_ctl", "postgres"] {
            if !bindir.join(tool).is_file() {
                return None;
            }
        }
        let out = Command::new(bindir.join("postgres"))
            .arg("--version")
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let version = parse_version(&text)?;
        let major = version.split('.').next()?.parse().ok()?;
        Some(PgBinaries {
            major,
            version,
            bindir: bindir.to_path_buf(),
        })
    }
}

/// `postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)` → `15.20`.
fn parse_version(text: &str) -> Option<String> {
    let rest = text.split(")").nth(1)?.trim();
    let version = rest.split_whitespace().next()?;
    Some(version.to_string())
}

/// Where `scripts/fetch-postgres` puts relocatable binaries. `PGANALYTICS_PG_CACHE` overrides.
/// As root the cache sits under `/var/cache` because the servers run as an unprivileged
/// account that cannot enter `/root`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PGANALYTICS_PG_CACHE") {
        return PathBuf::from(dir);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/cache/pganalytics/postgres");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("pganalytics/postgres")
}

/// Every usable set of binaries found, newest major first, each major once (the system's
/// packages win over the cache for the same major).
pub fn find_all() -> Vec<PgBinaries> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    for root in [PathBuf::from("/usr/lib/postgresql"), cache_dir()] {
        if let Ok(entries) = std::fs::read_dir(&root) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect();
            found.sort();
            dirs.extend(found);
        }
    }
    let mut all: Vec<PgBinaries> = Vec::new();
    for dir in dirs {
        if let Some(bins) = PgBinaries::probe(&dir) {
            if !all.iter().any(|b| b.major == bins.major) {
                all.push(bins);
            }
        }
    }
    all.sort_by_key(|b| std::cmp::Reverse(b.major));
    all
}

/// Binaries for the embedded repository: the system's packages when installed (they get
/// security updates from the OS), else the newest in the cache.
pub fn find_for_embedded() -> Result<PgBinaries> {
    let system: Vec<PgBinaries> = find_all()
        .into_iter()
        .filter(|b| !b.bindir.starts_with(cache_dir()))
        .collect();
    match system.into_iter().next() {
        Some(b) => Ok(b),
        None => find(None),
    }
}

/// Binaries of one major version, or the newest available when `major` is `None`.
pub fn find(major: Option<u32>) -> Result<PgBinaries> {
    let all = find_all();
    let found = match major {
        Some(m) => all.iter().find(|b| b.major == m),
        None => all.first(),
    };
    found.cloned().ok_or_else(|| {
        let wanted = major.map_or_else(|| "any version".to_string(), |m| m.to_string());
        let have: Vec<String> = all.iter().map(|b| b.version.clone()).collect();
        let fetch_arg = major.map_or_else(|| "15".to_string(), |m| m.to_string());
        Error::new(
            ErrorCode::BinariesMissing,
            format!(
                "no PostgreSQL server binaries for {wanted} (found: {}; searched pg_config --bindir, /usr/lib/postgresql/*/bin, {})",
                if have.is_empty() { "none".to_string() } else { have.join(", ") },
                cache_dir().display()
            ),
        )
        .with_hint(format!(
            "install them with `scripts/fetch-postgres {fetch_arg}` (or `apt-get install postgresql`)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_version_lines() {
        assert_eq!(
            parse_version("postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n").as_deref(),
            Some("15.20")
        );
        assert_eq!(
            parse_version("postgres (PostgreSQL) 18.4\n").as_deref(),
            Some("18.4")
        );
        assert_eq!(parse_version("garbage"), None);
    }
}
