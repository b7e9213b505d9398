//! Hidden `pganalytics bench …` commands: the figures of docs/BENCHMARKS.md, each measured
//! against its peer on one server started here, in the same run.

mod audit;
mod backup;
mod metrics;

pub use audit::audit;
pub use backup::backup;
pub use metrics::metrics;

use pganalytics_core::Error;
use std::path::PathBuf;

/// A throw-away folder the server's account can pass through; removed on drop.
pub(crate) struct Workdir(pub(crate) PathBuf);

impl Workdir {
    pub(crate) fn new() -> Result<Workdir, Error> {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pga-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)))
            .map_err(|e| Error::internal(format!("create {}: {e}", dir.display())))?;
        Ok(Workdir(dir))
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
