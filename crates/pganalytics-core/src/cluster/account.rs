//! PostgreSQL refuses to run as root. When we are root, servers run as an unprivileged account
//! (`PGANALYTICS_PG_USER`, default `postgres`) that owns their folders.

use crate::error::{Error, ErrorCode, Result};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// The account PostgreSQL runs as; `None` fields mean "the current user".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAccount {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// True when we switch to this account for every server command.
    pub switch: bool,
}

impl ServerAccount {
    /// The current user, or the unprivileged account when we are root.
    pub fn for_current_process() -> Result<ServerAccount> {
        let euid = nix::unistd::geteuid();
        if !euid.is_root() {
            let user = nix::unistd::User::from_uid(euid).ok().flatten();
            return Ok(ServerAccount {
                name: user.map(|u| u.name).unwrap_or_else(|| euid.to_string()),
                uid: euid.as_raw(),
                gid: nix::unistd::getegid().as_raw(),
                switch: false,
            });
        }
        let name = std::env::var("PGANALYTICS_PG_USER").unwrap_or_else(|_| "postgres".into());
        let user = nix::unistd::User::from_name(&name).ok().flatten().ok_or_else(|| {
            Error::new(
                ErrorCode::DataDirUnusable,
                format!("running as root, PostgreSQL needs an unprivileged account, and `{name}` does not exist"),
            )
            .with_hint(format!(
                "create it (`useradd --system --home-dir /var/lib/{name} {name}`) or name another account in PGANALYTICS_PG_USER"
            ))
        })?;
        Ok(ServerAccount {
            name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            switch: true,
        })
    }

    /// A command that runs as this account.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        if self.switch {
            // std drops supplementary groups when it switches uid as root.
            cmd.uid(self.uid).gid(self.gid);
        }
        cmd
    }

    /// Give a folder (not recursively) to this account.
    pub fn own(&self, path: &Path) -> Result<()> {
        if self.switch {
            nix::unistd::chown(
                path,
                Some(nix::unistd::Uid::from_raw(self.uid)),
                Some(nix::unistd::Gid::from_raw(self.gid)),
            )
            .map_err(|e| {
                Error::internal(format!("give {} to {}: {e}", path.display(), self.name))
            })?;
        }
        Ok(())
    }

    /// Every ancestor of `path` must be searchable by the account, or PostgreSQL cannot
    /// reach its own folder. Checked up front so the error names the folder to fix.
    pub fn check_reachable(&self, path: &Path) -> Result<()> {
        if !self.switch {
            return Ok(());
        }
        use std::os::unix::fs::MetadataExt;
        let mut current = path.parent();
        while let Some(dir) = current {
            if let Ok(meta) = std::fs::metadata(dir) {
                let mode = meta.mode();
                let searchable = if meta.uid() == self.uid {
                    mode & 0o100 != 0
                } else if meta.gid() == self.gid {
                    mode & 0o010 != 0
                } else {
                    mode & 0o001 != 0
                };
                if !searchable {
                    return Err(Error::new(
                        ErrorCode::DataDirUnusable,
                        format!(
                            "the account `{}` that runs PostgreSQL cannot enter {} (needed to reach {})",
                            self.name,
                            dir.display(),
                            path.display()
                        ),
                    )
                    .with_hint("choose a folder outside private home directories (for root: under /var/lib or /tmp), or allow search with `chmod o+x`"));
                }
            }
            current = dir.parent();
        }
        Ok(())
    }
}
