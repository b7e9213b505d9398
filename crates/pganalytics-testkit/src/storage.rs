//! Object-storage servers speaking the real protocols on loopback: moto (S3),
//! gcp-storage-emulator (GCS) and Azurite (Azure Blob). Each starts on a free port with its
//! own temporary folder and is killed when dropped (also when a test panics). Missing servers
//! are installed by `scripts/install-deps storage-servers`: a test never skips.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Azurite's well-known development account and key (published by Microsoft).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Where `scripts/install-deps` puts the servers: `PGANALYTICS_TOOLS_DIR`, else
/// `/var/cache/pganalytics/tools` as root, else `~/.cache/pganalytics/tools`.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PGANALYTICS_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    if nix_is_root() {
        PathBuf::from("/var/cache/pganalytics/tools")
    } else {
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
        Path::new(&home).join(".cache/pganalytics/tools")
    }
}

fn nix_is_root() -> bool {
    // The effective uid, from /proc (no libc binding needed).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

static INSTALL_LOCK: Mutex<()> = Mutex::new(());

/// The path of a server's program, installing the servers when it is missing.
fn program(relative: &str) -> Result<PathBuf> {
    let path = tools_dir().join(relative);
    if path.exists() {
        return Ok(path);
    }
    let _guard = INSTALL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if !path.exists() {
        let script = crate::repo_root().join("scripts/install-deps");
        let status = Command::new(&script)
            .arg("storage-servers")
            .status()
            .with_context(|| format!("run {}", script.display()))?;
        if !status.success() || !path.exists() {
            bail!(
                "{} storage-servers did not provide {} ({status})",
                script.display(),
                path.display()
            );
        }
    }
    Ok(path)
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A running storage server; dropping it kills the process and removes its folder.
pub struct StorageServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    what: &'static str,
}

impl Drop for StorageServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StorageServer {
    fn start(
        what: &'static str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<StorageServer> {
        let dir = tempfile::Builder::new()
            .prefix("pga-storage-")
            .tempdir()
            .context("create a temporary folder")?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("{port}", &port.to_string())
                    .replace("{dir}", &dir.path().join("data").display().to_string())
            })
            .collect();
        std::fs::create_dir_all(dir.path().join("data"))?;
        let mut cmd = Command::new(program);
        cmd.args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Should the test process be killed outright (no unwinding, no Drop), the kernel
        // kills the server too.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("start {}", program.display()))?;
        let mut server = StorageServer {
            child,
            port,
            dir,
            what,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before listening: {}",
                    self.what,
                    self.log()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not listen within 60 s: {}", self.what, self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the server printed (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Freeze (SIGSTOP) or thaw (SIGCONT) the server: a store that stops answering without
    /// closing its connections, as a congested or hung one does.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()
            .context("run kill")?;
        if !status.success() {
            bail!("kill {signal} {} failed", self.child.id());
        }
        Ok(())
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// moto (S3). Any access key works; create buckets with [`StorageServer::create_s3_bucket`].
    pub fn s3() -> Result<StorageServer> {
        let program = program("venv/bin/moto_server")?;
        let args = ["-H", "127.0.0.1", "-p", "{port}"].map(String::from);
        StorageServer::start("moto_server", &program, &args, &[])
    }

    /// moto enforcing IAM authentication: every access key is unknown, so every request
    /// is refused as a wrong key.
    pub fn s3_enforcing_auth() -> Result<StorageServer> {
        let program = program("venv/bin/moto_server")?;
        let args = ["-H", "127.0.0.1", "-p", "{port}"].map(String::from);
        StorageServer::start(
            "moto_server",
            &program,
            &args,
            &[("INITIAL_NO_AUTH_ACTION_COUNT", "0")],
        )
    }

    /// gcp-storage-emulator (GCS, in memory) with `bucket` created.
    pub fn gcs(bucket: &str) -> Result<StorageServer> {
        let program = program("venv/bin/gcp-storage-emulator")?;
        let args = [
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--in-memory",
            "--default-bucket",
            bucket,
        ]
        .map(String::from);
        StorageServer::start("gcp-storage-emulator", &program, &args, &[])
    }

    /// Azurite's blob service (account [`AZURITE_ACCOUNT`]); create containers with
    /// [`StorageServer::create_azure_container`].
    pub fn azurite() -> Result<StorageServer> {
        let program = program("npm/node_modules/.bin/azurite-blob")?;
        let args = [
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "{port}",
            "--location",
            "{dir}",
            "--disableTelemetry",
            "--silent",
        ]
        .map(String::from);
        StorageServer::start("azurite-blob", &program, &args, &[])
    }

    /// Azurite's endpoint including the account (what opendal's azblob service takes).
    pub fn azure_endpoint(&self) -> String {
        format!("{}/{AZURITE_ACCOUNT}", self.endpoint())
    }

    /// Create an S3 bucket on moto (which does not check signatures by default).
    pub fn create_s3_bucket(&self, bucket: &str) -> Result<()> {
        let status = self.http("PUT", &format!("/{bucket}"), &[])?;
        if !(200..300).contains(&status) {
            bail!("moto refused to create bucket {bucket}: HTTP {status}");
        }
        Ok(())
    }

    /// Create a container on Azurite with a request signed by the development key.
    pub fn create_azure_container(&self, container: &str) -> Result<()> {
        use base64::Engine;
        let date = httpdate_now();
        let version = "2021-08-06";
        let resource =
            format!("/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container");
        let string_to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}"
        );
        let key = base64::engine::general_purpose::STANDARD.decode(AZURITE_KEY)?;
        let signature = base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256(&key, string_to_sign.as_bytes()));
        let auth = format!("SharedKey {AZURITE_ACCOUNT}:{signature}");
        let status = self.http(
            "PUT",
            &format!("/{AZURITE_ACCOUNT}/{container}?restype=container"),
            &[
                ("x-ms-date", date.as_str()),
                ("x-ms-version", version),
                ("Authorization", auth.as_str()),
            ],
        )?;
        if status != 201 {
            bail!(
                "Azurite refused to create container {container}: HTTP {status}: {}",
                self.log()
            );
        }
        Ok(())
    }

    /// One HTTP/1.1 request without a body; returns the status code.
    fn http(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Result<u16> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n",
            self.port
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes())?;
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no HTTP status in {response:?}"))?;
        Ok(status)
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// RFC 7231 date of now (`Sun, 29 Nov 2026 17:00:00 GMT`).
fn httpdate_now() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = super::hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            mac.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
