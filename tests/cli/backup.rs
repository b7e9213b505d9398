//! `pganalytics backup` end to end: keys, a backup of a real server into a `file://` target,
//! listing and showing it, verification (exit 3 naming a flipped object), restore into an
//! empty folder (and the refusal of a non-empty one), prune, and the daemon's endpoints with
//! their jobs. Keys live in files of the test's folder: the backup key's keyring entry is one
//! per OS user, shared by every test.

use crate::support::{assert_exit, Daemon, Env};
use pganalytics_testkit::TestCluster;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A repository, a source server `src` with some data, a `file://` target `local` under the
/// test's folder, and the audit signing key (backups are signed with it) in a file.
struct Setup {
    env: Env,
    src: TestCluster,
    _repo: TestCluster,
    store: PathBuf,
}

impl Setup {
    async fn new(major: u32) -> Setup {
        let repo = pganalytics_testkit::pg(15).await.unwrap();
        let env = Env::with_repository(&repo).await;
        let src = pganalytics_testkit::pg(major).await.unwrap();
        let pool = src.pool("postgres").await.unwrap();
        sqlx::query(
            "CREATE TABLE kept AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        let store = env.dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        env.run(&["server", "add", "src", "--dsn", &src.dsn("postgres")])
            .ok();
        env.run(&[
            "storage",
            "add",
            "local",
            "--url",
            &format!("file://{}", store.display()),
        ])
        .ok();
        let audit_key = env.dir.path().join("audit.key");
        env.run(&[
            "audit",
            "keygen",
            "--algorithm",
            "ed25519",
            "--key-file",
            audit_key.to_str().unwrap(),
        ])
        .ok();
        Setup {
            env,
            src,
            _repo: repo,
            store,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.env.dir.path().join(name)
    }

    /// The system identifier of `src`: the first folder level in the store.
    async fn sysid(&self) -> String {
        let pool = self.src.pool("postgres").await.unwrap();
        let id: String =
            sqlx::query_scalar("SELECT system_identifier::text FROM pg_control_system()")
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        id
    }

    async fn backup_dir(&self, id: &str) -> PathBuf {
        self.store.join(self.sysid().await).join("backups").join(id)
    }
}

async fn md5_of_kept(pool: &sqlx::PgPool) -> String {
    sqlx::query_scalar("SELECT md5(string_agg(v, ',' ORDER BY id)) FROM kept")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn is_empty_or_absent(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

/// keygen; run (encrypted and not); list and show; verify; a flipped byte → exit 3 naming the
/// object; restore into an empty folder, refusal of a non-empty one, restore with --start;
/// prune --dry-run, then prune.
#[tokio::test(flavor = "multi_thread")]
async fn backup_run_list_show_verify_restore_prune() {
    let s = Setup::new(16).await;
    let env = &s.env;

    // The backup key, in a file given relative to the current folder.
    let key_file = s.path("backup.key");
    let key = env
        .command()
        .current_dir(env.dir.path())
        .args(["--json", "backup", "keygen", "--key-file", "backup.key"])
        .output()
        .unwrap();
    assert!(key.status.success(), "{key:?}");
    let key: Value = serde_json::from_slice(&key.stdout).unwrap();
    assert_eq!(key["location"], key_file.display().to_string(), "{key}");
    let fingerprint = key["fingerprint"].as_str().unwrap().to_string();
    assert_eq!(fingerprint.len(), 16);
    let text = std::fs::read_to_string(&key_file).unwrap();
    assert!(!text.is_empty());
    for out in [
        env.run(&["--json", "audit", "logs", "--action", "create"])
            .ok()
            .stdout,
        key.to_string(),
    ] {
        assert!(!out.contains(text.trim()), "the key itself leaked: {out}");
    }
    let again = env.run(&["backup", "keygen", "--key-file", key_file.to_str().unwrap()]);
    assert_exit(&again, 1, &["exists already", &fingerprint, "hint:"]);

    // An encrypted, compressed backup: its id alone on stdout.
    let run = env
        .run(&[
            "backup",
            "run",
            "--server",
            "src",
            "--storage",
            "local",
            "--encrypt",
            "--compress",
            "zstd:3",
            "--retention-days",
            "7",
        ])
        .ok();
    let encrypted_id = run.stdout.trim().to_string();
    assert!(
        encrypted_id.parse::<uuid::Uuid>().is_ok(),
        "`backup run` should print the id: {:?}",
        run.stdout
    );
    assert!(run.stderr.contains("completed"), "{}", run.stderr);

    // `backup key`: the key here opens it; without the key file, exit 3 naming the key.
    let status = env.run(&["backup", "key"]);
    assert_exit(&status, 0, &[&fingerprint, "opens:           1 encrypted"]);
    let aside = s.path("backup.key.aside");
    std::fs::rename(&key_file, &aside).unwrap();
    let status = env.run(&["backup", "key"]);
    assert_exit(
        &status,
        3,
        &["1 encrypted backup cannot be opened", &fingerprint, "hint:"],
    );
    std::fs::rename(&aside, &key_file).unwrap();

    // A plain one, with --json: the summary.
    let plain = env
        .run(&[
            "--json",
            "backup",
            "run",
            "--server",
            "src",
            "--storage",
            "local",
            "--compress",
            "none",
        ])
        .ok()
        .json();
    let plain_id = plain["id"].as_str().unwrap().to_string();
    assert_eq!(plain["status"], "completed", "{plain}");
    // Importing from the store finds both, already on record.
    assert_exit(
        &env.run(&["backup", "import", "--storage", "local"]),
        0,
        &["imported 0 backup(s); 2 already on record; 0 refused"],
    );
    assert_eq!(plain["server"], "src");
    assert_eq!(plain["storage"], "local");
    assert_eq!(plain["encrypted"], false);
    assert_eq!(plain["compression"], "none");
    assert_eq!(plain["retention_days"], 30);
    assert!(plain["source_size_bytes"].as_i64().unwrap() > 1_000_000);
    assert!(plain["checksum"].as_str().is_some_and(|c| c.len() == 64));
    assert_eq!(plain["system_identifier"], s.sysid().await);

    // Listing: newest first; text and JSON; by server.
    let list = env.run(&["--json", "backup", "list"]).ok().json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [plain_id.as_str(), encrypted_id.as_str()]);
    assert_eq!(list[1]["encrypted"], true);
    assert_eq!(list[1]["retention_days"], 7);
    assert!(list[1]["compression"].as_str().unwrap().starts_with("zstd"));
    let text = env.run(&["backup", "list", "--server", "src"]).ok().stdout;
    assert!(
        text.contains(&plain_id) && text.contains(&encrypted_id) && text.contains("completed"),
        "{text}"
    );
    let run = env.run(&["backup", "list", "--server", "ghost"]);
    assert_exit(&run, 1, &["no server named `ghost`", "hint:"]);

    // One backup: its archives, the key that wraps its data key, the signer.
    let detail = env
        .run(&["--json", "backup", "show", &encrypted_id])
        .ok()
        .json();
    assert_eq!(detail["backup"]["id"], encrypted_id.as_str());
    assert_eq!(detail["key_fingerprint"], fingerprint.as_str(), "{detail}");
    assert!(detail["signed_by"].is_string(), "{detail}");
    let archives = detail["archives"].as_array().unwrap();
    assert!(archives.iter().any(|a| a["name"] == "base.tar"), "{detail}");
    assert!(detail["wal_start_segment"].is_string(), "{detail}");
    let text = env.run(&["backup", "show", &encrypted_id]).ok().stdout;
    assert!(
        text.contains(&fingerprint) && text.contains("base.tar"),
        "{text}"
    );
    let ghost = uuid::Uuid::new_v4().to_string();
    assert_exit(
        &env.run(&["backup", "show", &ghost]),
        1,
        &[&ghost, "error:"],
    );
    assert_exit(&env.run(&["backup", "show", "not-a-uuid"]), 2, &["invalid"]);

    // Both verify.
    for id in [&encrypted_id, &plain_id] {
        let run = env.run(&["backup", "verify", id]);
        assert_exit(&run, 0, &["intact:          yes"]);
    }
    let report = env
        .run(&["--json", "backup", "verify", &plain_id])
        .ok()
        .json();
    assert_eq!(report["intact"], true);
    assert!(report["objects_checked"].as_u64().unwrap() >= 1);
    assert!(report["manifest_files_checked"].as_u64().unwrap() > 100);
    let shown = env
        .run(&["--json", "backup", "show", &plain_id])
        .ok()
        .json();
    assert_eq!(shown["backup"]["verified"], true, "{shown}");

    // Restore into an absent folder; the data is there.
    let target = s.path("restored");
    let run = env
        .run(&[
            "--json",
            "backup",
            "restore",
            &encrypted_id,
            "--target-dir",
            target.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["backup_id"], encrypted_id.as_str());
    assert!(run["bytes_restored"].as_u64().unwrap() > 1_000_000);
    assert!(target.join("PG_VERSION").is_file());
    assert!(target.join("backup_label").is_file());
    // A non-empty folder is refused, and left as it was.
    let before = files_under(&target);
    let run = env.run(&[
        "backup",
        "restore",
        &plain_id,
        "--target-dir",
        target.to_str().unwrap(),
    ]);
    assert_exit(&run, 1, &["not empty", "hint:"]);
    assert_eq!(files_under(&target), before);
    let restores = env
        .run(&["--json", "backup", "show", &encrypted_id])
        .ok()
        .json();
    assert_eq!(restores["restores"][0]["status"], "completed", "{restores}");

    // Restore and start: the restored server has the data.
    let started_dir = s.path("started");
    let run = env
        .run(&[
            "--json",
            "backup",
            "restore",
            &plain_id,
            "--target-dir",
            started_dir.to_str().unwrap(),
            "--start",
        ])
        .ok()
        .json();
    let port = run["started_port"].as_u64().expect("started_port") as u16;
    let src_pool = s.src.pool("postgres").await.unwrap();
    let expected = md5_of_kept(&src_pool).await;
    src_pool.close().await;
    let options = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("postgres")
        .database("postgres");
    let restored = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("connect to the restored server");
    assert_eq!(md5_of_kept(&restored).await, expected);
    restored.close().await;
    pganalytics_core::backup::restore::stop(&started_dir, 16)
        .await
        .unwrap();

    // Flip one byte of a stored object of the plain backup: exit 3, naming the object.
    let dir = s.backup_dir(&plain_id).await;
    let object = dir.join("data").join("base").join("00000000");
    let mut bytes = std::fs::read(&object).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&object, &bytes).unwrap();
    let run = env.run(&["backup", "verify", &plain_id]);
    assert_exit(
        &run,
        3,
        &[
            "intact:          NO",
            "data/base/00000000",
            &plain_id,
            "hint:",
        ],
    );
    let error_line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {}", run.stderr));
    assert!(error_line.contains("data/base/00000000"), "{error_line}");
    let run = env.run(&["--json", "backup", "verify", &plain_id]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["intact"], false);
    assert!(
        report["problems"][0]["object"]
            .as_str()
            .unwrap()
            .ends_with("data/base/00000000"),
        "{report}"
    );
    let err: Value = serde_json::from_str(&run.stderr).unwrap();
    assert_eq!(err["error"]["code"], "verification_failed");
    // Restoring it fails and leaves nothing behind.
    let damaged_target = s.path("damaged");
    let run = env.run(&[
        "backup",
        "restore",
        &plain_id,
        "--target-dir",
        damaged_target.to_str().unwrap(),
    ]);
    assert_exit(&run, 3, &["data/base/00000000", "hint:"]);
    assert!(is_empty_or_absent(&damaged_target));

    // Prune. The newest backup (plain) is damaged: the newest *good* one is the older
    // encrypted backup, which no rule removes; --keep-full 1 therefore removes nothing.
    let plain_dir = s.backup_dir(&plain_id).await;
    let objects = files_under(&plain_dir);
    assert!(objects.iter().any(|f| f == "catalogue.json"), "{objects:?}");
    let dry = env
        .run(&[
            "--json",
            "backup",
            "prune",
            "--server",
            "src",
            "--keep-full",
            "1",
            "--dry-run",
        ])
        .ok()
        .json();
    assert_eq!(dry["removed"], json!([]), "{dry}");
    // --keep-days 0: the damaged one goes; a dry run first lists it and removes nothing.
    let dry = env
        .run(&[
            "backup",
            "prune",
            "--server",
            "src",
            "--keep-days",
            "0",
            "--dry-run",
        ])
        .ok()
        .stdout;
    assert!(
        dry.contains("would remove 1") && dry.contains(&plain_id),
        "{dry}"
    );
    assert!(!dry.contains(&encrypted_id), "{dry}");
    assert_eq!(files_under(&plain_dir), objects);
    let list = env.run(&["--json", "backup", "list"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 2);

    let pruned = env
        .run(&[
            "--json",
            "backup",
            "prune",
            "--server",
            "src",
            "--keep-days",
            "0",
        ])
        .ok()
        .json();
    assert_eq!(pruned["dry_run"], false);
    assert_eq!(pruned["removed"][0]["id"], plain_id.as_str(), "{pruned}");
    assert_eq!(
        pruned["removed"][0]["objects_removed"].as_u64(),
        Some(objects.len() as u64),
        "{pruned}"
    );
    assert_eq!(pruned["kept"], 1);
    assert!(files_under(&plain_dir).is_empty());
    let list = env.run(&["--json", "backup", "list"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let all = env.run(&["--json", "backup", "list", "--all"]).ok().json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|b| b["id"] == plain_id.as_str() && b["status"] == "deleted"),
        "{all}"
    );
    // The newest good backup is never pruned.
    let run = env.run(&[
        "--json",
        "backup",
        "prune",
        "--server",
        "src",
        "--keep-days",
        "0",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["removed"], json!([]), "{}", run.stdout);
}

/// `mkdir DIR` then `backup restore ID --target-dir DIR --start`: the folder a user made (mode
/// 0755 under the usual umask) becomes a data directory the server accepts. On 13, the oldest
/// supported version (the older BASE_BACKUP syntax).
#[tokio::test(flavor = "multi_thread")]
async fn restore_into_an_existing_empty_folder_and_start() {
    let s = Setup::new(13).await;
    let env = &s.env;
    let id = env
        .run(&["backup", "run", "--server", "src", "--storage", "local"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let target = s.path("made-by-user");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = env
        .run(&[
            "--json",
            "backup",
            "restore",
            &id,
            "--target-dir",
            target.to_str().unwrap(),
            "--start",
        ])
        .ok()
        .json();
    let port = run["started_port"].as_u64().expect("started_port") as u16;
    let src_pool = s.src.pool("postgres").await.unwrap();
    let expected = md5_of_kept(&src_pool).await;
    src_pool.close().await;
    let restored = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::postgres::PgConnectOptions::new()
                .host("127.0.0.1")
                .port(port)
                .username("postgres")
                .database("postgres"),
        )
        .await
        .expect("connect to the restored server");
    assert_eq!(md5_of_kept(&restored).await, expected);
    restored.close().await;
    pganalytics_core::backup::restore::stop(&target, 13)
        .await
        .unwrap();
}

/// Refusals before anything is written: no signing key, no backup key for --encrypt, a bad
/// compression, unknown names; each exits 1 with a hint.
#[tokio::test(flavor = "multi_thread")]
async fn backup_run_refusals_say_what_to_do() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let src = pganalytics_testkit::pg(14).await.unwrap();
    let store = env.dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    env.run(&["server", "add", "src", "--dsn", &src.dsn("postgres")])
        .ok();
    env.run(&[
        "storage",
        "add",
        "local",
        "--url",
        &format!("file://{}", store.display()),
    ])
    .ok();
    let args = ["backup", "run", "--server", "src", "--storage", "local"];

    // No signing key yet.
    assert_exit(&env.run(&args), 1, &["audit keygen", "hint:"]);
    let audit_key = env.dir.path().join("audit.key");
    env.run(&[
        "audit",
        "keygen",
        "--algorithm",
        "ed25519",
        "--key-file",
        audit_key.to_str().unwrap(),
    ])
    .ok();

    for (extra, says) in [
        (vec!["--compress", "lz4"], "lz4"),
        (vec!["--retention-days", "0"], "--retention-days"),
    ] {
        let run = env.run(&[&args[..], &extra[..]].concat());
        assert_exit(&run, 1, &[says, "error:"]);
    }
    let run = env.run(&["backup", "run", "--server", "ghost", "--storage", "local"]);
    assert_exit(&run, 1, &["ghost", "hint:"]);
    let run = env.run(&["backup", "run", "--server", "src", "--storage", "ghost"]);
    assert_exit(&run, 1, &["ghost", "hint:"]);
    // Nothing was written.
    assert!(files_under(&store).is_empty(), "{:?}", files_under(&store));
    let list = env.run(&["--json", "backup", "list", "--all"]).ok().json();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|b| b["status"] != "completed"),
        "{list}"
    );
}

/// Poll `GET /api/v1/jobs/{id}` until the job is no longer running.
async fn wait_for_job(http: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    for _ in 0..1200 {
        let r = http
            .get(format!("{base}/api/v1/jobs/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let job: Value = r.json().await.unwrap();
        assert_eq!(job["id"], id);
        if job["state"] != "running" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} still running after two minutes");
}

/// The daemon: trigger → 202 with a job id → the job's progress and result → the backup by
/// id and in the list; verify and restore as jobs; bad requests 400, unknown ids 404,
/// no token 401.
#[tokio::test(flavor = "multi_thread")]
async fn daemon_triggers_verifies_and_restores_backups_as_jobs() {
    let s = Setup::new(17).await;
    let env = &s.env;
    let token = env
        .run(&["token", "create", "backups"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let daemon = Daemon::start_with(env, &["--interval", "1h"]);
    let base = daemon.base.as_str();
    let http = reqwest::Client::new();

    let anonymous = http
        .post(format!("{base}/api/v1/backups/trigger"))
        .json(&json!({"server": "src", "storage": "local"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let r = http
        .post(format!("{base}/api/v1/backups/trigger"))
        .bearer_auth(&token)
        .json(&json!({"server": "src", "storage": "local", "compress": "zstd:2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = wait_for_job(&http, base, &token, &job_id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "backup_run");
    assert!(job["done"].as_i64().unwrap() > 0, "{job}");
    assert!(job["total"].as_i64().unwrap() > 0, "{job}");
    let backup_id = job["result"]["id"].as_str().unwrap().to_string();
    assert_eq!(job["result"]["status"], "completed");

    let r = http
        .get(format!("{base}/api/v1/backups/{backup_id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let detail: Value = r.json().await.unwrap();
    assert_eq!(detail["backup"]["id"], backup_id.as_str());
    assert_eq!(detail["backup"]["compression"], "zstd:2");
    let list: Value = http
        .get(format!(
            "{base}/api/v1/backups?server=src&include_deleted=true"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], backup_id.as_str(), "{list}");
    // The key and import endpoints: no encrypted backup yet; the store holds this one.
    let key: Value = http
        .get(format!("{base}/api/v1/backups/key"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(key["opens"], 0, "{key}");
    assert_eq!(key["need_other_keys"], json!([]), "{key}");
    let import: Value = http
        .post(format!("{base}/api/v1/backups/import"))
        .bearer_auth(&token)
        .json(&json!({ "storage": "local" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(import["already_recorded"], 1, "{import}");
    assert_eq!(import["imported"], json!([]), "{import}");
    let r = http
        .get(format!("{base}/api/v1/backups?server=ghost"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Verify: no body, then `{}`; the job's result is the report.
    for body in [None, Some(json!({}))] {
        let mut req = http
            .post(format!("{base}/api/v1/backups/{backup_id}/verify"))
            .bearer_auth(&token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 202);
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let job = wait_for_job(&http, base, &token, &id).await;
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["kind"], "backup_verify");
        assert_eq!(job["result"]["intact"], true, "{job}");
    }

    // Restore into a folder on the daemon's host; a second time into it is refused by the job.
    let target = s.path("restored-by-daemon");
    let restore = |target: PathBuf| {
        let http = http.clone();
        let token = token.clone();
        let url = format!("{base}/api/v1/backups/{backup_id}/restore");
        async move {
            let r = http
                .post(url)
                .bearer_auth(&token)
                .json(&json!({"target_dir": target.display().to_string()}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let job = wait_for_job(&http, base, &token, &restore(target.clone()).await).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "backup_restore");
    assert_eq!(job["result"]["target_dir"], target.display().to_string());
    assert!(target.join("PG_VERSION").is_file());
    let job = wait_for_job(&http, base, &token, &restore(target.clone()).await).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "invalid_input", "{job}");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not empty"),
        "{job}"
    );

    // An unknown server: accepted, and the job says why it failed.
    let r = http
        .post(format!("{base}/api/v1/backups/trigger"))
        .bearer_auth(&token)
        .json(&json!({"server": "ghost", "storage": "local"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = wait_for_job(&http, base, &token, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "not_found", "{job}");

    // Bad requests and unknown ids.
    let ghost = uuid::Uuid::new_v4();
    for (method, path, body, status) in [
        (
            "POST",
            "/api/v1/backups/trigger".to_string(),
            Some(json!({"storage": "local"})),
            400,
        ),
        ("GET", "/api/v1/backups/not-a-uuid".to_string(), None, 400),
        ("GET", format!("/api/v1/backups/{ghost}"), None, 404),
        (
            "POST",
            "/api/v1/backups/import".to_string(),
            Some(json!({})),
            400,
        ),
        (
            "POST",
            "/api/v1/backups/import".to_string(),
            Some(json!({"storage": "nowhere"})),
            404,
        ),
        ("GET", format!("/api/v1/jobs/{ghost}"), None, 404),
        ("GET", "/api/v1/jobs/not-a-uuid".to_string(), None, 400),
        (
            "GET",
            "/api/v1/backups?include_deleted=maybe".to_string(),
            None,
            400,
        ),
        (
            "POST",
            format!("/api/v1/backups/{backup_id}/verify"),
            Some(json!({"restore_tset": true})),
            400,
        ),
        (
            "POST",
            format!("/api/v1/backups/{backup_id}/restore"),
            Some(json!({"start": true})),
            400,
        ),
    ] {
        let mut req = match method {
            "GET" => http.get(format!("{base}{path}")),
            _ => http.post(format!("{base}{path}")),
        }
        .bearer_auth(&token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), status, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"].is_string(),
            "{method} {path}: {body}"
        );
    }

    // What the daemon did is recorded as the token.
    let page = env
        .run(&["--json", "audit", "logs", "--event-type", "backup.created"])
        .ok()
        .json();
    let e = &page["events"][0];
    assert_eq!(e["actor_name"], "backups", "{page}");
    assert_eq!(e["source"], "api", "{page}");
}

/// `kill -9` of `backup run` mid-way: the backup is listed as failed (interrupted), its
/// partial objects have no catalogue, prune removes them, and the next backup is good.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_backup_is_never_listed_as_good() {
    let s = Setup::new(16).await;
    let pool = s.src.pool("postgres").await.unwrap();
    sqlx::query(
        "CREATE TABLE bulk AS SELECT g AS id, repeat(md5(g::text), 8) AS v FROM generate_series(1, 600000) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let sysid = s.sysid().await;
    let backups = s.store.join(&sysid).join("backups");
    let mut child = s
        .env
        .command()
        .args([
            "backup",
            "run",
            "--server",
            "src",
            "--storage",
            "local",
            "--compress",
            "none",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a few objects of base.tar are stored, then SIGKILL.
    let mut partial = None;
    for _ in 0..600 {
        let objects: Vec<String> = files_under(&backups)
            .into_iter()
            .filter(|f| f.contains("/data/base/"))
            .collect();
        if objects.len() >= 3 {
            partial = objects
                .first()
                .map(|f| f.split('/').next().unwrap().to_string());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let id = partial.expect("the backup stored objects before the kill");
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished: {status:?}");
    assert!(
        !backups.join(&id).join("catalogue.json").exists(),
        "no catalogue for a killed backup"
    );

    // The server notices the dead session within moments; until then the row is running.
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = s.env.run(&["backup", "list", "--json"]).ok().json();
        if listed[0]["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "failed", "{listed}");
    assert!(listed[0]["failure_reason"]
        .as_str()
        .unwrap()
        .contains("interrupted"));
    let verify = s.env.run(&["backup", "verify", &id]);
    assert_exit(&verify, 1, &["failed, not completed"]);

    let pruned = s
        .env
        .run(&["backup", "prune", "--server", "src", "--json"])
        .ok()
        .json();
    assert_eq!(pruned["removed"][0]["id"], id.as_str(), "{pruned}");
    assert!(
        is_empty_or_absent(&backups.join(&id)),
        "partial objects removed"
    );

    let good = s
        .env
        .run(&["backup", "run", "--server", "src", "--storage", "local"])
        .ok();
    let good_id = good.stdout.trim().to_string();
    s.env.run(&["backup", "verify", &good_id]).ok();
}
