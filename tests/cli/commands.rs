//! Subcommands, exit statuses, JSON output and every bad input of the foundation issue.

use crate::support::Env;

#[test]
fn usage_errors_exit_2() {
    let env = Env::embedded();
    let run = env.run(&["server", "frobnicate"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = env.run(&["server", "add", "x"]);
    assert_eq!(
        run.code, 2,
        "missing --dsn is a usage error: {}",
        run.stderr
    );
    assert!(run.stderr.contains("--dsn"));
}

#[tokio::test(flavor = "multi_thread")]
async fn server_add_list_check_remove() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let target = pganalytics_testkit::pg(18).await.unwrap();

    let run = env
        .run(&["server", "add", "db18", "--dsn", &target.url("postgres")])
        .ok();
    assert!(run.stdout.contains("added server db18"));

    let list = env.run(&["--json", "server", "list"]).ok().json();
    assert_eq!(list[0]["name"], "db18");
    assert_eq!(list[0]["password_in_keyring"], false);

    let check = env.run(&["--json", "server", "check", "db18"]).ok().json();
    assert_eq!(check["server_version_num"].as_i64().unwrap() / 10000, 18);
    let text = env.run(&["server", "check", "db18"]).ok().stdout;
    assert!(text.contains("version number:  18"), "{text}");
    assert!(text.contains("incremental_backup"));

    env.run(&["server", "remove", "db18"]).ok();
    let list = env.run(&["--json", "server", "list"]).ok().json();
    assert_eq!(list, serde_json::json!([]));
}

/// Each bad input: exit 1, a message naming the problem, a hint, and nothing changed.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_1_with_a_hint_and_changes_nothing() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    env.run(&["server", "add", "one", "--dsn", &repo.dsn("postgres")])
        .ok();
    let closed_port = pganalytics_core::cluster::free_port().unwrap().to_string();
    let unreachable = format!("host=127.0.0.1 port={closed_port} user=postgres");

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["server", "check", "ghost"], "no server named `ghost`"),
        (vec!["server", "remove", "ghost"], "no server named `ghost`"),
        (
            vec!["server", "add", "one", "--dsn", "host=localhost"],
            "already registered",
        ),
        (
            vec![
                "server",
                "add",
                "two",
                "--dsn",
                "postgres://u@h:notaport/db",
            ],
            "port",
        ),
        (
            vec!["server", "add", "two", "--dsn", "host='unterminated"],
            "unterminated",
        ),
        (
            vec!["server", "add", "two", "--dsn", &unreachable],
            "cannot reach",
        ),
    ];
    for (args, expected) in cases {
        let run = env.run(&args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{args:?} should say `{expected}`: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("hint: "),
            "{args:?} gives a hint: {}",
            run.stderr
        );
    }
    let list = env.run(&["--json", "server", "list"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1, "nothing was added");

    // Errors are machine-readable with --json.
    let run = env.run(&["--json", "server", "check", "ghost"]);
    assert_eq!(run.code, 1);
    let err: serde_json::Value = serde_json::from_str(run.stderr.trim()).unwrap();
    assert_eq!(err["error"]["code"], "not_found");
}

/// The password given in a DSN never appears in output, and is used later from the keyring.
#[tokio::test(flavor = "multi_thread")]
async fn password_is_never_printed() {
    let target = pganalytics_testkit::pg_with_login(14, "monitor", "hunter2-Xy", None)
        .await
        .unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let dsn = format!(
        "postgres://monitor:hunter2-Xy@127.0.0.1:{}/postgres",
        target.cluster.port()
    );
    let add = env.run(&["server", "add", "sec", "--dsn", &dsn]).ok();
    let list = env.run(&["server", "list"]).ok();
    let json = env.run(&["--json", "server", "list"]).ok();
    let check = env.run(&["server", "check", "sec"]).ok();
    for run in [&add, &list, &json, &check] {
        assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"));
    }
    assert!(check.stdout.contains("connected as:    monitor"));
    assert!(list.stdout.contains("keyring"));
    env.run(&["server", "remove", "sec"]).ok();
}

/// Without a keyring service, a password cannot be stored: the error says to use .pgpass.
#[tokio::test(flavor = "multi_thread")]
async fn no_keyring_service_points_to_pgpass() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let dsn = format!(
        "postgres://postgres:pw@127.0.0.1:{}/postgres",
        repo.cluster.port()
    );
    let run = env.run_with_env(
        &["server", "add", "nokeyring", "--dsn", &dsn],
        &[
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus"),
            ("PGANALYTICS_KEYRING", "secret-service"),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("no OS keyring"), "{}", run.stderr);
    assert!(run.stderr.contains(".pgpass"), "{}", run.stderr);
    assert!(!run.stderr.contains(":pw@"));
    let list = env.run(&["--json", "server", "list"]).ok().json();
    assert_eq!(list, serde_json::json!([]));

    // Without a password in the DSN no keyring is needed (.pgpass / PGPASSWORD / trust).
    let dsn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        repo.cluster.port()
    );
    env.run_with_env(
        &["server", "add", "nokeyring", "--dsn", &dsn],
        &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")],
    )
    .ok();
}

/// A password from ~/.pgpass works the libpq way.
#[tokio::test(flavor = "multi_thread")]
async fn pgpass_supplies_the_password() {
    let target = pganalytics_testkit::pg_with_login(17, "viaPgpass", "from-file", None)
        .await
        .unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let pgpass = env.dir.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "127.0.0.1:{}:*:viapgpass:from-file\n",
            target.cluster.port()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let dsn = format!(
        "host=127.0.0.1 port={} user=viapgpass dbname=postgres",
        target.cluster.port()
    );
    let pgpass_str = pgpass.display().to_string();
    let run = env.run_with_env(
        &["server", "add", "pp", "--dsn", &dsn],
        &[("PGPASSFILE", &pgpass_str)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let check = env
        .run_with_env(
            &["--json", "server", "check", "pp"],
            &[("PGPASSFILE", &pgpass_str)],
        )
        .ok()
        .json();
    assert_eq!(check["current_user"], "viapgpass");

    // Without the file the server refuses, and says what to do.
    let run = env.run_with_env(
        &["server", "check", "pp"],
        &[("PGPASSFILE", "/nonexistent")],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
}

#[test]
fn data_dir_owned_by_someone_else_exits_1() {
    let env = Env::embedded();
    std::fs::create_dir(env.data_dir()).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let owned = nix::unistd::chown(&env.data_dir(), Some(nobody.uid), Some(nobody.gid));
    let run = if owned.is_ok() {
        env.run(&["server", "list"])
    } else {
        // Not root: a folder owned by root is someone else's.
        env.run_with_env(&["server", "list"], &[("PGANALYTICS_DATA_DIR", "/")])
    };
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("is owned by"), "{}", run.stderr);
    assert!(run.stderr.contains("--data-dir"), "{}", run.stderr);
}

/// With nothing configured the command creates, starts and uses the embedded repository.
#[test]
fn embedded_repository_by_default() {
    let env = Env::embedded();
    let status = env.run(&["--json", "repo", "status"]).ok().json();
    assert_eq!(status["kind"], "embedded");
    // Every migration file is applied (counted, so a new migration does not break this test).
    let files = pganalytics_testkit::migration_count();
    assert!(files >= 6);
    assert_eq!(status["migrations"].as_array().unwrap().len(), files);
    let text = env.run(&["repo", "status"]).ok().stdout;
    assert!(text.contains("kind:        embedded"), "{text}");
    let stop = env.run(&["repo", "stop"]).ok().stdout;
    assert!(stop.contains("stopped"), "{stop}");
}

#[tokio::test(flavor = "multi_thread")]
async fn external_repository_of_postgres_12_is_refused() {
    let old = pganalytics_testkit::pg(12).await.unwrap();
    let env = Env::embedded();
    let run = env.run(&["--repository", &old.dsn("postgres"), "repo", "status"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("needs 13 or later"), "{}", run.stderr);
}
