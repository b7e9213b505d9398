//! The processes the end-to-end test starts, each in a guard that ends it on drop (also when
//! the test fails): a virtual display, tauri-driver (which starts WebKitWebDriver, which starts
//! the app), and the app's embedded repository cluster (which outlives the app by design).

use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process started in its own process group; dropping it ends the whole group
/// (tauri-driver's WebKitWebDriver and the app it launched are in it).
pub struct Group {
    name: &'static str,
    child: Child,
}

impl Group {
    pub fn spawn(name: &'static str, mut cmd: Command) -> Result<Group> {
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("start {name} ({cmd:?})"))?;
        Ok(Group { name, child })
    }

    /// `Some(status)` once the leader has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left of the group (grandchildren ignore the leader's exit).
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.child.wait();
        eprintln!("e2e: stopped {} (process group {pgid})", self.name);
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; a race with another program is possible and
/// shows as a clear "does not answer" failure).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The X display to use: `DISPLAY` when it names a local display whose socket exists,
/// else a new Xvfb on a free display number (returned guard stops it).
pub fn display() -> Result<(String, Option<Group>)> {
    if let Ok(current) = std::env::var("DISPLAY") {
        if let Some(n) = local_display_number(&current) {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                eprintln!("e2e: using DISPLAY={current}");
                return Ok((current, None));
            }
        }
    }
    for n in 90..200u32 {
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        if socket.exists() || Path::new(&format!("/tmp/.X{n}-lock")).exists() {
            continue;
        }
        let mut cmd = Command::new("Xvfb");
        cmd.arg(format!(":{n}"))
            .args(["-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut xvfb = Group::spawn("Xvfb", cmd).context("start Xvfb (apt-get install xvfb)")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if socket.exists() {
                eprintln!("e2e: started Xvfb on :{n}");
                return Ok((format!(":{n}"), Some(xvfb)));
            }
            if xvfb.exited().is_some() {
                break; // Lost a race for this number: try the next one.
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    bail!("could not start Xvfb on any display number from :90 to :199")
}

/// `:1`, `:1.0`, `unix:1` → 1; remote displays (`host:1`) → None.
fn local_display_number(display: &str) -> Option<u32> {
    let rest = display
        .strip_prefix(':')
        .or_else(|| display.strip_prefix("unix:"))?;
    rest.split('.').next()?.parse().ok()
}

/// tauri-driver on a free port, its native WebKitWebDriver on another; the app it launches
/// inherits `env`.
pub fn tauri_driver(env: &[(&str, &str)], log: &Path) -> Result<(Group, String)> {
    let binary = tauri_driver_path().context(
        "tauri-driver not found: install it with `cargo install tauri-driver --locked` \
         (or set TAURI_DRIVER to its path)",
    )?;
    let native = which("WebKitWebDriver")
        .context("WebKitWebDriver not found: install the Debian package webkit2gtk-driver")?;
    let port = free_port()?;
    let native_port = free_port()?;
    let log_file =
        std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    let mut cmd = Command::new(binary);
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--native-port")
        .arg(native_port.to_string())
        .arg("--native-driver")
        .arg(native)
        .env_remove("PGANALYTICS_REPOSITORY")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let group = Group::spawn("tauri-driver", cmd)?;
    Ok((group, format!("http://127.0.0.1:{port}")))
}

fn tauri_driver_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = which("tauri-driver") {
        return Some(p);
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let p = home.join("bin/tauri-driver");
    p.is_file().then_some(p)
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Stops every PostgreSQL server whose data folder lies under `root` when dropped. The app's
/// embedded repository cluster keeps running after the app exits (so the next start is fast);
/// the test must not leave it behind.
pub struct StopClustersUnder(pub PathBuf);

impl Drop for StopClustersUnder {
    fn drop(&mut self) {
        let mut pid_files = Vec::new();
        find_files(&self.0, "postmaster.pid", 4, &mut pid_files);
        for file in pid_files {
            let Some(pid) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
            else {
                continue;
            };
            let pid = Pid::from_raw(pid);
            // SIGINT is PostgreSQL's fast shutdown.
            if nix::sys::signal::kill(pid, Signal::SIGINT).is_err() {
                continue;
            }
            let proc_dir = PathBuf::from(format!("/proc/{pid}"));
            let deadline = Instant::now() + Duration::from_secs(60);
            while proc_dir.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if proc_dir.exists() {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            }
            eprintln!("e2e: stopped the app's embedded cluster (postmaster {pid})");
        }
    }
}

fn find_files(dir: &Path, name: &str, depth: u32, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && depth > 0 {
            find_files(&path, name, depth - 1, out);
        } else if kind.is_file() && entry.file_name() == name {
            out.push(path);
        }
    }
}
