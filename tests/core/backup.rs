//! The BASE_BACKUP client against real servers: 13–14 syntax (one COPY per tablespace) and
//! 15+ syntax (one typed COPY stream); the backup is extracted, started and compared with
//! its source. Setup mistakes give errors that name the fix.

use crate::each_major;
use pganalytics_core::backup::{
    ArchiveInfo, BackupSink, ConnectParams, ReplicationConnection, TlsMode,
};
use pganalytics_core::cluster::{Cluster, ClusterOptions};
use pganalytics_core::{ErrorCode, Result};
use pganalytics_testkit::TestCluster;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes each archive and the manifest to a folder, and records what it was given.
struct FolderSink {
    dir: PathBuf,
    file: Option<std::fs::File>,
    archives: Vec<String>,
    manifest: Vec<u8>,
    largest_chunk: usize,
    progress_calls: usize,
    last_progress: (u64, Option<u64>),
    ended: usize,
}

impl FolderSink {
    fn new(dir: &Path) -> Self {
        FolderSink {
            dir: dir.to_path_buf(),
            file: None,
            archives: Vec::new(),
            manifest: Vec::new(),
            largest_chunk: 0,
            progress_calls: 0,
            last_progress: (0, None),
            ended: 0,
        }
    }
}

impl BackupSink for FolderSink {
    async fn archive_start(&mut self, archive: &ArchiveInfo) -> Result<()> {
        assert!(self.file.is_none(), "previous archive not ended");
        self.file = Some(std::fs::File::create(self.dir.join(&archive.name))?);
        self.archives.push(archive.name.clone());
        Ok(())
    }

    async fn archive_data(&mut self, bytes: &[u8]) -> Result<()> {
        self.largest_chunk = self.largest_chunk.max(bytes.len());
        self.file
            .as_mut()
            .expect("archive started")
            .write_all(bytes)?;
        Ok(())
    }

    async fn archive_end(&mut self) -> Result<()> {
        self.file.take().expect("archive started").sync_all()?;
        self.ended += 1;
        Ok(())
    }

    async fn manifest_data(&mut self, bytes: &[u8]) -> Result<()> {
        assert!(self.file.is_none(), "manifest before the archives ended");
        self.largest_chunk = self.largest_chunk.max(bytes.len());
        self.manifest.extend_from_slice(bytes);
        Ok(())
    }

    fn progress(&mut self, done: u64, total: Option<u64>) {
        assert!(done >= self.last_progress.0, "progress went backwards");
        self.progress_calls += 1;
        self.last_progress = (done, total);
    }
}

fn tcp(cluster: &TestCluster, user: &str) -> ConnectParams {
    ConnectParams::new("127.0.0.1", cluster.cluster.port(), user)
}

async fn table_md5(cluster_pool: &sqlx::PgPool, table: &str) -> String {
    sqlx::query_scalar::<_, String>(&format!(
        "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t"
    ))
    .fetch_one(cluster_pool)
    .await
    .expect("md5 of table")
}

fn run(cmd: &mut std::process::Command) {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn round_trip(major: u32) {
    let src = pganalytics_testkit::pg(major).await.expect("cluster");
    let account = src.cluster.account().clone();
    let pool = src.pool("postgres").await.expect("pool");

    // A second tablespace: one more archive (one more COPY stream before 15).
    let spc_dir = src.dir().join("spc");
    std::fs::create_dir(&spc_dir).unwrap();
    account.own(&spc_dir).unwrap();
    for sql in [
        format!("CREATE TABLESPACE extra LOCATION '{}'", spc_dir.display()),
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v, repeat('x', g % 500) AS pad FROM generate_series(1, 60000) g".to_string(),
        "CREATE TABLE elsewhere TABLESPACE extra AS SELECT g AS id, g * 7 AS v FROM generate_series(1, 5000) g".to_string(),
        "CREATE UNLOGGED TABLE scratch AS SELECT 1 AS x".to_string(),
    ] {
        sqlx::query(&sql).execute(&pool).await.expect(&sql);
    }
    let big_md5 = table_md5(&pool, "big").await;
    let elsewhere_md5 = table_md5(&pool, "elsewhere").await;
    let sysid: String =
        sqlx::query_scalar("SELECT system_identifier::text FROM pg_control_system()")
            .fetch_one(&pool)
            .await
            .unwrap();
    let spc_oid: u32 = sqlx::query_scalar::<_, i64>(
        "SELECT oid::bigint FROM pg_tablespace WHERE spcname = 'extra'",
    )
    .fetch_one(&pool)
    .await
    .unwrap() as u32;

    let mut conn = ReplicationConnection::connect(&tcp(&src, "postgres"))
        .await
        .expect("replication connection");
    assert_eq!(conn.server_version_num() / 10_000, major);
    let identity = conn.identify_system().await.expect("IDENTIFY_SYSTEM");
    assert_eq!(identity.system_identifier, sysid);
    assert_eq!(identity.timeline, 1);
    assert!(identity.xlogpos.contains('/'), "{}", identity.xlogpos);

    let work = pganalytics_testkit::temp_dir().unwrap();
    let backup_dir = work.path().join("backup");
    std::fs::create_dir(&backup_dir).unwrap();
    let mut sink = FolderSink::new(&backup_dir);
    let result = conn
        .base_backup("pganalytics test", &mut sink)
        .await
        .expect("BASE_BACKUP");
    // The connection is usable again after the backup.
    let again = conn.identify_system().await.expect("IDENTIFY_SYSTEM after");
    assert_eq!(again.system_identifier, sysid);
    conn.close().await.unwrap();

    // What arrived: two archives, each a complete tar file, and a SHA-256 manifest.
    let mut names = sink.archives.clone();
    names.sort();
    let mut expected = vec!["base.tar".to_string(), format!("{spc_oid}.tar")];
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(sink.ended, 2);
    assert_eq!(result.archives.len(), 2);
    assert_eq!(result.tablespaces.len(), 2);
    assert_eq!(result.start_timeline, 1);
    assert_eq!(result.end_timeline, 1);
    assert!(!result.start_lsn.is_empty() && !result.end_lsn.is_empty());
    for archive in &result.archives {
        let bytes = std::fs::read(backup_dir.join(&archive.name)).unwrap();
        assert_eq!(bytes.len() as u64, archive.bytes);
        assert_eq!(
            bytes.len() % 512,
            0,
            "{} is not whole tar blocks",
            archive.name
        );
        assert!(
            bytes[bytes.len() - 1024..].iter().all(|&b| b == 0),
            "{} lacks the end-of-archive blocks",
            archive.name
        );
    }
    assert!(
        sink.largest_chunk <= 256 * 1024,
        "a chunk of {} bytes: the sink must get bounded chunks",
        sink.largest_chunk
    );
    assert!(sink.progress_calls > 10);
    let total = sink.last_progress.1.expect("PROGRESS gives a total");
    assert!(total > 1_000_000, "estimated total {total}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&sink.manifest).expect("manifest is JSON");
    // Version 2 (17+) adds the system identifier.
    let manifest_version = manifest["PostgreSQL-Backup-Manifest-Version"].as_u64();
    assert!(
        matches!(manifest_version, Some(1 | 2)),
        "{manifest_version:?}"
    );
    if manifest_version == Some(2) {
        assert_eq!(manifest["System-Identifier"].to_string(), sysid);
    }
    let files = manifest["Files"].as_array().expect("Files");
    assert!(files.iter().any(|f| f["Path"] == "PG_VERSION"));
    assert!(files.iter().all(|f| f["Checksum-Algorithm"] == "CRC32C"));
    assert_eq!(result.manifest_bytes as usize, sink.manifest.len());

    // Restore: extract, place the tablespace, start, compare.
    let folder = work.path().join("restored");
    let pgdata = folder.join("pgdata");
    let spc_restored = work.path().join("spc-restored");
    for dir in [&folder, &pgdata, &folder.join("run"), &spc_restored] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        account.own(dir).unwrap();
    }
    run(std::process::Command::new("tar")
        .arg("-xf")
        .arg(backup_dir.join("base.tar"))
        .arg("-C")
        .arg(&pgdata));
    run(std::process::Command::new("tar")
        .arg("-xf")
        .arg(backup_dir.join(format!("{spc_oid}.tar")))
        .arg("-C")
        .arg(&spc_restored));
    run(std::process::Command::new("chown")
        .arg("-R")
        .arg("--reference")
        .arg(&folder)
        .arg(&pgdata)
        .arg(&spc_restored));
    assert!(pgdata.join("backup_label").is_file());
    assert!(
        pgdata.join("pg_wal").read_dir().unwrap().count() > 1,
        "WAL included"
    );
    let map = std::fs::read_to_string(pgdata.join("tablespace_map")).expect("tablespace_map");
    assert!(map.starts_with(&format!("{spc_oid} ")), "{map}");
    std::fs::write(pgdata.join("backup_manifest"), &sink.manifest).unwrap();

    // The server's own verifier, where these binaries have one (the system's packages do;
    // the relocatable builds do not).
    let bins = src.cluster.binaries().clone();
    let verifier = bins.tool("pg_verifybackup");
    if verifier.is_file() {
        let link = pgdata.join("pg_tblspc").join(spc_oid.to_string());
        std::os::unix::fs::symlink(&spc_restored, &link).unwrap();
        run(std::process::Command::new(&verifier).arg(&pgdata));
        std::fs::remove_file(&link).unwrap();
    }

    // Restore the tablespace elsewhere: the server makes the link from tablespace_map.
    std::fs::write(
        pgdata.join("tablespace_map"),
        format!("{spc_oid} {}\n", spc_restored.display()),
    )
    .unwrap();
    let port = pganalytics_core::cluster::free_port().unwrap();
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(pgdata.join("postgresql.conf"))
        .unwrap();
    writeln!(
        conf,
        "\nport = {port}\nunix_socket_directories = '{}'\n",
        folder.join("run").display()
    )
    .unwrap();
    std::fs::write(
        folder.join("cluster.json"),
        serde_json::json!({
            "bindir": bins.bindir,
            "major": bins.major,
            "version": bins.version,
            "port": port,
            "listen_tcp": true,
        })
        .to_string(),
    )
    .unwrap();
    let mut restored = Cluster::open(&folder, true).expect("open restored cluster");
    restored.start().await.expect("restored cluster starts");
    let rpool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(restored.connect_options("postgres"))
        .await
        .expect("connect to the restored cluster");
    assert_eq!(table_md5(&rpool, "big").await, big_md5);
    assert_eq!(table_md5(&rpool, "elsewhere").await, elsewhere_md5);
    let restored_sysid: String =
        sqlx::query_scalar("SELECT system_identifier::text FROM pg_control_system()")
            .fetch_one(&rpool)
            .await
            .unwrap();
    assert_eq!(restored_sysid, sysid);
    rpool.close().await;
    restored.stop().await.unwrap();
    drop(restored);
}

each_major!(round_trip);

#[tokio::test(flavor = "multi_thread")]
async fn identify_system_over_the_unix_socket() {
    let src = pganalytics_testkit::pg(16).await.unwrap();
    let params = ConnectParams::new(
        src.cluster.socket_dir().display().to_string(),
        src.cluster.port(),
        "postgres",
    );
    let mut conn = ReplicationConnection::connect(&params).await.unwrap();
    let identity = conn.identify_system().await.unwrap();
    assert_eq!(identity.server_version_num / 10_000, 16);
    assert_eq!(identity.timeline, 1);
    // A command the replication grammar does not know is the server's error, not a hang.
    let err = conn.simple_query("NOT_A_COMMAND").await.unwrap_err();
    assert!(err.message.contains("SQLSTATE"), "{err}");
    conn.identify_system().await.expect("still usable");
    conn.close().await.unwrap();
}

/// A test CA (`ca.crt`), a server certificate it signed for localhost and 127.0.0.1
/// (`server.crt`, `server.key`) and an unrelated CA (`other.crt`), made with openssl.
pub(crate) fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        run(std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir))
    };
    for (name, subject) in [
        ("ca", "/CN=pganalytics test CA"),
        ("other", "/CN=another CA"),
    ] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            subject,
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ]);
    }
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
}

/// The server takes TLS with the certificate above and refuses TCP without it.
pub(crate) async fn require_tls(src: &TestCluster, certs: &Path) {
    let pgdata = src.cluster.pgdata();
    for file in ["server.crt", "server.key"] {
        let to = pgdata.join(file);
        std::fs::copy(certs.join(file), &to).unwrap();
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        src.cluster.account().own(&to).unwrap();
    }
    let hba = pgdata.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("hostnossl all all all reject\nhostnossl replication all all reject\n{rules}"),
    )
    .unwrap();
    let pool = src.pool("postgres").await.unwrap();
    sqlx::query("ALTER SYSTEM SET ssl = on")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replication_over_tls() {
    let src = pganalytics_testkit::pg(16).await.unwrap();
    let certs = src.dir().join("certs");
    std::fs::create_dir(&certs).unwrap();
    make_certificates(&certs);
    require_tls(&src, &certs).await;
    let ca = certs.join("ca.crt");
    let with = |tls: TlsMode, name: Option<&str>| {
        let mut params = tcp(&src, "postgres");
        params.tls = tls;
        params.tls_name = name.map(str::to_string);
        params
    };

    // verify-full: the CA signed it and it names localhost (reached at 127.0.0.1), and a base
    // backup streams through the encrypted connection.
    let full = with(TlsMode::VerifyFull { root: ca.clone() }, Some("localhost"));
    let mut conn = ReplicationConnection::connect(&full).await.unwrap();
    conn.identify_system().await.unwrap();
    let out = src.dir().join("tls-backup");
    std::fs::create_dir(&out).unwrap();
    let mut sink = FolderSink::new(&out);
    conn.base_backup("over tls", &mut sink).await.unwrap();
    assert!(!sink.archives.is_empty() && !sink.manifest.is_empty());
    assert!(
        std::fs::metadata(out.join(&sink.archives[0]))
            .unwrap()
            .len()
            > 1_000_000
    );
    conn.close().await.unwrap();

    // verify-ca ignores the name; require and prefer encrypt without checking.
    for tls in [
        TlsMode::VerifyCa { root: ca.clone() },
        TlsMode::Require,
        TlsMode::Prefer,
    ] {
        let mut conn = ReplicationConnection::connect(&with(tls.clone(), Some("db.example.com")))
            .await
            .unwrap_or_else(|e| panic!("{tls:?}: {e}"));
        conn.identify_system().await.unwrap();
    }

    // A name the certificate does not carry, or another CA: refused, saying why.
    let err = ReplicationConnection::connect(&with(
        TlsMode::VerifyFull { root: ca.clone() },
        Some("db.example.com"),
    ))
    .await
    .unwrap_err();
    assert!(err.message.contains("TLS handshake"), "{err}");
    assert!(err.hint.unwrap().contains("name the host"));
    let other = certs.join("other.crt");
    let err = ReplicationConnection::connect(&with(TlsMode::VerifyCa { root: other }, None))
        .await
        .unwrap_err();
    assert!(err.message.contains("TLS handshake"), "{err}");
    let err = ReplicationConnection::connect(&with(
        TlsMode::VerifyCa {
            root: certs.join("missing.crt"),
        },
        None,
    ))
    .await
    .unwrap_err();
    assert!(err.message.contains("missing.crt (sslrootcert)"), "{err}");

    // Without TLS the server's hostnossl rule refuses: the connections above were encrypted.
    let err = ReplicationConnection::connect(&with(TlsMode::Disable, None))
        .await
        .unwrap_err();
    assert!(err.message.contains("pg_hba.conf"), "{err}");
    assert!(err.hint.unwrap().contains("sslmode=require"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_demanded_from_a_server_without_it() {
    let src = pganalytics_testkit::pg(16).await.unwrap();
    let mut params = tcp(&src, "postgres");
    params.tls = TlsMode::Require;
    let err = ReplicationConnection::connect(&params).await.unwrap_err();
    assert!(err.message.contains("does not accept TLS"), "{err}");
    assert!(err.message.contains("sslmode=require"), "{err}");
    // prefer (libpq's default) settles for a plain connection.
    params.tls = TlsMode::Prefer;
    let mut conn = ReplicationConnection::connect(&params).await.unwrap();
    conn.identify_system().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn no_wal_senders_names_max_wal_senders() {
    // `wal_level = minimal` requires `max_wal_senders = 0`: both are named.
    let src = pganalytics_testkit::pg_with(
        16,
        ClusterOptions::for_tests()
            .setting("max_wal_senders", "0")
            .setting("wal_level", "minimal"),
    )
    .await
    .unwrap();
    let err = ReplicationConnection::connect(&tcp(&src, "postgres"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput, "{err}");
    assert!(err.message.contains("max_wal_senders"), "{err}");
    let hint = err.hint.as_deref().unwrap();
    assert!(hint.contains("max_wal_senders = 10"), "{err}");
    assert!(hint.contains("wal_level = replica"), "{err}");
}

/// Fails after `limit` archive bytes, as a full disk or a dead upload would.
struct FailingSink {
    received: usize,
    limit: usize,
}

impl BackupSink for FailingSink {
    async fn archive_start(&mut self, _archive: &ArchiveInfo) -> Result<()> {
        Ok(())
    }
    async fn archive_data(&mut self, bytes: &[u8]) -> Result<()> {
        self.received += bytes.len();
        if self.received > self.limit {
            return Err(pganalytics_core::Error::internal("the sink is full"));
        }
        Ok(())
    }
    async fn archive_end(&mut self) -> Result<()> {
        Ok(())
    }
    async fn manifest_data(&mut self, _bytes: &[u8]) -> Result<()> {
        Ok(())
    }
}

async fn sink_failure_aborts_the_backup(major: u32) {
    let src = pganalytics_testkit::pg(major).await.unwrap();
    let mut conn = ReplicationConnection::connect(&tcp(&src, "postgres"))
        .await
        .unwrap();
    let mut sink = FailingSink {
        received: 0,
        limit: 1_000_000,
    };
    let err = conn.base_backup("fails", &mut sink).await.unwrap_err();
    assert!(err.message.contains("the sink is full"), "{err}");
    drop(conn);
    // The server ends the aborted backup: the next one starts and completes.
    let mut conn = ReplicationConnection::connect(&tcp(&src, "postgres"))
        .await
        .unwrap();
    let mut sink = FailingSink {
        received: 0,
        limit: usize::MAX,
    };
    let result = conn.base_backup("after", &mut sink).await.unwrap();
    assert_eq!(result.archives.len(), 1);
    assert_eq!(result.archives[0].name, "base.tar");
}

mod sink_failure {
    #[tokio::test(flavor = "multi_thread")]
    async fn pg14() {
        super::sink_failure_aborts_the_backup(14).await
    }
    #[tokio::test(flavor = "multi_thread")]
    async fn pg16() {
        super::sink_failure_aborts_the_backup(16).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn role_without_replication_and_missing_hba_line() {
    let src = pganalytics_testkit::pg_with_login(17, "alice", "s3cret", None)
        .await
        .unwrap();
    let params = tcp(&src, "alice").with_password("s3cret");

    // SCRAM succeeds, then the server refuses a WAL sender to a role without REPLICATION.
    let err = ReplicationConnection::connect(&params).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::PermissionDenied, "{err}");
    assert!(
        err.hint
            .as_deref()
            .unwrap()
            .contains("ALTER ROLE alice REPLICATION"),
        "{err}"
    );

    // No password, and a wrong one.
    let err = ReplicationConnection::connect(&tcp(&src, "alice"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AuthenticationFailed, "{err}");
    let err = ReplicationConnection::connect(&tcp(&src, "alice").with_password("wrong"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AuthenticationFailed, "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "no secret in messages: {err}"
    );

    let admin = src.pool("postgres").await.unwrap();
    sqlx::query("ALTER ROLE alice REPLICATION")
        .execute(&admin)
        .await
        .unwrap();
    let mut conn = ReplicationConnection::connect(&params)
        .await
        .expect("SCRAM replication connection");
    conn.identify_system().await.unwrap();
    conn.close().await.unwrap();

    // Without a `replication` line in pg_hba.conf (the `all` database does not cover it).
    let hba = src.cluster.pgdata().join("pg_hba.conf");
    let text = std::fs::read_to_string(&hba).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !(l.starts_with("host") && l.contains("replication")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&hba, without).unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let err = ReplicationConnection::connect(&params).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::PermissionDenied, "{err}");
    assert!(
        err.hint
            .as_deref()
            .unwrap()
            .contains("host replication alice 127.0.0.1/32 scram-sha-256"),
        "{err}"
    );
}
