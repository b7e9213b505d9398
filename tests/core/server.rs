//! Monitored servers: add, check, remove on real servers; passwords in the keyring; bad input.
//! Tests that store a password need an OS keyring: `scripts/test` runs them inside a D-Bus
//! session with GNOME Keyring unlocked.

use crate::support::{add, api_on};
use pganalytics_core::api::{Empty, ServerAddRequest, ServerName};
use pganalytics_core::cluster::ClusterOptions;
use pganalytics_core::ErrorCode;
use sqlx::Row;

/// `server add` then `server check` report the real version and capabilities.
async fn add_and_check(major: u32) {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let target = pganalytics_testkit::pg_with(
        major,
        ClusterOptions::for_tests()
            .setting("archive_mode", "on")
            .setting("archive_command", "/bin/true"),
    )
    .await
    .unwrap();
    let summary = api
        .server_add(add("target", &target.url("postgres")))
        .await
        .expect("add");
    assert_eq!(summary.name, "target");
    assert!(!summary.password_in_keyring);

    let check = api
        .server_check(ServerName {
            name: "target".into(),
        })
        .await
        .expect("check");
    let pool = target.pool("postgres").await.unwrap();
    let expected: i32 = sqlx::query("SELECT current_setting('server_version_num')::int")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(check.server_version_num, expected);
    assert!(check.version.starts_with("PostgreSQL "));
    assert!(check.is_superuser && check.can_read_stats && check.can_replicate);
    let feature = |name: &str| {
        check
            .features
            .iter()
            .find(|f| f.feature == name)
            .unwrap()
            .ready
    };
    assert!(feature("engine_metrics"));
    assert!(feature("wal_archiving"), "archive_mode is on");
    assert!(!feature("incremental_backup"), "summarize_wal is off");
    let summarize = check
        .settings
        .iter()
        .find(|s| s.name == "summarize_wal")
        .unwrap();
    assert_eq!(
        summarize.value.is_some(),
        major >= 17,
        "summarize_wal exists from 17"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn add_and_check_pg13() {
    add_and_check(13).await
}

#[tokio::test(flavor = "multi_thread")]
async fn add_and_check_pg18() {
    add_and_check(18).await
}

/// The machine's own PostgreSQL 15 (Debian package, 127.0.0.1:5432, trust).
#[tokio::test(flavor = "multi_thread")]
async fn add_and_check_the_machines_own_postgres() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    api.server_add(add(
        "system",
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
    ))
    .await
    .expect("the machine's PostgreSQL on 127.0.0.1:5432 answers");
    let check = api
        .server_check(ServerName {
            name: "system".into(),
        })
        .await
        .unwrap();
    assert_eq!(check.server_version_num / 10000, 15);
    let list = api.server_list(Empty {}).await.unwrap();
    assert_eq!(list.len(), 1);
    let removed = api
        .server_remove(ServerName {
            name: "system".into(),
        })
        .await
        .unwrap();
    assert_eq!(removed.name, "system");
    assert!(api.server_list(Empty {}).await.unwrap().is_empty());
}

/// A password given in the DSN goes to the keyring, never into the repository, and is used
/// for later connections; removing the server removes it from the keyring.
#[tokio::test(flavor = "multi_thread")]
async fn password_moves_to_the_keyring() {
    let target =
        pganalytics_testkit::pg_with_login(16, "watcher", "S3cr#t pass", Some("pg_monitor"))
            .await
            .unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let port = target.cluster.port();

    let dsn =
        format!("host=127.0.0.1 port={port} user=watcher dbname=postgres password='S3cr#t pass'");
    let summary = api
        .server_add(add("secured", &dsn))
        .await
        .expect("add with password");
    assert!(summary.password_in_keyring);
    assert!(
        !summary.dsn.contains("S3cr#t"),
        "stored DSN has no password: {}",
        summary.dsn
    );

    let dump: String = sqlx::query("SELECT string_agg(t::text, ' ') FROM monitored_servers t")
        .fetch_one(api.repository().pool())
        .await
        .unwrap()
        .get(0);
    assert!(!dump.contains("S3cr#t"), "no password in the repository");

    let stored =
        pganalytics_core::secrets::get(&pganalytics_core::secrets::server_account(summary.id))
            .await
            .expect("keyring readable");
    assert_eq!(stored.as_deref(), Some("S3cr#t pass"));

    let check = api
        .server_check(ServerName {
            name: "secured".into(),
        })
        .await
        .expect("check uses the keyring");
    assert_eq!(check.current_user, "watcher");
    assert!(check.can_read_stats && !check.is_superuser && !check.can_replicate);
    let backup = check
        .features
        .iter()
        .find(|f| f.feature == "base_backup")
        .unwrap();
    assert!(!backup.ready);
    assert!(
        backup.detail.contains("REPLICATION"),
        "says what to grant: {}",
        backup.detail
    );

    api.server_remove(ServerName {
        name: "secured".into(),
    })
    .await
    .unwrap();
    let gone =
        pganalytics_core::secrets::get(&pganalytics_core::secrets::server_account(summary.id))
            .await
            .unwrap();
    assert_eq!(gone, None, "keyring entry removed with the server");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_password_is_reported_and_nothing_is_stored() {
    let target = pganalytics_testkit::pg_with_login(15, "app", "right", None)
        .await
        .unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let dsn = format!(
        "postgres://app:wrong@127.0.0.1:{}/postgres",
        target.cluster.port()
    );
    let err = api
        .server_add(add("app", &dsn))
        .await
        .expect_err("wrong password");
    assert_eq!(err.code, ErrorCode::AuthenticationFailed);
    assert!(
        !err.to_string().contains("wrong"),
        "no password in the message: {err}"
    );
    assert!(err.hint.unwrap().contains(".pgpass"));
    assert!(api.server_list(Empty {}).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_server_is_reported_and_nothing_is_stored() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let port = pganalytics_core::cluster::free_port().unwrap();
    let err = api
        .server_add(add(
            "down",
            &format!("host=127.0.0.1 port={port} user=postgres"),
        ))
        .await
        .expect_err("nothing listens");
    assert_eq!(err.code, ErrorCode::Unreachable);
    assert!(err.message.contains(&port.to_string()));
    assert!(api.server_list(Empty {}).await.unwrap().is_empty());

    // --skip-check registers it anyway (maintenance window); check then says it is down.
    api.server_add(ServerAddRequest {
        skip_check: Some(true),
        ..add("down", &format!("host=127.0.0.1 port={port} user=postgres"))
    })
    .await
    .unwrap();
    let err = api
        .server_check(ServerName {
            name: "down".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unreachable);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_names_and_dsns_change_nothing() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let good = repo.dsn("postgres");
    api.server_add(add("one", &good)).await.unwrap();

    let dup = api.server_add(add("one", &good)).await.unwrap_err();
    assert_eq!(dup.code, ErrorCode::AlreadyExists);

    let malformed = api.server_add(add("two", "host='oops")).await.unwrap_err();
    assert_eq!(malformed.code, ErrorCode::InvalidInput);
    assert!(malformed.message.contains("unterminated"), "{malformed}");
    let unknown_key = api
        .server_add(add("two", "hots=localhost"))
        .await
        .unwrap_err();
    assert_eq!(unknown_key.code, ErrorCode::InvalidInput);
    assert!(
        unknown_key.message.contains("hots"),
        "names the keyword: {unknown_key}"
    );

    let bad_name = api.server_add(add("no spaces", &good)).await.unwrap_err();
    assert_eq!(bad_name.code, ErrorCode::InvalidInput);

    let missing = api
        .server_check(ServerName {
            name: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);
    let missing = api
        .server_remove(ServerName {
            name: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);

    let names: Vec<String> = api
        .server_list(Empty {})
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["one".to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_12_cannot_be_monitored() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let old = pganalytics_testkit::pg(12).await.unwrap();
    let err = api
        .server_add(add("old", &old.dsn("postgres")))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UnsupportedVersion);
    assert!(api.server_list(Empty {}).await.unwrap().is_empty());
}

/// The desktop calls commands by name through `dispatch`; the same errors come back.
#[tokio::test(flavor = "multi_thread")]
async fn dispatch_by_name_matches_typed_calls() {
    let repo = pganalytics_testkit::pg(14).await.unwrap();
    let (api, _dir) = api_on(&repo).await;
    let added = api
        .dispatch(
            "server_add",
            serde_json::json!({ "name": "d", "dsn": repo.dsn("postgres") }),
        )
        .await
        .unwrap();
    assert_eq!(added["name"], "d");
    let list = api
        .dispatch("server_list", serde_json::Value::Null)
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let err = api
        .dispatch("server_check", serde_json::json!({ "name": "nope" }))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    let err = api
        .dispatch("no_such_command", serde_json::Value::Null)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    for name in pganalytics_core::api::COMMANDS {
        assert!(!name.is_empty());
    }
}
