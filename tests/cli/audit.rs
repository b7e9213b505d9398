//! The audit log from the command line and the daemon: recording and querying events,
//! verification (exit 3 on tampering, a wrong public key), kill -9 during writing, the HTTP
//! endpoints and what they record about their callers, and bad input.

use crate::support::{assert_exit, Daemon, Env};
use pganalytics_testkit::TestCluster;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// `audit log …` with `args`; returns the printed id.
fn log_event(env: &Env, args: &[&str]) -> i64 {
    let run = env.run(&[&["audit", "log"], args].concat()).ok();
    run.stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("`audit log` should print an id: {:?}", run.stdout))
}

/// Change one event's action as a superuser would: the append-only trigger fires ALWAYS, so
/// `DISABLE TRIGGER USER` is not enough; name it.
async fn tamper_action(cluster: &TestCluster, env: &Env, id: i64) {
    let pool = cluster
        .pool(env.database.as_deref().unwrap())
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    let changed = sqlx::query("UPDATE audit_logs SET action = 'forged' WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    sqlx::query("ALTER TABLE audit_logs ENABLE ALWAYS TRIGGER audit_logs_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    pool.close().await;
}

/// `audit log` prints an id; `logs`, `show` and `activity` find the event with every field;
/// the actor, action and event-type filters and limit/offset paging work.
#[tokio::test(flavor = "multi_thread")]
async fn log_then_list_show_and_filter() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;

    let id = log_event(
        &env,
        &[
            "--actor",
            "alice",
            "--action",
            "approve",
            "--resource-type",
            "change_request",
            "--resource-id",
            "CHG-1234",
            "--details",
            r#"{"ticket": "CHG-1234"}"#,
            "--old",
            r#"{"state": "open"}"#,
            "--new",
            r#"{"state": "approved"}"#,
        ],
    );
    let bob = env
        .run(&[
            "--json",
            "audit",
            "log",
            "--actor",
            "bob",
            "--action",
            "deploy",
            "--resource-type",
            "application",
            "--event-type",
            "release.deployed",
            "--outcome",
            "failure",
        ])
        .ok()
        .json();
    let bob_id = bob["id"].as_i64().unwrap();
    assert!(bob_id > id, "{bob}");
    assert!(bob["event_id"]
        .as_str()
        .unwrap()
        .parse::<uuid::Uuid>()
        .is_ok());

    // By actor: every field as recorded.
    // Before any key exists, verification checks the chain and says what it cannot check.
    let run = env.run(&["audit", "verify"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains("audit keygen"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    let page = env
        .run(&["--json", "audit", "logs", "--actor", "alice"])
        .ok()
        .json();
    assert_eq!(page["total"], 1, "{page}");
    let e = &page["events"][0];
    assert_eq!(e["id"], id);
    assert_eq!(e["action"], "approve");
    assert_eq!(e["event_type"], "external.approve");
    assert_eq!(e["resource_type"], "change_request");
    assert_eq!(e["resource_id"], "CHG-1234");
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["source"], "cli");
    assert_eq!(e["actor_name"], "alice");
    assert_eq!(e["actor_kind"], "external");
    assert_eq!(e["changes"]["ticket"], "CHG-1234");
    assert!(e["changes"]["recorded_by"].is_string(), "{e}");
    assert_eq!(e["old_values"], json!({"state": "open"}));
    assert_eq!(e["new_values"], json!({"state": "approved"}));
    assert_eq!(e["content_hash"].as_str().unwrap().len(), 64);

    // By action and by event type.
    let page = env
        .run(&["--json", "audit", "logs", "--action", "deploy"])
        .ok()
        .json();
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["events"][0]["id"], bob_id);
    assert_eq!(page["events"][0]["outcome"], "failure");
    let page = env
        .run(&[
            "--json",
            "audit",
            "logs",
            "--event-type",
            "release.deployed",
            "--since",
            "1h",
        ])
        .ok()
        .json();
    assert_eq!(page["total"], 1, "{page}");
    let page = env
        .run(&[
            "--json", "audit", "logs", "--actor", "alice", "--until", "1h",
        ])
        .ok()
        .json();
    assert_eq!(page["total"], 0, "nothing older than an hour: {page}");

    // Paging: newest first, limit and offset.
    let carol: Vec<i64> = (0..3)
        .map(|n| {
            log_event(
                &env,
                &[
                    "--actor",
                    "carol",
                    "--action",
                    "update",
                    "--resource-type",
                    "setting",
                    "--resource-id",
                    &format!("s{n}"),
                ],
            )
        })
        .collect();
    let first = env
        .run(&[
            "--json", "audit", "logs", "--actor", "carol", "--limit", "2",
        ])
        .ok()
        .json();
    assert_eq!(first["total"], 3);
    let ids = |page: &Value| -> Vec<i64> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&first), vec![carol[2], carol[1]]);
    let second = env
        .run(&[
            "--json", "audit", "logs", "--actor", "carol", "--limit", "2", "--offset", "2",
        ])
        .ok()
        .json();
    assert_eq!(ids(&second), vec![carol[0]]);

    // The table.
    let text = env
        .run(&["audit", "logs", "--actor", "carol", "--limit", "2"])
        .ok()
        .stdout;
    let header = text.lines().next().unwrap();
    for column in [
        "ID", "TIME", "ACTOR", "ACTION", "EVENT", "RESOURCE", "OUTCOME",
    ] {
        assert!(header.contains(column), "{text}");
    }
    assert!(
        text.contains("setting/s2") && !text.contains("setting/s0"),
        "{text}"
    );
    assert!(
        text.contains("--offset 2"),
        "says how to get the next page: {text}"
    );

    // One event in full.
    let show = env.run(&["audit", "show", &id.to_string()]).ok().stdout;
    for needle in [
        "approve",
        "change_request/CHG-1234",
        "alice (external",
        r#"before:          {"state":"open"}"#,
        r#"after:           {"state":"approved"}"#,
        "content hash:",
        "previous hash:",
    ] {
        assert!(show.contains(needle), "`{needle}` in: {show}");
    }
    let shown = env
        .run(&["--json", "audit", "show", &id.to_string()])
        .ok()
        .json();
    assert_eq!(shown["event_id"], e["event_id"]);

    // Activity of an actor, by name and by id.
    let activity = env
        .run(&["--json", "audit", "activity", "alice", "--since", "1d"])
        .ok()
        .json();
    assert_eq!(activity.as_array().unwrap().len(), 1, "{activity}");
    assert_eq!(activity[0]["id"], id);
    let actor_id = e["actor_id"].as_str().unwrap();
    let text = env.run(&["audit", "activity", actor_id]).ok().stdout;
    assert!(text.contains("approve") && text.contains("alice"), "{text}");

    // Reading the log is itself recorded.
    let reads = env
        .run(&["--json", "audit", "logs", "--event-type", "audit.logs_read"])
        .ok()
        .json();
    assert!(reads["total"].as_i64().unwrap() >= 5, "{reads}");
    assert_eq!(reads["events"][0]["source"], "cli");
}

/// Keygen with the key in a file; verification passes, then fails with exit 3 naming the
/// event after a superuser changed it; another key's public key is refused as well.
#[tokio::test(flavor = "multi_thread")]
async fn verify_detects_tampering_and_a_wrong_key() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let key_file = env.dir.path().join("signing.key");
    let keygen = env
        .run(&[
            "--json",
            "audit",
            "keygen",
            "--algorithm",
            "ed25519",
            "--key-file",
            key_file.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(keygen["algorithm"], "ed25519");
    assert!(
        keygen["private_key"]
            .as_str()
            .unwrap()
            .ends_with(&key_file.display().to_string()),
        "{keygen}"
    );
    assert!(key_file.exists());
    let id = log_event(
        &env,
        &[
            "--actor",
            "mallory",
            "--action",
            "grant",
            "--resource-type",
            "role",
        ],
    );
    log_event(
        &env,
        &[
            "--actor",
            "trent",
            "--action",
            "revoke",
            "--resource-type",
            "role",
        ],
    );

    let ok = env.run(&["audit", "verify"]);
    assert_exit(&ok, 0, &["intact:          yes", "checkpoint:", "events/s"]);
    let report = env.run(&["--json", "audit", "verify"]).ok().json();
    assert_eq!(report["intact"], true);
    assert!(report["events_checked"].as_i64().unwrap() > id, "{report}");
    assert_eq!(
        report["checkpoint"]["key_fingerprint"], keygen["fingerprint"],
        "{report}"
    );

    // Another key's public key: its signature does not verify this log's checkpoints.
    let other = Env::with_repository(&repo).await;
    other
        .run(&[
            "audit",
            "keygen",
            "--algorithm",
            "ed25519",
            "--key-file",
            other.dir.path().join("other.key").to_str().unwrap(),
        ])
        .ok();
    let other_pem = other.dir.path().join("other.pem");
    let exported = other
        .run(&[
            "--json",
            "audit",
            "export-public-key",
            "--out",
            other_pem.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(exported["algorithm"], "ed25519");
    assert_ne!(exported["fingerprint"], keygen["fingerprint"]);
    assert!(std::fs::read_to_string(&other_pem)
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    let wrong = env.run(&[
        "audit",
        "verify",
        "--public-key",
        other_pem.to_str().unwrap(),
    ]);
    assert_exit(
        &wrong,
        3,
        &[
            "intact:          NO",
            "signature invalid",
            "not by the given public key",
        ],
    );

    tamper_action(&repo, &env, id).await;
    let bad = env.run(&["audit", "verify"]);
    assert_exit(
        &bad,
        3,
        &[
            &format!("first bad event: {id}: content changed"),
            &format!("event {id}: content changed"),
            "checkpoint:",
        ],
    );
    assert!(bad.stderr.contains("hint: "), "{}", bad.stderr);
    // --json: the report on stdout, still exit 3.
    let bad = env.run(&["--json", "audit", "verify"]);
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    let report = bad.json();
    assert_eq!(report["intact"], false);
    assert_eq!(report["first_bad_id"], id);
    assert_eq!(report["problem"], "content_changed");
    let err: Value = serde_json::from_str(bad.stderr.trim()).unwrap();
    assert_eq!(err["error"]["code"], "verification_failed");
    // A range that ends before the forged event is intact.
    env.run(&["audit", "verify", "--to", &(id - 1).to_string()])
        .ok();
}

/// Keygen with the private key in the OS keyring (needs scripts/with-keyring).
#[tokio::test(flavor = "multi_thread")]
async fn keygen_in_the_keyring_then_verify_prove_and_checkpoint() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let none = env.run(&["audit", "status"]).ok().stdout;
    assert!(
        none.contains("none (run `pganalytics audit keygen`)"),
        "{none}"
    );
    let keygen = env.run(&["--json", "audit", "keygen"]).ok().json();
    assert!(
        keygen["private_key"]
            .as_str()
            .unwrap()
            .starts_with("keyring entry"),
        "{keygen}"
    );
    assert_eq!(keygen["algorithm"], "rsa-2048");
    let again = env.run(&["audit", "keygen"]);
    assert_exit(&again, 1, &["already has a signing key", "hint: "]);

    let id = log_event(
        &env,
        &[
            "--actor",
            "dave",
            "--action",
            "login",
            "--resource-type",
            "console",
        ],
    );
    env.run(&["audit", "verify"]).ok();
    // The command that logged closed with a checkpoint: the event has a proof.
    let proof = env
        .run(&["--json", "audit", "prove", &id.to_string()])
        .ok()
        .json();
    assert_eq!(proof["verified"], true, "{proof}");
    assert_eq!(proof["leaf_index"], id - 1);
    assert!(proof["tree_size"].as_i64().unwrap() >= id);
    let text = env.run(&["audit", "prove", &id.to_string()]).ok().stdout;
    assert!(
        text.contains("verified:        yes") && text.contains("audit path"),
        "{text}"
    );
    let missing = env.run(&["audit", "prove", "999999"]);
    assert_exit(&missing, 1, &["no signed checkpoint covers event 999999"]);

    let status = env.run(&["--json", "audit", "status"]).ok().json();
    assert!(status["signing_key"]
        .as_str()
        .unwrap()
        .starts_with("rsa-2048"));
    assert!(status["newest_checkpoint"]["tree_size"].as_i64().unwrap() >= id);
    let text = env.run(&["audit", "status"]).ok().stdout;
    assert!(text.contains("signing key:     rsa-2048"), "{text}");

    // `audit status` logs nothing, so a checkpoint right after one has nothing new to sign;
    // after an event it signs.
    log_event(
        &env,
        &[
            "--actor",
            "dave",
            "--action",
            "logout",
            "--resource-type",
            "console",
        ],
    );
    let text = env.run(&["audit", "checkpoint"]).ok().stdout;
    assert!(
        text.contains("already covers every event") || text.contains("checkpoint:"),
        "{text}"
    );
}

/// Retention policy and GDPR erasure from the command line; the log verifies afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn retention_and_erasure() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    env.run(&[
        "audit",
        "keygen",
        "--key-file",
        env.dir.path().join("k").to_str().unwrap(),
    ])
    .ok();
    let text = env.run(&["audit", "retention", "show"]).ok().stdout;
    assert!(text.contains("no audit retention policy"), "{text}");
    let refused = env.run(&["audit", "retention", "apply"]);
    assert_exit(&refused, 1, &["no audit retention policy is set", "hint: "]);
    let policy = env
        .run(&[
            "--json",
            "audit",
            "retention",
            "set",
            "--days",
            "30",
            "--archive-after-days",
            "7",
            "--framework",
            "GDPR",
        ])
        .ok()
        .json();
    assert_eq!(policy["retention_days"], 30);
    assert_eq!(policy["deletion_allowed"], false);
    let text = env.run(&["audit", "retention", "show"]).ok().stdout;
    assert!(
        text.contains("keep 30 days, archive after 7 days, deletion not allowed (GDPR)"),
        "{text}"
    );
    let refused = env.run(&["audit", "retention", "apply"]);
    assert_exit(&refused, 1, &["does not allow deletion"]);
    let usage = env.run(&[
        "audit",
        "retention",
        "set",
        "--days",
        "30",
        "--framework",
        "ISO",
    ]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    env.run(&[
        "audit",
        "retention",
        "set",
        "--days",
        "1",
        "--allow-deletion",
    ])
    .ok();
    let dry = env
        .run(&["--json", "audit", "retention", "apply", "--dry-run"])
        .ok()
        .json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        dry["through_id"],
        Value::Null,
        "nothing is a day old: {dry}"
    );
    let text = env.run(&["audit", "retention", "apply"]).ok().stdout;
    assert!(text.contains("no audit event is older"), "{text}");

    let id = log_event(
        &env,
        &[
            "--actor",
            "erin",
            "--action",
            "read",
            "--resource-type",
            "report",
        ],
    );
    let erased = env
        .run(&["--json", "audit", "erase-subject", "erin"])
        .ok()
        .json();
    assert_eq!(erased["events_erased"], 1, "{erased}");
    let event = env
        .run(&["--json", "audit", "show", &id.to_string()])
        .ok()
        .json();
    assert_eq!(event["personal_erased"], true);
    assert_ne!(event["actor_name"], "erin");
    let text = env.run(&["audit", "show", &id.to_string()]).ok().stdout;
    assert!(text.contains("erased (GDPR)"), "{text}");
    let unknown = env.run(&["audit", "erase-subject", "nobody-of-that-name"]);
    assert_exit(&unknown, 1, &["no actor named `nobody-of-that-name`"]);
    env.run(&["audit", "verify"]).ok();
}

/// kill -9 while 8 writers log: every event acknowledged as durable is in the repository, and
/// the log verifies (events after the last checkpoint are chain-checked).
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_loses_no_durable_event() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    env.run(&[
        "audit",
        "keygen",
        "--algorithm",
        "ed25519",
        "--key-file",
        env.dir.path().join("k").to_str().unwrap(),
    ])
    .ok();
    let mut child = env
        .command()
        .args(["audit", "load", "--writers", "8", "--events", "100000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ids: Vec<i64> = Vec::new();
    while ids.len() < 2000 {
        let line = match lines.next() {
            Some(line) => line.unwrap(),
            None => {
                let out = child.wait_with_output().unwrap();
                panic!(
                    "`audit load` ended after {} events: {}",
                    ids.len(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        };
        let id = line
            .strip_prefix("durable ")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        ids.push(id);
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished: {status:?}");
    drop(lines);

    let pool = repo.pool(env.database.as_deref().unwrap()).await.unwrap();
    let found: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_logs WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(found, ids.len() as i64, "an acknowledged event is lost");
    let loaded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_logs WHERE event_type = 'dev.load'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(loaded >= ids.len() as i64 && loaded < 100_000, "{loaded}");
    pool.close().await;

    let report = env.run(&["--json", "audit", "verify"]).ok().json();
    assert_eq!(report["intact"], true, "{report}");
    assert!(
        report["events_checked"].as_i64().unwrap() >= loaded,
        "{report}"
    );
}

/// The daemon's audit endpoints with a token; 401 without; each call is recorded with the
/// token as actor and the client's address; a rejected token is recorded as denied.
#[tokio::test(flavor = "multi_thread")]
async fn daemon_audit_endpoints_record_their_callers() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    env.run(&[
        "audit",
        "keygen",
        "--algorithm",
        "ed25519",
        "--key-file",
        env.dir.path().join("k").to_str().unwrap(),
    ])
    .ok();
    let token = env
        .run(&["token", "create", "auditor"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let daemon = Daemon::start(&env);
    let http = reqwest::Client::builder()
        .user_agent("audit-test/1.0")
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{path}", daemon.base);

    // Without a token, every audit endpoint answers 401.
    for (method, path) in [
        ("GET", "/api/v1/audit/logs"),
        ("GET", "/api/v1/audit/logs/1"),
        ("POST", "/api/v1/audit/verify"),
        ("GET", "/api/v1/audit/activity/users/alice"),
        ("POST", "/api/v1/audit/events"),
    ] {
        let r = http
            .request(method.parse().unwrap(), url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
    }

    // An external event.
    let r = http
        .post(url("/api/v1/audit/events"))
        .bearer_auth(&token)
        .json(&json!({
            "actor": "alice",
            "action": "approve",
            "resource_type": "change_request",
            "resource_id": "CHG-9",
            "details": {"ticket": "CHG-9"},
            "new_values": {"state": "approved"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let logged: Value = r.json().await.unwrap();
    let id = logged["id"].as_i64().unwrap();
    let r = http
        .post(url("/api/v1/audit/events"))
        .bearer_auth(&token)
        .json(&json!({"actor": "alice", "action": "approve", "resource_type": "x", "details": [1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(url("/api/v1/audit/events"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_input"
    );

    // Query, one event, activity.
    let r = http
        .get(url("/api/v1/audit/logs?actor=alice&since=1h&limit=5"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["limit"], 5);
    let event = &page["events"][0];
    assert_eq!(event["id"], id);
    assert_eq!(event["actor_name"], "alice");
    assert_eq!(event["source"], "api");
    assert_eq!(event["ip_address"], "127.0.0.1");
    assert_eq!(event["user_agent"], "audit-test/1.0");
    let bad = http
        .get(url("/api/v1/audit/logs?since=yesterday"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = http
        .get(url("/api/v1/audit/logs?limit=many"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_input"
    );

    let r = http
        .get(url(&format!("/api/v1/audit/logs/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let shown: Value = r.json().await.unwrap();
    assert_eq!(shown["new_values"], json!({"state": "approved"}));
    let tokens_actor = shown["changes"]["recorded_by"].clone();
    for (path, status) in [
        ("/api/v1/audit/logs/999999", 404),
        ("/api/v1/audit/logs/abc", 400),
    ] {
        let r = http
            .get(url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
    }

    let r = http
        .get(url("/api/v1/audit/activity/users/alice?since=1d"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let activity: Value = r.json().await.unwrap();
    assert_eq!(activity[0]["id"], id, "{activity}");
    let r = http
        .get(url("/api/v1/audit/activity/users/nobody"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Verification: 200 with the report; a bad range and trust anchors from the body are 400.
    let r = http
        .post(url("/api/v1/audit/verify"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["intact"], true, "{report}");
    let r = http
        .post(url("/api/v1/audit/verify"))
        .bearer_auth(&token)
        .json(&json!({"from": 1, "to": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["checked_to"], id);
    let r = http
        .post(url("/api/v1/audit/verify"))
        .bearer_auth(&token)
        .json(&Value::Null)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "null means everything");
    for body in [
        json!({"from": 5, "to": 2}),
        json!({"public_key": "/etc/passwd"}),
    ] {
        let r = http
            .post(url("/api/v1/audit/verify"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }

    // A wrong token is refused and recorded.
    let r = http
        .get(url("/api/v1/audit/logs"))
        .bearer_auth("pga_not_a_token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // What the daemon recorded (reads are durable within milliseconds: poll briefly).
    let recorded = |event_type: &'static str| {
        let env = &env;
        async move {
            for _ in 0..50 {
                let page = env
                    .run(&["--json", "audit", "logs", "--event-type", event_type])
                    .ok()
                    .json();
                let api: Vec<Value> = page["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["source"] == "api")
                    .cloned()
                    .collect();
                if !api.is_empty() {
                    return api;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("no `{event_type}` event from the API");
        }
    };
    let reads = recorded("audit.logs_read").await;
    let read = &reads[0];
    assert_eq!(read["actor_kind"], "api_token", "{read}");
    assert_eq!(read["actor_name"], "auditor");
    assert_eq!(read["actor_id"], tokens_actor, "recorded_by is the token");
    assert_eq!(read["ip_address"], "127.0.0.1");
    assert_eq!(read["user_agent"], "audit-test/1.0");
    let rejected = recorded("auth.token_rejected").await;
    assert_eq!(rejected[0]["outcome"], "denied", "{:?}", rejected[0]);
    assert_eq!(rejected[0]["ip_address"], "127.0.0.1");
    assert_eq!(rejected[0]["actor_name"], "anonymous");
    let verified = recorded("audit.verified").await;
    assert_eq!(verified[0]["actor_name"], "auditor");
    let used = recorded("auth.token_used").await;
    assert_eq!(used[0]["ip_address"], "127.0.0.1");
}

/// Bad input: exit 1, a message naming the problem, and a hint where one helps.
#[tokio::test(flavor = "multi_thread")]
async fn bad_audit_input_exits_1() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (
            vec!["audit", "verify", "--from", "5", "--to", "2"],
            &["invalid range 5..2", "hint: "],
        ),
        (
            vec!["audit", "show", "999999"],
            &["no audit event 999999", "hint: "],
        ),
        (
            vec![
                "audit",
                "log",
                "--actor",
                "a",
                "--action",
                "b",
                "--resource-type",
                "c",
                "--details",
                "{bad",
            ],
            &["--details is not valid JSON", "hint: "],
        ),
        (
            vec![
                "audit",
                "log",
                "--actor",
                "a",
                "--action",
                "b",
                "--resource-type",
                "c",
                "--details",
                "[1, 2]",
            ],
            &["must be a JSON object"],
        ),
        (
            vec!["audit", "logs", "--since", "yesterday"],
            &["`yesterday` is neither a time nor a duration", "hint: "],
        ),
        (
            vec!["audit", "logs", "--limit", "5000"],
            &["limit must be 1 to 1000"],
        ),
        (
            vec!["audit", "activity", "nobody"],
            &["no actor named `nobody`", "hint: "],
        ),
    ];
    for (args, needles) in cases {
        let run = env.run(&args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        for n in needles {
            assert!(
                run.stderr.contains(n),
                "{args:?} should say `{n}`: {}",
                run.stderr
            );
        }
    }
    let page = env
        .run(&["--json", "audit", "logs", "--event-type", "external.b"])
        .ok()
        .json();
    assert_eq!(page["total"], 0, "nothing was logged: {page}");
    let usage = env.run(&["audit", "log", "--actor", "a", "--action", "b"]);
    assert_eq!(usage.code, 2, "missing --resource-type: {}", usage.stderr);
    let usage = env.run(&["audit", "keygen", "--algorithm", "dsa"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
}
