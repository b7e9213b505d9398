//! Running the built `pganalytics` binary against a fresh data directory.

use pganalytics_testkit::TestCluster;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Exit 0, or fail showing what the command printed.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// A data directory plus, optionally, an external repository database.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repository: Option<String>,
    /// The repository's database in the test cluster (external repositories only).
    pub database: Option<String>,
}

impl Env {
    /// A data directory whose repository is a new database in `cluster`.
    pub async fn with_repository(cluster: &TestCluster) -> Env {
        let db = format!("repo_{}", uuid::Uuid::new_v4().simple());
        let pool = cluster.pool("postgres").await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        Env {
            dir: pganalytics_testkit::temp_dir().unwrap(),
            repository: Some(cluster.dsn(&db)),
            database: Some(db),
        }
    }

    /// A data directory with nothing configured: the embedded default.
    pub fn embedded() -> Env {
        Env {
            dir: pganalytics_testkit::temp_dir().unwrap(),
            repository: None,
            database: None,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pganalytics"));
        cmd.env_remove("PGANALYTICS_REPOSITORY")
            .env_remove("PGANALYTICS_DATA_DIR")
            .env("PGANALYTICS_DATA_DIR", self.data_dir());
        if let Some(r) = &self.repository {
            cmd.env("PGANALYTICS_REPOSITORY", r);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().expect("run pganalytics"))
    }

    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command();
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run pganalytics"))
    }
}

/// A running `pganalytics serve`, killed on drop.
pub struct Daemon {
    child: Child,
    pub base: String,
}

impl Daemon {
    pub fn start(env: &Env) -> Daemon {
        Daemon::start_with(env, &[])
    }

    pub fn start_with(env: &Env, extra: &[&str]) -> Daemon {
        let mut child = env
            .command()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start daemon");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listening line");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Daemon { child, base }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.repository.is_none() && self.data_dir().join("embedded").exists() {
            let _ = self.run(&["repo", "stop"]);
        }
    }
}

/// `promtool check metrics` on `text` (Debian package `prometheus`); fails the test on any
/// parse error or lint finding.
#[track_caller]
pub fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect(
            "run promtool: install it with `apt-get install prometheus` (scripts/install-deps)",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics failed:\n{}{}\n--- input ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The command exited with `code` and said every one of `needles` (stdout or stderr).
#[track_caller]
pub fn assert_exit(run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(
        run.code, code,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let all = format!("{}{}", run.stdout, run.stderr);
    for n in needles {
        assert!(all.contains(n), "should say `{n}`: {all}");
    }
}
