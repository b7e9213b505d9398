//! Long operations (audit verification now, backups and restores next) run as jobs: the
//! caller gets an id at once and reads progress and the result with it (desktop panels poll,
//! the daemon's endpoints return the id).

use crate::api::{JobState, JobStatus};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Finished jobs kept for reading (the oldest go first).
const KEEP_FINISHED: usize = 100;

#[derive(Clone, Default)]
pub struct Jobs {
    inner: Arc<Mutex<HashMap<Uuid, JobStatus>>>,
}

/// Handed to the job's body to report progress.
#[derive(Clone)]
pub struct Progress {
    jobs: Jobs,
    id: Uuid,
}

impl Progress {
    pub fn set(&self, done: u64, total: u64) {
        self.jobs.update(self.id, |s| {
            s.done = done as i64;
            s.total = total as i64;
        });
    }
}

impl Jobs {
    /// Start `body` on the runtime; returns the job's id at once.
    pub fn spawn<F, Fut>(&self, kind: &str, body: F) -> Uuid
    where
        F: FnOnce(Progress) -> Fut,
        Fut: Future<Output = Result<serde_json::Value>> + Send + 'static,
    {
        let id = Uuid::new_v4();
        self.insert(JobStatus {
            id,
            kind: kind.to_string(),
            state: JobState::Running,
            done: 0,
            total: 0,
            result: None,
            error: None,
            started_at: chrono::Utc::now(),
            finished_at: None,
        });
        let fut = body(Progress {
            jobs: self.clone(),
            id,
        });
        let jobs = self.clone();
        tokio::spawn(async move {
            let outcome = fut.await;
            jobs.update(id, |s| {
                s.finished_at = Some(chrono::Utc::now());
                match outcome {
                    Ok(v) => {
                        s.state = JobState::Succeeded;
                        s.result = Some(v);
                    }
                    Err(e) => {
                        s.state = JobState::Failed;
                        s.error = Some(e);
                    }
                }
            });
        });
        id
    }

    pub fn status(&self, id: Uuid) -> Result<JobStatus> {
        self.lock()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("no job {id} in this process")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, JobStatus>> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, status: JobStatus) {
        let mut map = self.lock();
        if map.len() >= KEEP_FINISHED {
            let mut finished: Vec<_> = map
                .values()
                .filter(|s| s.state != JobState::Running)
                .map(|s| (s.finished_at, s.id))
                .collect();
            finished.sort();
            for (_, id) in finished.iter().take(map.len() + 1 - KEEP_FINISHED) {
                map.remove(id);
            }
        }
        map.insert(status.id, status);
    }

    fn update(&self, id: Uuid, f: impl FnOnce(&mut JobStatus)) {
        if let Some(s) = self.lock().get_mut(&id) {
            f(s);
        }
    }
}
