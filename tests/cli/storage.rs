//! `pganalytics storage`: a round trip on S3 (moto) with the keys copied into the keyring,
//! and bad input exiting 1 with a hint; the secret is never printed.

use crate::support::Env;
use pganalytics_testkit::storage::StorageServer;

const SECRET: &str = "cli-secret-7d1e5c9a3b2f4e6d8c0a1b3c5d7e9f0a";

#[tokio::test(flavor = "multi_thread")]
async fn storage_add_list_check_remove() {
    let s3 = StorageServer::s3().unwrap();
    s3.create_s3_bucket("pga-cli").unwrap();
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let keys = [
        ("AWS_ACCESS_KEY_ID", "AKIAPGANALYTICSCLI01"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
    ];
    let endpoint = s3.endpoint();
    let add = env
        .run_with_env(
            &[
                "storage",
                "add",
                "offsite",
                "--url",
                "s3://pga-cli/prod/",
                "--endpoint",
                &endpoint,
                "--secret-from-env",
            ],
            &keys,
        )
        .ok();
    assert!(add
        .stdout
        .contains("added storage target offsite (s3://pga-cli/prod)"));
    assert!(add.stdout.contains("OS keyring"));

    // Later commands need no environment: the keys come from the keyring.
    let list = env.run(&["--json", "storage", "list"]).ok().json();
    assert_eq!(list[0]["name"], "offsite");
    assert_eq!(list[0]["kind"], "s3");
    assert_eq!(list[0]["secret_in_keyring"], true);
    let text = env.run(&["storage", "list"]).ok().stdout;
    assert!(
        text.contains("offsite") && text.contains("keyring"),
        "{text}"
    );
    let check = env
        .run(&["--json", "storage", "check", "offsite"])
        .ok()
        .json();
    assert_eq!(check["credentials"], "keyring");
    assert_eq!(check["steps"].as_array().unwrap().len(), 4);
    let text = env.run(&["storage", "check", "offsite"]).ok().stdout;
    assert!(text.contains("delete") && text.contains("ok"), "{text}");

    // Bad input: exit 1, a message and a hint, nothing registered.
    for (args, says) in [
        (
            vec!["storage", "add", "x", "--url", "s3://Bad_Bucket"],
            "not a valid s3 bucket name",
        ),
        (
            vec!["storage", "add", "x", "--url", "file://relative"],
            "names a host",
        ),
        (
            vec![
                "storage",
                "add",
                "x",
                "--url",
                "s3://pga-cli",
                "--endpoint",
                "http://127.0.0.1:9",
            ],
            "no credentials",
        ),
        (
            vec!["storage", "check", "ghost"],
            "no storage target named `ghost`",
        ),
        (
            vec!["storage", "remove", "ghost"],
            "no storage target named `ghost`",
        ),
    ] {
        let run = env.run(&args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("hint:"), "{args:?}: {}", run.stderr);
    }
    let run = env.run(&["--json", "storage", "check", "ghost"]);
    assert_eq!(run.code, 1);
    let err: serde_json::Value = serde_json::from_str(&run.stderr).unwrap();
    assert_eq!(err["error"]["code"], "not_found");

    let removed = env.run(&["storage", "remove", "offsite"]).ok().stdout;
    assert!(removed.contains("removed storage target offsite"));
    let list = env.run(&["--json", "storage", "list"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 0);
    for out in [&add.stdout, &add.stderr, &text] {
        assert!(!out.contains(SECRET));
    }
}
