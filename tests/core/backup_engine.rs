//! The backup engine end to end against real servers and real stores: `backup run` of a
//! database with pgbench tables, a large object, TOAST, a second tablespace and an unlogged
//! table, on every major version, into a folder, S3 (moto), GCS (emulator) or Azure Blob
//! (Azurite); verify; restore into an empty folder; start the restored server and compare
//! every table with the source. Then the faults: a flipped bit, a wrong or missing key, a
//! non-empty target, interrupted backups, prune's rules.

use crate::support::api_on;
use pganalytics_core::api::{
    Api, AuditKeygenRequest, BackupId, BackupImportRequest, BackupKeygenRequest, BackupListRequest,
    BackupPruneRequest, BackupRestoreRequest, BackupRunRequest, BackupStatus, BackupVerifyRequest,
    CompressOn, Empty, ServerAddRequest, StorageAddRequest, StorageOptions,
};
use pganalytics_core::ErrorCode;
use pganalytics_testkit::storage::{StorageServer, AZURITE_ACCOUNT, AZURITE_KEY};
use pganalytics_testkit::TestCluster;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const MARKER: &str = "PGA-MARKER-7c1e9a4f-plaintext-must-not-be-stored";

/// Which store a round trip writes to.
#[derive(Clone, Copy, Debug)]
enum Store {
    Folder,
    S3,
    Gcs,
    Azure,
}

/// Tables and their md5 of ordered rows, plus the large object's md5.
async fn fingerprint(pool: &sqlx::PgPool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for table in [
        "pgbench_accounts",
        "pgbench_branches",
        "pgbench_tellers",
        "pgbench_history",
        "toasted",
        "elsewhere",
        "noise",
    ] {
        let md5: Option<String> = sqlx::query_scalar(&format!(
            "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
        ))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"));
        out.push((table.to_string(), md5.unwrap_or_default()));
    }
    let lo: String = sqlx::query_scalar("SELECT md5(lo_get(oid)) FROM pg_largeobject_metadata")
        .fetch_one(pool)
        .await
        .unwrap();
    out.push(("large object".into(), lo));
    out
}

/// A source server with every kind of data the issue names.
async fn source(major: u32) -> (TestCluster, sqlx::PgPool) {
    let src = pganalytics_testkit::pg(major).await.expect("cluster");
    let pool = src.pool("postgres").await.expect("pool");
    let spc = src.dir().join("spc");
    std::fs::create_dir(&spc).unwrap();
    src.cluster.account().own(&spc).unwrap();
    let pgbench = Path::new("/usr/lib/postgresql/15/bin/pgbench");
    let out = std::process::Command::new(pgbench)
        .args(["-i", "-s", "2", "-q", "-h", "127.0.0.1", "-U", "postgres"])
        .arg("-p")
        .arg(src.cluster.port().to_string())
        .arg("postgres")
        .output()
        .expect("run Debian's pgbench (postgresql-client-15)");
    assert!(
        out.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for sql in [
        format!("CREATE TABLESPACE extra LOCATION '{}'", spc.display()),
        "CREATE TABLE elsewhere TABLESPACE extra AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g".into(),
        // Values far above the TOAST threshold, barely compressible.
        "CREATE TABLE toasted AS SELECT g AS id, (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 400)) AS body FROM generate_series(1, 200) g".into(),
        format!("INSERT INTO toasted VALUES (0, '{MARKER}')"),
        "CREATE UNLOGGED TABLE scratch AS SELECT g FROM generate_series(1, 1000) g".into(),
        // ~30 MB of incompressible bytes, stored as they are (no TOAST compression).
        "CREATE TABLE noise (id int, b bytea)".into(),
        "ALTER TABLE noise ALTER b SET STORAGE EXTERNAL".into(),
        "INSERT INTO noise SELECT r.n, (SELECT decode(string_agg(md5(random()::text || r.n || s.i), ''), 'hex') FROM generate_series(1, 48000) AS s(i)) FROM generate_series(1, 40) AS r(n)".into(),
        "SELECT lo_from_bytea(0, convert_to(repeat('large object ', 50000), 'UTF8'))".into(),
        "INSERT INTO pgbench_history SELECT 1, 1, g, g, now() FROM generate_series(1, 500) g".into(),
    ] {
        sqlx::query(&sql).execute(&pool).await.expect(&sql);
    }
    (src, pool)
}

/// An Api whose repository lives in `src`, with the signing key and a backup key in files.
async fn api_with_keys(src: &TestCluster) -> (Api, tempfile::TempDir) {
    let (api, dir) = api_on(src).await;
    api.audit_keygen(AuditKeygenRequest {
        algorithm: Some("ed25519".into()),
        key_file: Some(dir.path().join("signing.pem").display().to_string()),
        checkpoints: None,
    })
    .await
    .expect("audit keygen");
    api.backup_keygen(BackupKeygenRequest {
        key_file: Some(dir.path().join("backup.key").display().to_string()),
        replace: None,
    })
    .await
    .expect("backup keygen");
    api.server_add(ServerAddRequest {
        name: "src".into(),
        dsn: src.dsn("postgres"),
        skip_check: None,
    })
    .await
    .expect("server add");
    (api, dir)
}

/// Register a target of `store`; returns the folder holding its objects when it is one.
async fn add_store(
    api: &Api,
    store: Store,
    dir: &Path,
    servers: &mut Vec<StorageServer>,
) -> Option<PathBuf> {
    let (url, options, folder) = match store {
        Store::Folder => {
            let folder = dir.join("store");
            std::fs::create_dir_all(&folder).unwrap();
            (
                format!("file://{}", folder.display()),
                StorageOptions::default(),
                Some(folder),
            )
        }
        Store::S3 => {
            let s3 = StorageServer::s3().unwrap();
            s3.create_s3_bucket("pga-backups").unwrap();
            // moto accepts any key pair; nextest gives each test its own process.
            std::env::set_var("AWS_ACCESS_KEY_ID", "AKIAPGANALYTICSTEST1");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "pga-test-secret");
            let options = StorageOptions {
                endpoint: Some(s3.endpoint()),
                ..Default::default()
            };
            servers.push(s3);
            ("s3://pga-backups/prod".into(), options, None)
        }
        Store::Gcs => {
            let gcs = StorageServer::gcs("pga-gcs").unwrap();
            let options = StorageOptions {
                endpoint: Some(gcs.endpoint()),
                anonymous: Some(true),
                ..Default::default()
            };
            servers.push(gcs);
            ("gcs://pga-gcs/backups".into(), options, None)
        }
        Store::Azure => {
            let az = StorageServer::azurite().unwrap();
            az.create_azure_container("pga-backups").unwrap();
            // nextest runs each test in its own process: this variable is ours alone.
            std::env::set_var("AZURE_STORAGE_KEY", AZURITE_KEY);
            let options = StorageOptions {
                endpoint: Some(az.azure_endpoint()),
                account: Some(AZURITE_ACCOUNT.into()),
                ..Default::default()
            };
            servers.push(az);
            ("azblob://pga-backups/prod".into(), options, None)
        }
    };
    api.storage_add(StorageAddRequest {
        name: "store".into(),
        url,
        options,
        secret_from_env: None,
        skip_check: None,
    })
    .await
    .expect("storage add");
    folder
}

fn run_req(encrypt: bool, compress: &str) -> BackupRunRequest {
    BackupRunRequest {
        server: "src".into(),
        storage: "store".into(),
        compress: Some(compress.into()),
        encrypt: Some(encrypt),
        retention_days: None,
        spread_checkpoint: None,
        compress_on: None,
    }
}

fn restore_req(id: uuid::Uuid, target: &Path, start: Option<bool>) -> BackupRestoreRequest {
    BackupRestoreRequest {
        id,
        target_dir: target.display().to_string(),
        start,
        port: None,
    }
}

fn verify_req(id: uuid::Uuid, restore_test: Option<bool>) -> BackupVerifyRequest {
    BackupVerifyRequest { id, restore_test }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// A pool on a restored server started by `backup restore --start`.
async fn restored_server(port: u16) -> sqlx::PgPool {
    sqlx::PgPool::connect_with(
        sqlx::postgres::PgConnectOptions::new_without_pgpass()
            .host("127.0.0.1")
            .port(port)
            .username("postgres")
            .database("postgres"),
    )
    .await
    .expect("connect to the restored server")
}

async fn round_trip(major: u32, store: Store) {
    let (src, pool) = source(major).await;
    let want = fingerprint(&pool).await;
    let (api, dir) = api_with_keys(&src).await;
    let mut servers = Vec::new();
    let folder = add_store(&api, store, dir.path(), &mut servers).await;

    let backup = api
        .backup_run(run_req(true, "zstd:3"))
        .await
        .expect("backup run");
    assert_eq!(backup.status, BackupStatus::Completed, "{backup:?}");
    assert!(backup.encrypted);
    assert!(backup.stored_size_bytes.unwrap() < backup.source_size_bytes.unwrap());
    assert_eq!(backup.server_version_num.unwrap() as u32 / 10_000, major);
    let detail = api.backup_show(BackupId { id: backup.id }).await.unwrap();
    assert_eq!(
        detail.archives.len(),
        2,
        "base and the tablespace: {:?}",
        detail.archives
    );
    assert!(detail.wal_start_segment.is_some() && detail.key_fingerprint.is_some());
    // 15+ servers built with zstd compress the archives themselves (`<name>.tar.zst`).
    let has_zstd: bool = sqlx::query_scalar(
        "SELECT COALESCE('zstd' = ANY(enumvals), false) FROM pg_settings
         WHERE name = 'wal_compression'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let server_side = major >= 15 && has_zstd;
    eprintln!("pg{major}: server-side zstd: {server_side}");
    assert!(
        detail
            .archives
            .iter()
            .all(|a| a.name.ends_with(".tar.zst") == server_side),
        "{:?}",
        detail.archives
    );
    if major == 15 {
        assert!(has_zstd, "Debian's PostgreSQL 15 is built with zstd");
    }
    let by = if server_side {
        CompressOn::Server
    } else {
        CompressOn::Client
    };
    assert_eq!(backup.compressed_on, Some(by), "where zstd ran is recorded");

    // Stored objects hold no plaintext of the marker row; the incompressible table went into
    // objects stored without compression.
    if let Some(folder) = &folder {
        let catalogue = files_under(folder)
            .into_iter()
            .find(|f| f.ends_with("catalogue.json"))
            .unwrap();
        let text = std::fs::read_to_string(catalogue).unwrap();
        assert!(text.contains("\"uncompressed\": true"), "{text}");
        let files = files_under(folder);
        assert!(files.len() > 4, "{files:?}");
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
                "{} holds the marker in plaintext",
                f.display()
            );
        }
    }

    let verified = api
        .backup_verify(verify_req(backup.id, None))
        .await
        .expect("verify");
    assert!(verified.intact, "{:?}", verified.problems);
    assert!(verified.manifest_files_checked > 100, "{verified:?}");

    let target = dir.path().join("restored");
    let restored = api
        .backup_restore(restore_req(backup.id, &target, Some(true)))
        .await
        .expect("restore");
    assert_eq!(restored.status, "completed");
    assert_eq!(restored.tablespace_dirs.len(), 1);
    let port = restored.started_port.expect("started");
    let copy = restored_server(port).await;
    assert_eq!(fingerprint(&copy).await, want);
    // An unlogged table comes back empty, as PostgreSQL defines.
    let scratch: i64 = sqlx::query_scalar("SELECT count(*) FROM scratch")
        .fetch_one(&copy)
        .await
        .unwrap();
    assert_eq!(scratch, 0);
    copy.close().await;
    pganalytics_core::backup::restore::stop(&target, major)
        .await
        .unwrap();
}

mod round_trip {
    use super::Store;
    #[tokio::test(flavor = "multi_thread")]
    async fn pg13_folder() {
        super::round_trip(13, Store::Folder).await
    }
    #[tokio::test(flavor = "multi_thread")]
    async fn pg14_s3() {
        super::round_trip(14, Store::S3).await
    }
    #[tokio::test(flavor = "multi_thread")]
    async fn pg15_folder() {
        super::round_trip(15, Store::Folder).await
    }
    #[tokio::test(flavor = "multi_thread")]
    async fn pg16_gcs() {
        super::round_trip(16, Store::Gcs).await
    }
    #[tokio::test(flavor = "multi_thread")]
    async fn pg17_azure() {
        super::round_trip(17, Store::Azure).await
    }
    #[tokio::test(flavor = "multi_thread")]
    async fn pg18_folder() {
        super::round_trip(18, Store::Folder).await
    }
}

/// A flipped bit: verify names the object, restore refuses and leaves the folder empty;
/// the restore test measures an RTO on an intact backup.
#[tokio::test(flavor = "multi_thread")]
async fn damage_is_named_and_restore_refuses() {
    let (src, _pool) = source(16).await;
    let (api, dir) = api_with_keys(&src).await;
    let folder = add_store(&api, Store::Folder, dir.path(), &mut Vec::new())
        .await
        .unwrap();
    let backup = api.backup_run(run_req(true, "zstd")).await.unwrap();

    let tested = api
        .backup_verify(verify_req(backup.id, Some(true)))
        .await
        .unwrap();
    assert!(tested.intact, "{:?}", tested.problems);
    assert!(tested.restore_test_seconds.unwrap() > 0.0);
    let shown = api.backup_show(BackupId { id: backup.id }).await.unwrap();
    assert!(shown.backup.verified && shown.backup.rto_seconds.is_some());

    let victim = files_under(&folder)
        .into_iter()
        .find(|f| f.display().to_string().contains("/data/base/00000001"))
        .expect("a second object of base.tar");
    let mut bytes = std::fs::read(&victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&victim, bytes).unwrap();

    let report = api
        .backup_verify(verify_req(backup.id, None))
        .await
        .unwrap();
    assert!(!report.intact);
    assert_eq!(report.problems[0].problem, "checksum_mismatch");
    assert!(victim
        .display()
        .to_string()
        .ends_with(&report.problems[0].object));
    assert!(
        !api.backup_show(BackupId { id: backup.id })
            .await
            .unwrap()
            .backup
            .verified
    );

    let target = dir.path().join("restored");
    let err = api
        .backup_restore(restore_req(backup.id, &target, None))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::VerificationFailed, "{err}");
    assert!(err.message.contains("data/base/00000001"), "{err}");
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "nothing left behind"
    );
    let restores = api
        .backup_show(BackupId { id: backup.id })
        .await
        .unwrap()
        .restores;
    assert_eq!(restores[0].status, "failed");

    // A replaced catalogue is caught by the repository's checksum.
    let catalogue = files_under(&folder)
        .into_iter()
        .find(|f| f.ends_with("catalogue.json"))
        .unwrap();
    let text = std::fs::read_to_string(&catalogue)
        .unwrap()
        .replace("\"full\"", "\"full\" ");
    std::fs::write(&catalogue, text).unwrap();
    let report = api
        .backup_verify(verify_req(backup.id, None))
        .await
        .unwrap();
    assert_eq!(
        report.problems[0].problem, "catalogue_changed",
        "{report:?}"
    );
}

/// Wrong or missing encryption key: a clear refusal, nothing written. A non-empty target is
/// refused before anything is read.
#[tokio::test(flavor = "multi_thread")]
async fn keys_and_targets_are_checked_first() {
    let (src, _pool) = source(15).await;
    let (api, dir) = api_with_keys(&src).await;
    add_store(&api, Store::Folder, dir.path(), &mut Vec::new()).await;
    let backup = api.backup_run(run_req(true, "zstd")).await.unwrap();
    let status = api.backup_key_status(Empty {}).await.unwrap();
    let first_key = status.key.clone().expect("the key is readable").fingerprint;
    assert_eq!(
        (status.opens, status.need_other_keys.len()),
        (1, 0),
        "{status:?}"
    );

    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("postmaster.pid"), "1").unwrap();
    let err = api
        .backup_restore(restore_req(backup.id, &busy, None))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(
        err.message.contains("not empty") && err.message.contains("postmaster.pid"),
        "{err}"
    );

    // Another key: refused, naming both fingerprints.
    api.backup_keygen(BackupKeygenRequest {
        key_file: Some(dir.path().join("other.key").display().to_string()),
        replace: Some(true),
    })
    .await
    .unwrap();
    let target = dir.path().join("t1");
    let err = api
        .backup_restore(restore_req(backup.id, &target, None))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AuthenticationFailed, "{err}");
    assert!(err.message.contains("cannot unlock"), "{err}");
    assert!(!target.exists(), "nothing written");
    // `backup key` says so before anyone needs a restore.
    let status = api.backup_key_status(Empty {}).await.unwrap();
    assert_eq!(status.opens, 0, "{status:?}");
    assert_eq!(status.need_other_keys.len(), 1, "{status:?}");
    assert_eq!(status.need_other_keys[0].fingerprint, first_key);
    assert_eq!(status.need_other_keys[0].backups, 1);

    // No key at all.
    std::fs::remove_file(dir.path().join("other.key")).unwrap();
    let err = api
        .backup_restore(restore_req(backup.id, &target, None))
        .await
        .unwrap_err();
    assert!(err.message.contains("needs the backup key"), "{err}");
    assert!(!target.exists());
    let status = api.backup_key_status(Empty {}).await.unwrap();
    assert!(status.key.is_none());
    assert!(
        status
            .problem
            .as_deref()
            .unwrap_or_default()
            .contains("other.key"),
        "{status:?}"
    );
    assert_eq!(status.need_other_keys[0].fingerprint, first_key);

    // Encrypting without a key is refused before anything is written.
    let err = api.backup_run(run_req(true, "zstd")).await.unwrap_err();
    assert!(err.hint.unwrap_or_default().contains("backup keygen"));
    let err = api.backup_run(run_req(false, "lz4")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let listed = api.backup_list(BackupListRequest::default()).await.unwrap();
    assert_eq!(listed.len(), 1, "refused runs leave no row: {listed:?}");

    // No public key to check the catalogue with: the refusal names the file and what to do.
    let config = dir.path().join("data").join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let gone = dir.path().join("gone.pem");
    // `audit keygen` wrote the exported public key's path there: point it at a missing file.
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("public_key = ") {
                format!("public_key = \"{}\"\n", gone.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert!(text.contains("gone.pem"), "{text}");
    std::fs::write(&config, text).unwrap();
    let err = api
        .backup_verify(verify_req(backup.id, None))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("no public key") && err.message.contains("gone.pem"),
        "{err}"
    );
    assert!(
        err.hint.unwrap_or_default().contains("export-public-key"),
        "the hint says how to get the key back"
    );
}

/// A backup whose task dies mid-stream is never listed as good; prune removes it and the
/// expired backups, never the newest good one.
#[tokio::test(flavor = "multi_thread")]
async fn interrupted_backups_fail_and_prune_keeps_the_newest() {
    let (src, _pool) = source(17).await;
    let (api, dir) = api_with_keys(&src).await;
    let folder = add_store(&api, Store::Folder, dir.path(), &mut Vec::new())
        .await
        .unwrap();
    let first = api.backup_run(run_req(false, "none")).await.unwrap();
    let second = api.backup_run(run_req(false, "zstd")).await.unwrap();

    // Abort a backup mid-way (its task is dropped, as when the process dies).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let a = api.clone();
    let task = tokio::spawn(async move {
        let progress = pganalytics_core::backup::engine::Progress::new(move |done, _| {
            if done > 4_000_000 {
                let _ = tx.try_send(());
            }
        });
        a.backup_run_with(run_req(false, "none"), &progress).await
    });
    rx.recv().await.expect("progress");
    task.abort();
    let _ = task.await;
    // The server ends the dead session (and frees its lock) a moment after the socket closes.
    let mut interrupted = None;
    for _ in 0..100 {
        let listed = api.backup_list(BackupListRequest::default()).await.unwrap();
        let b = listed
            .into_iter()
            .find(|b| b.id != first.id && b.id != second.id)
            .unwrap();
        if b.status != BackupStatus::Running {
            interrupted = Some(b);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let interrupted = interrupted.expect("the interrupted backup is reaped");
    assert_eq!(interrupted.status, BackupStatus::Failed, "{interrupted:?}");
    assert!(interrupted
        .failure_reason
        .as_deref()
        .unwrap()
        .contains("interrupted"));

    let dry = api
        .backup_prune(BackupPruneRequest {
            server: "src".into(),
            keep_full: Some(1),
            keep_days: None,
            dry_run: Some(true),
            only: None,
        })
        .await
        .unwrap();
    let mut gone: Vec<_> = dry.removed.iter().map(|r| r.id).collect();
    gone.sort();
    let mut expect = vec![first.id, interrupted.id];
    expect.sort();
    assert_eq!(gone, expect);
    let before = files_under(&folder).len();
    assert!(before > 0);
    // Confirming only part of a dry run's list removes only that part; the newest good
    // backup stays even when named.
    let partial = api
        .backup_prune(BackupPruneRequest {
            server: "src".into(),
            keep_full: Some(1),
            keep_days: None,
            dry_run: None,
            only: Some(vec![interrupted.id, second.id]),
        })
        .await
        .unwrap();
    let removed: Vec<_> = partial.removed.iter().map(|r| r.id).collect();
    assert_eq!(removed, vec![interrupted.id]);
    assert_eq!(partial.kept, 2);
    let pruned = api
        .backup_prune(BackupPruneRequest {
            server: "src".into(),
            keep_full: Some(1),
            keep_days: None,
            dry_run: None,
            only: None,
        })
        .await
        .unwrap();
    let removed: Vec<_> = pruned.removed.iter().map(|r| r.id).collect();
    assert_eq!(removed, vec![first.id]);
    assert_eq!(pruned.kept, 1);
    assert!(files_under(&folder).len() < before);
    assert!(files_under(&folder)
        .iter()
        .all(|f| f.display().to_string().contains(&second.id.to_string())));
    // The last good backup survives even `--keep-days 0`.
    let again = api
        .backup_prune(BackupPruneRequest {
            server: "src".into(),
            keep_full: None,
            keep_days: Some(0),
            dry_run: None,
            only: None,
        })
        .await
        .unwrap();
    assert!(again.removed.is_empty());
    let verified = api
        .backup_verify(verify_req(second.id, None))
        .await
        .unwrap();
    assert!(verified.intact);
}

/// The storage server goes away mid-upload: the backup fails with the store named.
#[tokio::test(flavor = "multi_thread")]
async fn storage_lost_mid_upload_fails_the_backup() {
    let (src, _pool) = source(15).await;
    let (api, dir) = api_with_keys(&src).await;
    let mut servers = Vec::new();
    add_store(&api, Store::S3, dir.path(), &mut servers).await;
    let s3 = servers.pop().unwrap();
    let stop = std::sync::Mutex::new(Some(s3));
    let progress = pganalytics_core::backup::engine::Progress::new(move |done, _| {
        if done > 2_000_000 {
            if let Ok(mut s) = stop.lock() {
                s.take(); // dropping the server kills it
            }
        }
    });
    let err = api
        .backup_run_with(run_req(false, "none"), &progress)
        .await
        .unwrap_err();
    assert!(
        err.message.contains("s3://pga-backups/prod") || err.message.contains("127.0.0.1"),
        "{err}"
    );
    let listed = api.backup_list(BackupListRequest::default()).await.unwrap();
    assert_eq!(listed[0].status, BackupStatus::Failed);
    assert!(listed[0].failure_reason.is_some());
}

/// A store that hangs for longer than the server's `wal_sender_timeout` while WAL keeps
/// coming: the WAL stream waits for its uploads but keeps telling the server it is alive, so
/// the connection is not cut and the backup completes and verifies.
#[tokio::test(flavor = "multi_thread")]
async fn wal_stream_survives_a_store_that_hangs() {
    let (src, pool) = source(15).await;
    for sql in [
        "ALTER SYSTEM SET wal_sender_timeout = '1s'",
        "SELECT pg_reload_conf()",
    ] {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
    let (api, dir) = api_with_keys(&src).await;
    let mut servers = Vec::new();
    add_store(&api, Store::S3, dir.path(), &mut servers).await;
    let s3 = std::sync::Arc::new(servers.pop().unwrap());
    // New WAL segments all along: each switch completes one the stream must store.
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let wal = tokio::spawn({
        let (pool, writing) = (pool.clone(), writing.clone());
        async move {
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                sqlx::query("INSERT INTO pgbench_history SELECT 1, 1, 1, 1, now()")
                    .execute(&pool)
                    .await
                    .unwrap();
                sqlx::query("SELECT pg_switch_wal()")
                    .execute(&pool)
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    });
    let frozen = std::sync::Once::new();
    let progress = pganalytics_core::backup::engine::Progress::new({
        let s3 = s3.clone();
        move |done, _| {
            if done > 2_000_000 {
                frozen.call_once(|| {
                    let s3 = s3.clone();
                    std::thread::spawn(move || {
                        s3.freeze(true).unwrap();
                        std::thread::sleep(std::time::Duration::from_secs(4));
                        s3.freeze(false).unwrap();
                    });
                });
            }
        }
    });
    let outcome = api.backup_run_with(run_req(true, "zstd"), &progress).await;
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    wal.await.unwrap();
    let backup = outcome.unwrap_or_else(|e| {
        panic!(
            "the backup did not survive a store that hangs for 4 s: {e}\n{}",
            std::fs::read_to_string(src.cluster.log_file()).unwrap_or_default()
        )
    });
    assert_eq!(backup.status, BackupStatus::Completed, "{backup:?}");
    let detail = api.backup_show(BackupId { id: backup.id }).await.unwrap();
    let (first, last) = (
        detail.wal_start_segment.clone().unwrap(),
        detail.wal_stop_segment.clone().unwrap(),
    );
    assert!(
        last > first,
        "WAL kept coming during the backup: {first}..{last}"
    );
    let verified = api
        .backup_verify(verify_req(backup.id, None))
        .await
        .unwrap();
    assert!(verified.intact, "{:?}", verified.problems);
}

/// The repository is lost: a new installation with copies of the public key and the backup key
/// imports the backups from the store (only catalogues signed by that key), with the verdict
/// of their last verification (only records signed by that key), restores one and gets the
/// same data back.
#[tokio::test(flavor = "multi_thread")]
async fn backups_are_imported_into_a_new_repository_and_restored() {
    let (src, pool) = source(15).await;
    let want = fingerprint(&pool).await;
    let (old, old_dir) = api_with_keys(&src).await;
    let folder = add_store(&old, Store::Folder, old_dir.path(), &mut Vec::new())
        .await
        .unwrap();
    let backup = old
        .backup_run(BackupRunRequest {
            retention_days: Some(9),
            ..run_req(true, "zstd")
        })
        .await
        .unwrap();

    // A forged backup beside it: the real one's objects under another id, catalogue edited.
    let real_dir = files_under(&folder)
        .into_iter()
        .find(|f| f.ends_with("catalogue.json"))
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    // Verified twice on the old installation, with a restore test and then without: each
    // signed verdict is kept beside the catalogue.
    for restore_test in [Some(true), None] {
        let verdict = old
            .backup_verify(verify_req(backup.id, restore_test))
            .await
            .unwrap();
        assert!(verdict.intact, "{:?}", verdict.problems);
    }
    let before = old
        .backup_show(BackupId { id: backup.id })
        .await
        .unwrap()
        .backup;
    let verified_at = before.verified_at.expect("verified");
    assert!(before.rto_seconds.is_some(), "{before:?}");
    let records: Vec<_> = std::fs::read_dir(real_dir.join("verifications"))
        .expect("a verifications folder beside the catalogue")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(records.len(), 4, "{records:?}");
    let record = records
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    // A forged verdict saying the backup is damaged, under the real record's signature.
    let forged_record = |ext: &str| {
        real_dir
            .join("verifications")
            .join(format!("29991231T000000.000000Z.{ext}"))
    };
    let text = std::fs::read_to_string(record).unwrap();
    assert!(text.contains("\"intact\": true"), "{text}");
    std::fs::write(
        forged_record("json"),
        text.replace("\"intact\": true", "\"intact\": false"),
    )
    .unwrap();
    std::fs::copy(record.with_extension("sig"), forged_record("sig")).unwrap();

    let forged_id = uuid::Uuid::new_v4();
    let forged_dir = real_dir.with_file_name(forged_id.to_string());
    std::fs::create_dir_all(&forged_dir).unwrap();
    for name in ["catalogue.json", "catalogue.sig"] {
        std::fs::copy(real_dir.join(name), forged_dir.join(name)).unwrap();
    }
    let text = std::fs::read_to_string(forged_dir.join("catalogue.json")).unwrap();
    std::fs::write(
        forged_dir.join("catalogue.json"),
        text.replace(&backup.id.to_string(), &forged_id.to_string()),
    )
    .unwrap();

    // The new installation: its own repository, the copied keys named in its config.
    let (new, new_dir) = crate::support::api_on(&src).await;
    let config = new_dir.path().join("data").join("config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "[audit]\npublic_key = \"{}\"\n\n[backup]\nkey_file = \"{}\"\n",
            old_dir
                .path()
                .join("data")
                .join("audit-public-key.pem")
                .display(),
            old_dir.path().join("backup.key").display()
        ),
    )
    .unwrap();
    add_store(&new, Store::Folder, old_dir.path(), &mut Vec::new()).await;
    let import = || {
        new.backup_import(BackupImportRequest {
            storage: "store".into(),
            server: None,
            retention_days: None,
            public_key: None,
        })
    };
    let result = import().await.unwrap();
    assert_eq!(result.imported.len(), 1, "{result:?}");
    assert_eq!(result.imported[0].id, backup.id);
    assert_eq!(result.imported[0].status, BackupStatus::Completed);
    assert_eq!(
        result.imported[0].retention_days, 9,
        "the retention it was taken with"
    );
    assert_eq!(
        (
            result.imported[0].compression.as_deref(),
            result.imported[0].compressed_on
        ),
        (backup.compression.as_deref(), backup.compressed_on),
        "how it was compressed, and where"
    );
    assert!(backup.compressed_on.is_some());
    assert_eq!(
        (
            result.imported[0].verified,
            result.imported[0].verified_at,
            result.imported[0].rto_seconds
        ),
        (true, Some(verified_at), before.rto_seconds),
        "the newest verdict signed by the key, with the restore time measured before it"
    );
    assert_eq!(result.refused.len(), 2, "{result:?}");
    let refused_catalogue = result.refused.iter().find(|r| r.backup_id == forged_id);
    assert!(
        refused_catalogue.is_some_and(|r| r.problem.contains("signature")),
        "{result:?}"
    );
    let refused_record = result.refused.iter().find(|r| r.backup_id == backup.id);
    assert!(
        refused_record.is_some_and(|r| r
            .object
            .ends_with("verifications/29991231T000000.000000Z.json")
            && r.problem.contains("signature")),
        "{result:?}"
    );
    let again = import().await.unwrap();
    assert_eq!((again.imported.len(), again.already_recorded), (0, 1));

    let verified = new
        .backup_verify(verify_req(backup.id, None))
        .await
        .unwrap();
    assert!(verified.intact, "{:?}", verified.problems);
    let target = new_dir.path().join("restored");
    let restored = new
        .backup_restore(restore_req(backup.id, &target, Some(true)))
        .await
        .expect("restore from the imported record");
    let port = restored.started_port.expect("started");
    let copy = restored_server(port).await;
    assert_eq!(fingerprint(&copy).await, want);
    copy.close().await;
    pganalytics_core::backup::restore::stop(&target, 15)
        .await
        .unwrap();
}

/// A server without WAL senders: the message names the setting.
#[tokio::test(flavor = "multi_thread")]
async fn server_not_set_up_for_replication_is_named() {
    let src = pganalytics_testkit::pg_with(
        15,
        pganalytics_core::cluster::ClusterOptions::for_tests().setting("max_wal_senders", "0"),
    )
    .await
    .unwrap();
    let (api, dir) = api_with_keys(&src).await;
    add_store(&api, Store::Folder, dir.path(), &mut Vec::new()).await;
    let err = api.backup_run(run_req(false, "zstd")).await.unwrap_err();
    assert!(
        format!("{err} {}", err.hint.clone().unwrap_or_default()).contains("max_wal_senders"),
        "{err}"
    );
}

/// Unmounts a file system mounted for a test on drop, also when the test fails.
struct Mounted(PathBuf);

/// An 8 MB file system at `dir/small`. Needs root (the test suite runs as root).
fn mount_small_disk(dir: &Path) -> Mounted {
    mount(dir, "small", &["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
}

/// `mount ARGS DIR/NAME`; unmounted on drop. Needs root (the test suite runs as root).
fn mount(dir: &Path, name: &str, args: &[&str]) -> Mounted {
    let at = dir.join(name);
    std::fs::create_dir(&at).unwrap();
    let status = std::process::Command::new("mount")
        .args(args)
        .arg(&at)
        .status()
        .expect("run mount");
    assert!(status.success(), "mount {args:?} needs root");
    Mounted(at)
}

/// A file system that refuses direct I/O (ramfs says EINVAL at open, after creating the file,
/// like some NFS and FUSE mounts): backup objects stored there and files restored there are
/// written through the page cache instead, and the round trip still holds.
#[tokio::test(flavor = "multi_thread")]
async fn file_systems_without_direct_io_get_ordinary_writes() {
    let (src, pool) = source(15).await;
    let want = fingerprint(&pool).await;
    let (api, dir) = api_with_keys(&src).await;
    let ram = mount(dir.path(), "ram", &["-t", "ramfs", "ramfs"]);
    let probe = ram.0.join("probe");
    let refused = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::fcntl::OFlag::O_DIRECT.bits())
        .open(&probe)
        .expect_err("ramfs refuses O_DIRECT");
    assert_eq!(refused.raw_os_error(), Some(nix::libc::EINVAL), "{refused}");
    std::fs::remove_file(&probe).unwrap();

    let store = ram.0.join("store");
    std::fs::create_dir(&store).unwrap();
    add_store(&api, Store::Folder, &store, &mut Vec::new()).await;
    let backup = api.backup_run(run_req(true, "zstd")).await.unwrap();
    assert_eq!(backup.status, BackupStatus::Completed, "{backup:?}");
    assert!(files_under(&store).len() > 4);
    let verified = api
        .backup_verify(verify_req(backup.id, None))
        .await
        .unwrap();
    assert!(verified.intact, "{:?}", verified.problems);

    let target = ram.0.join("restored");
    let restored = api
        .backup_restore(restore_req(backup.id, &target, Some(true)))
        .await
        .unwrap();
    assert_eq!(restored.status, "completed");
    let copy = restored_server(restored.started_port.expect("started")).await;
    assert_eq!(fingerprint(&copy).await, want);
    copy.close().await;
    pganalytics_core::backup::restore::stop(&target, 15)
        .await
        .unwrap();
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The target's file system fills up during the restore: said plainly, and what was written
/// is removed. Needs root to mount a small tmpfs (the test suite runs as root).
#[tokio::test(flavor = "multi_thread")]
async fn full_disk_during_restore_is_said_and_cleaned_up() {
    let (src, _pool) = source(16).await;
    let (api, dir) = api_with_keys(&src).await;
    add_store(&api, Store::Folder, dir.path(), &mut Vec::new()).await;
    let backup = api.backup_run(run_req(false, "zstd")).await.unwrap();

    let small = mount_small_disk(dir.path());
    let target = small.0.join("pgdata");
    let err = api
        .backup_restore(restore_req(backup.id, &target, None))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::DataDirUnusable, "{err}");
    assert!(err.message.contains("is full"), "{err}");
    assert!(err.hint.unwrap_or_default().contains("MB"));
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "what was written is removed"
    );
    let restores = api
        .backup_show(BackupId { id: backup.id })
        .await
        .unwrap()
        .restores;
    assert_eq!(restores[0].status, "failed");
}

/// A local target's file system fills up during the backup: the error says so and what to
/// do, the backup is recorded failed with that reason, and its objects are removed.
#[tokio::test(flavor = "multi_thread")]
async fn full_disk_during_backup_is_said_and_cleaned_up() {
    let (src, _pool) = source(16).await;
    let (api, dir) = api_with_keys(&src).await;
    let small = mount_small_disk(dir.path());
    let store = add_store(&api, Store::Folder, &small.0, &mut Vec::new())
        .await
        .unwrap();
    let err = api.backup_run(run_req(false, "none")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::DataDirUnusable, "{err}");
    assert!(err.message.contains("is full"), "{err}");
    // The system's own words, not the storage library's framing around them.
    assert!(err.message.contains("(No space left on device"), "{err}");
    assert!(!err.message.contains("Unexpected (permanent)"), "{err}");
    assert!(
        err.hint.clone().unwrap_or_default().contains("free space"),
        "{err}"
    );
    let listed = api.backup_list(Default::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, BackupStatus::Failed);
    let reason = listed[0].failure_reason.clone().unwrap_or_default();
    assert!(reason.contains("is full"), "{reason}");
    let files = files_under(&store);
    assert!(files.is_empty(), "objects left behind: {files:?}");
}

/// The backup key in the OS keyring: one entry per installation, so two installations of one
/// OS user each get their own; a second keygen in one installation is refused.
#[tokio::test(flavor = "multi_thread")]
async fn keyring_backup_keys_are_per_installation() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (first, _d1) = api_on(&repo).await;
    let (second, _d2) = api_on(&repo).await;
    let a = first
        .backup_keygen(BackupKeygenRequest::default())
        .await
        .expect("keygen in the keyring");
    let b = second
        .backup_keygen(BackupKeygenRequest::default())
        .await
        .expect("a second installation's keygen");
    assert!(a.location.starts_with("keyring entry"), "{a:?}");
    assert_ne!(a.location, b.location);
    assert_ne!(a.fingerprint, b.fingerprint);
    let err = first
        .backup_keygen(BackupKeygenRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AlreadyExists);
    assert!(err.message.contains(&a.fingerprint), "{err}");
}

/// A DSN that demands TLS is refused by a server without it instead of connecting in the
/// clear; once the server has TLS (and refuses anything else), a backup over `verify-full`
/// completes and verifies — the base backup, the WAL stream beside it and the SQL connection
/// all encrypted.
#[tokio::test(flavor = "multi_thread")]
async fn backups_use_tls_as_the_dsn_says() {
    let src = pganalytics_testkit::pg(15).await.unwrap();
    let (api, dir) = api_on(&src).await;
    api.audit_keygen(AuditKeygenRequest {
        algorithm: Some("ed25519".into()),
        key_file: Some(dir.path().join("signing.pem").display().to_string()),
        checkpoints: None,
    })
    .await
    .unwrap();
    api.server_add(ServerAddRequest {
        name: "src".into(),
        dsn: format!("{} sslmode=require", src.dsn("postgres")),
        skip_check: Some(true),
    })
    .await
    .unwrap();
    add_store(&api, Store::Folder, dir.path(), &mut Vec::new()).await;
    let err = api.backup_run(run_req(false, "zstd")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unreachable, "{err}");
    assert!(err.message.contains("does not accept TLS"), "{err}");
    assert!(err.message.contains("sslmode=require"), "{err}");
    let listed = api.backup_list(BackupListRequest::default()).await.unwrap();
    assert!(listed.is_empty(), "nothing recorded: {listed:?}");

    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    crate::backup::make_certificates(&certs);
    crate::backup::require_tls(&src, &certs).await;
    api.server_add(ServerAddRequest {
        name: "tls".into(),
        dsn: format!(
            "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
            src.cluster.port(),
            certs.join("ca.crt").display()
        ),
        skip_check: None,
    })
    .await
    .unwrap();
    let backup = api
        .backup_run(BackupRunRequest {
            server: "tls".into(),
            ..run_req(false, "zstd")
        })
        .await
        .unwrap();
    assert_eq!(backup.status, BackupStatus::Completed);
    let verified = api
        .backup_verify(verify_req(backup.id, None))
        .await
        .unwrap();
    assert!(verified.intact, "{verified:?}");
}

/// `--compress-on client` keeps zstd off a server that could run it (the archives arrive
/// as plain tar and are compressed here); `--compress-on server` refuses, before anything is
/// recorded, a server that cannot (14).
#[tokio::test(flavor = "multi_thread")]
async fn compression_runs_where_asked() {
    let (src, _pool) = source(15).await;
    let (api, dir) = api_with_keys(&src).await;
    add_store(&api, Store::Folder, dir.path(), &mut Vec::new()).await;
    let here = api
        .backup_run(BackupRunRequest {
            compress_on: Some(CompressOn::Client),
            ..run_req(false, "zstd")
        })
        .await
        .unwrap();
    let detail = api.backup_show(BackupId { id: here.id }).await.unwrap();
    assert!(
        detail.archives.iter().all(|a| a.name.ends_with(".tar")),
        "{:?}",
        detail.archives
    );
    assert!(here.stored_size_bytes.unwrap() < here.source_size_bytes.unwrap());
    assert_eq!(here.compressed_on, Some(CompressOn::Client));
    let verified = api.backup_verify(verify_req(here.id, None)).await.unwrap();
    assert!(verified.intact, "{verified:?}");
    // Server-side compression of an uncompressed backup is a contradiction, said as one.
    let err = api
        .backup_run(BackupRunRequest {
            compress_on: Some(CompressOn::Server),
            ..run_req(false, "none")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput, "{err}");
    assert!(err.message.contains("--compress none"), "{err}");

    let (old, _pool) = source(14).await;
    let (api, dir) = api_with_keys(&old).await;
    add_store(&api, Store::Folder, dir.path(), &mut Vec::new()).await;
    let err = api
        .backup_run(BackupRunRequest {
            compress_on: Some(CompressOn::Server),
            ..run_req(false, "zstd")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput, "{err}");
    assert!(err.message.contains("PostgreSQL 14"), "{err}");
    assert!(err.hint.unwrap().contains("--compress-on auto"));
    let listed = api.backup_list(BackupListRequest::default()).await.unwrap();
    assert!(listed.is_empty(), "nothing recorded: {listed:?}");
}

/// `--compress-on auto` lets the server compress until a backup of it barely compresses;
/// the next backup then compresses here, where pieces that do not shrink are stored as they
/// are and the server's CPUs are spared.
#[tokio::test(flavor = "multi_thread")]
async fn auto_compresses_here_after_a_backup_that_barely_compressed() {
    let (src, pool) = source(15).await;
    let (api, dir) = api_with_keys(&src).await;
    add_store(&api, Store::Folder, dir.path(), &mut Vec::new()).await;
    let first = api.backup_run(run_req(false, "zstd")).await.unwrap();
    assert_eq!(first.compressed_on, Some(CompressOn::Server));
    assert!(first.compression_ratio.unwrap() >= 2.0, "{first:?}");
    // 64 MB of hash output (random to zstd), stored out of line and uncompressed by TOAST:
    // more than the rest of the cluster, so the whole barely compresses.
    sqlx::query("CREATE TABLE hashes (b bytea)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE hashes ALTER COLUMN b SET STORAGE EXTERNAL")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO hashes SELECT (SELECT string_agg(sha256(int8send(i * 64 + j)), ''::bytea)
                                   FROM generate_series(0, 63) j)
         FROM generate_series(1, 32768) i",
    )
    .execute(&pool)
    .await
    .unwrap();
    let second = api.backup_run(run_req(false, "zstd")).await.unwrap();
    assert_eq!(
        second.compressed_on,
        Some(CompressOn::Server),
        "the previous backup compressed well"
    );
    assert!(second.compression_ratio.unwrap() < 2.0, "{second:?}");
    let third = api.backup_run(run_req(false, "zstd")).await.unwrap();
    assert_eq!(
        third.compressed_on,
        Some(CompressOn::Client),
        "the previous backup barely compressed"
    );
    let verified = api.backup_verify(verify_req(third.id, None)).await.unwrap();
    assert!(verified.intact, "{verified:?}");
    // Asked for explicitly, the server still compresses.
    let asked = api
        .backup_run(BackupRunRequest {
            compress_on: Some(CompressOn::Server),
            ..run_req(false, "zstd")
        })
        .await
        .unwrap();
    assert_eq!(asked.compressed_on, Some(CompressOn::Server));
    let plain = api.backup_run(run_req(false, "none")).await.unwrap();
    assert_eq!(plain.compressed_on, None);
}

/// A server whose configuration lived outside its data folder (Debian's /etc layout) is
/// restored without it; `--start` writes minimal files where they are missing and starts.
#[tokio::test(flavor = "multi_thread")]
async fn restored_copy_without_configuration_files_still_starts() {
    let (src, _pool) = source(14).await;
    let (api, dir) = api_with_keys(&src).await;
    add_store(&api, Store::Folder, dir.path(), &mut Vec::new()).await;
    let backup = api.backup_run(run_req(false, "zstd")).await.unwrap();
    let target = dir.path().join("copy");
    api.backup_restore(restore_req(backup.id, &target, None))
        .await
        .unwrap();
    for f in [
        "postgresql.conf",
        "pg_hba.conf",
        "pg_ident.conf",
        "postgresql.auto.conf",
    ] {
        let _ = std::fs::remove_file(target.join(f));
    }
    let port = pganalytics_core::backup::restore::start(&target, 14, None)
        .await
        .expect("starts with the written minimal configuration");
    assert!(std::fs::read_to_string(target.join("postgresql.conf"))
        .unwrap()
        .contains("pgAnalytics"));
    // Started means pg_ctl -w saw it accept connections; it listens where we said.
    assert!(target.join(format!(".s.PGSQL.{port}")).exists());
    pganalytics_core::backup::restore::stop(&target, 14)
        .await
        .unwrap();
}

/// A restore whose task dies mid-way is not left `running`: it is reaped as failed
/// (interrupted), and says the folder may hold a partial restore.
#[tokio::test(flavor = "multi_thread")]
async fn interrupted_restore_is_reaped() {
    let (src, _pool) = source(16).await;
    let (api, dir) = api_with_keys(&src).await;
    add_store(&api, Store::Folder, dir.path(), &mut Vec::new()).await;
    let backup = api.backup_run(run_req(false, "none")).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let a = api.clone();
    let target = dir.path().join("partial");
    let req = restore_req(backup.id, &target, None);
    let task = tokio::spawn(async move {
        let progress = pganalytics_core::backup::engine::Progress::new(move |done, _| {
            if done > 4_000_000 {
                let _ = tx.try_send(());
            }
        });
        a.backup_restore_with(req, &progress).await
    });
    rx.recv().await.expect("progress");
    task.abort();
    let _ = task.await;
    let mut last = None;
    for _ in 0..100 {
        let restores = api
            .backup_show(BackupId { id: backup.id })
            .await
            .unwrap()
            .restores;
        if restores[0].status != "running" {
            last = Some(restores[0].clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let reaped = last.expect("the interrupted restore is reaped");
    assert_eq!(reaped.status, "failed");
    assert!(reaped
        .failure_reason
        .as_deref()
        .unwrap()
        .contains("interrupted"));
}
