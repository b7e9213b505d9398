//! Storage targets against real protocol servers on loopback (moto for S3,
//! gcp-storage-emulator for GCS, Azurite for Azure Blob) and a folder: add (with its probe),
//! check, list, remove; malformed URLs; unreachable endpoints; missing buckets; wrong keys;
//! credentials never in the repository, the audit log or a message.
//!
//! Tests that set credential variables hold [`ENV`] (nextest runs each test in its own
//! process; under `cargo test` they would otherwise see each other's variables).

use crate::support::api_on;
use pganalytics_core::api::{
    Api, Empty, StorageAddRequest, StorageKind, StorageName, StorageOptions,
};
use pganalytics_core::storage::credentials::keyring_account;
use pganalytics_core::ErrorCode;
use pganalytics_testkit::storage::{StorageServer, AZURITE_ACCOUNT, AZURITE_KEY};
use sqlx::Row;

static ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const AWS_KEY_ID: &str = "AKIAPGANALYTICSTEST1";
const AWS_SECRET: &str = "pga-secret-4f9c2b7e1d8a6c3b5e0f9a7d2c4b6e8f";

fn set_env(vars: &[(&str, Option<&str>)]) {
    for (k, v) in vars {
        match v {
            Some(v) => std::env::set_var(k, v),
            None => std::env::remove_var(k),
        }
    }
}

fn clear_credentials() {
    set_env(&[
        ("AWS_ACCESS_KEY_ID", None),
        ("AWS_SECRET_ACCESS_KEY", None),
        ("AWS_SESSION_TOKEN", None),
        ("GOOGLE_APPLICATION_CREDENTIALS", None),
        ("PGANALYTICS_GCS_CREDENTIALS", None),
        ("AZURE_STORAGE_ACCOUNT", None),
        ("AZURE_STORAGE_KEY", None),
        ("AZURE_STORAGE_SAS_TOKEN", None),
    ]);
}

fn add_req(name: &str, url: &str, options: StorageOptions) -> StorageAddRequest {
    StorageAddRequest {
        name: name.into(),
        url: url.into(),
        options,
        secret_from_env: None,
        skip_check: None,
    }
}

fn endpoint(e: String) -> StorageOptions {
    StorageOptions {
        endpoint: Some(e),
        ..Default::default()
    }
}

/// Every row of `storage_targets` and `audit_logs` as text: no secret may be in there.
async fn stored_text(api: &Api) -> String {
    let targets: Option<String> =
        sqlx::query("SELECT string_agg(t::text, ' ') FROM storage_targets t")
            .fetch_one(api.repository().pool())
            .await
            .unwrap()
            .get(0);
    let audit: Option<String> = sqlx::query("SELECT string_agg(a::text, ' ') FROM audit_logs a")
        .fetch_one(api.repository().pool())
        .await
        .unwrap()
        .get(0);
    format!(
        "{} {}",
        targets.unwrap_or_default(),
        audit.unwrap_or_default()
    )
}

/// Add (which probes), list, check, remove; returns the check's credential source.
async fn round_trip(api: &Api, req: StorageAddRequest, kind: StorageKind) -> String {
    let name = req.name.clone();
    let added = api.storage_add(req).await.unwrap();
    assert_eq!(added.kind, kind);
    let listed = api.storage_list(Empty {}).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, name);
    assert_eq!(listed[0].url, added.url);
    let check = api
        .storage_check(StorageName { name: name.clone() })
        .await
        .unwrap();
    let steps: Vec<&str> = check.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps, ["write", "read", "list", "delete"]);
    assert!(check.probe.starts_with(".pganalytics/probes/"));
    let removed = api
        .storage_remove(StorageName { name: name.clone() })
        .await
        .unwrap();
    assert_eq!(removed.id, added.id);
    assert!(api.storage_list(Empty {}).await.unwrap().is_empty());
    let again = api.storage_check(StorageName { name }).await.unwrap_err();
    assert_eq!(again.code, ErrorCode::NotFound);
    check.credentials
}

#[tokio::test(flavor = "multi_thread")]
async fn file_target_round_trip() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, dir) = api_on(&repo).await;
    let folder = dir.path().join("backups");
    std::fs::create_dir(&folder).unwrap();
    let url = format!("file://{}/", folder.display());
    let source = round_trip(
        &api,
        add_req("local", &url, Default::default()),
        StorageKind::File,
    )
    .await;
    assert_eq!(source, "none");
    // The probe is gone; only its (empty) folder remains.
    let probes = std::fs::read_dir(folder.join(".pganalytics/probes")).unwrap();
    assert_eq!(probes.count(), 0);

    // A folder that does not exist is named, and nothing is registered.
    let missing = format!("file://{}/nope", dir.path().display());
    let err = api
        .storage_add(add_req("gone", &missing, Default::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound, "{err}");
    assert!(err.message.contains("nope") && err.hint.is_some(), "{err}");
    // A file where a folder should be.
    std::fs::write(dir.path().join("plain"), b"x").unwrap();
    let err = api
        .storage_add(add_req(
            "plain",
            &format!("file://{}/plain", dir.path().display()),
            Default::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput, "{err}");
    assert!(api.storage_list(Empty {}).await.unwrap().is_empty());

    // The audit log holds both additions and the failures.
    let events: Vec<(String, String)> = sqlx::query(
        "SELECT event_type, outcome FROM audit_logs WHERE resource_type = 'storage_target' ORDER BY id",
    )
    .fetch_all(api.repository().pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert!(
        events.contains(&("storage.added".into(), "success".into())),
        "{events:?}"
    );
    assert!(
        events.contains(&("storage.removed".into(), "success".into())),
        "{events:?}"
    );
    assert!(
        events.contains(&("storage.added".into(), "failure".into())),
        "{events:?}"
    );
}

/// S3 with the keys copied into the keyring: the repository never sees them, later commands
/// need no environment, removing the target removes the keyring entry.
#[tokio::test(flavor = "multi_thread")]
async fn s3_target_round_trip_with_keys_in_the_keyring() {
    let _env = ENV.lock().await;
    let s3 = StorageServer::s3().unwrap();
    s3.create_s3_bucket("pga-backups").unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;

    clear_credentials();
    set_env(&[
        ("AWS_ACCESS_KEY_ID", Some(AWS_KEY_ID)),
        ("AWS_SECRET_ACCESS_KEY", Some(AWS_SECRET)),
    ]);
    let mut req = add_req("s3", "s3://pga-backups/prod/eu", endpoint(s3.endpoint()));
    req.secret_from_env = Some(true);
    let added = api.storage_add(req).await.unwrap();
    assert!(added.secret_in_keyring);
    assert_eq!(added.url, "s3://pga-backups/prod/eu");
    let entry = pganalytics_core::secrets::get(&keyring_account(added.id))
        .await
        .unwrap()
        .expect("keyring entry");
    assert!(entry.contains(AWS_SECRET));
    let stored = stored_text(&api).await;
    assert!(!stored.contains(AWS_SECRET), "no secret in the repository");

    clear_credentials();
    let check = api
        .storage_check(StorageName { name: "s3".into() })
        .await
        .unwrap();
    assert_eq!(check.credentials, "keyring");
    api.storage_remove(StorageName { name: "s3".into() })
        .await
        .unwrap();
    assert!(pganalytics_core::secrets::get(&keyring_account(added.id))
        .await
        .unwrap()
        .is_none());

    // With the keys in the environment instead.
    set_env(&[
        ("AWS_ACCESS_KEY_ID", Some(AWS_KEY_ID)),
        ("AWS_SECRET_ACCESS_KEY", Some(AWS_SECRET)),
    ]);
    let source = round_trip(
        &api,
        add_req("s3env", "s3://pga-backups", endpoint(s3.endpoint())),
        StorageKind::S3,
    )
    .await;
    assert_eq!(source, "environment");

    // No keys at all: said before any request, with the variables to set.
    clear_credentials();
    let err = api
        .storage_add(add_req(
            "nokeys",
            "s3://pga-backups",
            endpoint(s3.endpoint()),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AuthenticationFailed, "{err}");
    assert!(err.hint.as_deref().unwrap().contains("AWS_ACCESS_KEY_ID"));
    // Half a key pair.
    set_env(&[("AWS_ACCESS_KEY_ID", Some(AWS_KEY_ID))]);
    let err = api
        .storage_add(add_req("half", "s3://pga-backups", endpoint(s3.endpoint())))
        .await
        .unwrap_err();
    assert!(err.message.contains("AWS_SECRET_ACCESS_KEY"), "{err}");

    // A bucket that does not exist is named.
    set_env(&[("AWS_SECRET_ACCESS_KEY", Some(AWS_SECRET))]);
    let err = api
        .storage_add(add_req(
            "nobucket",
            "s3://no-such-bucket/x",
            endpoint(s3.endpoint()),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound, "{err}");
    assert!(err.message.contains("no-such-bucket"), "{err}");
    assert!(!err.to_string().contains(AWS_SECRET));
    assert!(api.storage_list(Empty {}).await.unwrap().is_empty());
    assert!(!stored_text(&api).await.contains(AWS_SECRET));
    clear_credentials();
}

/// moto checks no signature by default; with `INITIAL_NO_AUTH_ACTION_COUNT=0` it enforces
/// IAM, so any key we send is unknown to it: a real "wrong key" answer.
#[tokio::test(flavor = "multi_thread")]
async fn s3_wrong_key_is_refused_without_leaking_it() {
    let _env = ENV.lock().await;
    let s3 = StorageServer::s3_enforcing_auth().unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    clear_credentials();
    set_env(&[
        ("AWS_ACCESS_KEY_ID", Some(AWS_KEY_ID)),
        ("AWS_SECRET_ACCESS_KEY", Some(AWS_SECRET)),
    ]);
    let err = api
        .storage_add(add_req("s3", "s3://pga-backups", endpoint(s3.endpoint())))
        .await
        .unwrap_err();
    clear_credentials();
    assert_eq!(err.code, ErrorCode::AuthenticationFailed, "{err:?}");
    assert!(err.message.contains("write"), "names the step: {err}");
    assert!(
        err.message.contains("InvalidAccessKeyId"),
        "says what S3 answered: {err}"
    );
    assert!(err.hint.is_some());
    assert!(!err.to_string().contains(AWS_SECRET));
    assert!(api.storage_list(Empty {}).await.unwrap().is_empty());
    assert!(!stored_text(&api).await.contains(AWS_SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn gcs_target_round_trip() {
    let gcs = StorageServer::gcs("pga-gcs").unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let options = StorageOptions {
        endpoint: Some(gcs.endpoint()),
        anonymous: Some(true),
        ..Default::default()
    };
    let source = round_trip(
        &api,
        add_req("gcs", "gcs://pga-gcs/backups/x", options),
        StorageKind::Gcs,
    )
    .await;
    assert_eq!(source, "anonymous");
}

/// Azure with the key in the environment (Azurite's development account), then a wrong key.
#[tokio::test(flavor = "multi_thread")]
async fn azblob_target_round_trip_and_wrong_key() {
    let _env = ENV.lock().await;
    let az = StorageServer::azurite().unwrap();
    az.create_azure_container("pga-backups").unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    clear_credentials();
    set_env(&[("AZURE_STORAGE_KEY", Some(AZURITE_KEY))]);
    let options = StorageOptions {
        endpoint: Some(az.azure_endpoint()),
        account: Some(AZURITE_ACCOUNT.into()),
        ..Default::default()
    };
    let source = round_trip(
        &api,
        add_req("az", "azblob://pga-backups/prod", options.clone()),
        StorageKind::Azblob,
    )
    .await;
    assert_eq!(source, "environment");

    // A well-formed key that is not the account's.
    let wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3Jvbmc=";
    set_env(&[("AZURE_STORAGE_KEY", Some(wrong))]);
    let err = api
        .storage_add(add_req("az2", "azblob://pga-backups/prod", options.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AuthenticationFailed, "{err:?}");
    assert!(err.hint.as_deref().unwrap().contains("AZURE_STORAGE_KEY"));
    assert!(!err.to_string().contains(wrong));

    // A container that does not exist.
    set_env(&[("AZURE_STORAGE_KEY", Some(AZURITE_KEY))]);
    let err = api
        .storage_add(add_req("az3", "azblob://missing-container", options))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound, "{err:?}");
    assert!(err.message.contains("missing-container"), "{err}");
    clear_credentials();
    let stored = stored_text(&api).await;
    assert!(!stored.contains(AZURITE_KEY) && !stored.contains(wrong));
}

/// A closed port: `add` refuses at once with the endpoint named; `--skip-check` registers
/// and `check` then says the same.
#[tokio::test(flavor = "multi_thread")]
async fn unreachable_endpoint_is_named() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let options = StorageOptions {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        anonymous: Some(true),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let err = api
        .storage_add(add_req("down", "gcs://pga-bucket", options.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unreachable, "{err:?}");
    assert!(err.message.contains("gcs://pga-bucket"), "{err}");
    assert!(err.hint.as_deref().unwrap().contains("endpoint"));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(api.storage_list(Empty {}).await.unwrap().is_empty());

    let mut req = add_req("down", "s3://pga-bucket", options);
    req.options.anonymous = Some(true);
    req.skip_check = Some(true);
    api.storage_add(req).await.unwrap();
    let err = api
        .storage_check(StorageName {
            name: "down".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unreachable, "{err:?}");
    assert!(err.message.contains("write"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_urls_and_options_are_refused_with_hints() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let ep = |e: &str| StorageOptions {
        endpoint: Some(e.into()),
        ..Default::default()
    };
    let cases: Vec<(&str, &str, StorageOptions)> = vec![
        ("a", "", Default::default()),
        ("a", "/srv/backups", Default::default()),
        ("a", "ftp://host/x", Default::default()),
        ("a", "https://s3.amazonaws.com/bucket", Default::default()),
        ("a", "file://host/srv", Default::default()),
        ("a", "file://relative", Default::default()),
        ("a", "file:///srv/../etc", Default::default()),
        ("a", "s3://", ep("http://127.0.0.1:9")),
        ("a", "s3://Upper_Case", ep("http://127.0.0.1:9")),
        ("a", "s3://ab", ep("http://127.0.0.1:9")),
        ("a", "s3://bucket//x", ep("http://127.0.0.1:9")),
        ("a", "s3://bucket/x?region=eu", Default::default()),
        ("a", "s3://bucket/x", Default::default()),
        ("a", "s3://bucket/x", ep("not a url")),
        ("a", "s3://bucket/x", ep("ftp://host")),
        ("a", "azblob://bad--name", Default::default()),
        (
            "a",
            "gcs://bucket",
            StorageOptions {
                region: Some("eu".into()),
                ..Default::default()
            },
        ),
        (
            "a",
            "file:///srv",
            StorageOptions {
                account: Some("acct".into()),
                ..Default::default()
            },
        ),
        ("bad name", "file:///srv", Default::default()),
    ];
    for (name, url, options) in cases {
        let err = api
            .storage_add(add_req(name, url, options))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput, "{url}: {err:?}");
        assert!(err.hint.is_some(), "{url}: a hint");
    }
    // Credentials in a URL or endpoint are refused and never repeated.
    for (url, options) in [
        (
            "s3://AKIAX:hunter2secret@bucket/x",
            ep("http://127.0.0.1:9"),
        ),
        (
            "s3://bucket/x",
            ep("http://AKIAX:hunter2secret@127.0.0.1:9"),
        ),
        (
            "azblob://container",
            ep("http://127.0.0.1:9/acct?sig=hunter2secret"),
        ),
    ] {
        let err = api
            .storage_add(add_req("a", url, options))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput, "{url}: {err:?}");
        assert!(!err.to_string().contains("hunter2secret"), "{err}");
    }
    assert!(api.storage_list(Empty {}).await.unwrap().is_empty());
    assert!(!stored_text(&api).await.contains("hunter2secret"));
    // A duplicate name.
    let dir = pganalytics_testkit::temp_dir().unwrap();
    let url = format!("file://{}", dir.path().display());
    api.storage_add(add_req("dup", &url, Default::default()))
        .await
        .unwrap();
    let err = api
        .storage_add(add_req("dup", &url, Default::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AlreadyExists);
}

/// What the backup engine will use: streamed writes of objects larger than one piece
/// (S3 multipart, Azure blocks, GCS resumable uploads), read back intact, and a second write
/// of the same key refused where the store supports conditional writes.
#[tokio::test(flavor = "multi_thread")]
async fn large_objects_stream_to_every_kind() {
    let _env = ENV.lock().await;
    let s3 = StorageServer::s3().unwrap();
    s3.create_s3_bucket("pga-large").unwrap();
    let gcs = StorageServer::gcs("pga-large").unwrap();
    let az = StorageServer::azurite().unwrap();
    az.create_azure_container("pga-large").unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, dir) = api_on(&repo).await;
    let folder = dir.path().join("large");
    std::fs::create_dir(&folder).unwrap();
    clear_credentials();
    set_env(&[
        ("AWS_ACCESS_KEY_ID", Some(AWS_KEY_ID)),
        ("AWS_SECRET_ACCESS_KEY", Some(AWS_SECRET)),
        ("AZURE_STORAGE_KEY", Some(AZURITE_KEY)),
    ]);
    let targets = [
        (
            "file",
            format!("file://{}", folder.display()),
            StorageOptions::default(),
        ),
        (
            "s3",
            "s3://pga-large/p".to_string(),
            endpoint(s3.endpoint()),
        ),
        (
            "gcs",
            "gcs://pga-large/p".to_string(),
            StorageOptions {
                endpoint: Some(gcs.endpoint()),
                anonymous: Some(true),
                ..Default::default()
            },
        ),
        (
            "az",
            "azblob://pga-large/p".to_string(),
            StorageOptions {
                endpoint: Some(az.azure_endpoint()),
                account: Some(AZURITE_ACCOUNT.into()),
                ..Default::default()
            },
        ),
    ];
    // 20 MiB of varied bytes: three 8 MiB pieces.
    let data: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for (name, url, options) in targets {
        api.storage_add(add_req(name, &url, options)).await.unwrap();
        let target = pganalytics_core::storage::open(api.repository(), name)
            .await
            .unwrap();
        let key = pganalytics_core::storage::layout::backup_chunk(
            7_300_000_000_000_000_001,
            uuid::Uuid::new_v4(),
            "base",
            0,
        );
        let mut w = target.writer(&key).await.unwrap();
        for piece in data.chunks(3 * 1024 * 1024 + 17) {
            w.write(piece.to_vec()).await.unwrap();
        }
        w.close().await.unwrap();
        let read = target.op.read(&key).await.unwrap().to_vec();
        assert!(read == data, "{name}: read back differs");
        let meta = target.op.stat(&key).await.unwrap();
        assert_eq!(meta.content_length(), data.len() as u64, "{name}");
        // gcp-storage-emulator ignores the precondition (`ifGenerationMatch=0`) of simple
        // uploads; Google's service honours it.
        if target.op.info().capability().write_with_if_not_exists && name != "gcs" {
            let again = target.write_once(&key, b"x".to_vec()).await;
            assert!(again.is_err(), "{name}: an object is never overwritten");
        }
        target.op.delete(&key).await.unwrap();
    }
    clear_credentials();
}

/// A target that holds backups cannot be removed (its catalogue rows point at it).
#[tokio::test(flavor = "multi_thread")]
async fn a_target_holding_backups_is_not_removed() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, dir) = api_on(&repo).await;
    let url = format!("file://{}", dir.path().display());
    let target = api
        .storage_add(add_req("kept", &url, Default::default()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO backup_metadata (backup_name, backup_type, backup_status, source_database,
             retention_days, destination_type, created_at, storage_target_id)
         VALUES ('b1', 'full', 'failed', 'postgres', 7, 'file', now(), $1)",
    )
    .bind(target.id)
    .execute(api.repository().pool())
    .await
    .unwrap();
    let err = api
        .storage_remove(StorageName {
            name: "kept".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput, "{err:?}");
    assert!(err.hint.as_deref().unwrap().contains("prune"));
    assert_eq!(api.storage_list(Empty {}).await.unwrap().len(), 1);
}
