//! The daemon: health, token authentication, version, OpenAPI document, port conflicts.

use crate::support::Env;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// A running `pganalytics serve`, killed on drop.
struct Daemon {
    child: Child,
    base: String,
}

impl Daemon {
    fn start(env: &Env) -> Daemon {
        let mut child = env
            .command()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start daemon");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listening line");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Daemon { child, base }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_requires_a_token_and_serves_version_and_openapi() {
    let repo = pganalytics_testkit::pg(16).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let token = env
        .run(&["token", "create", "ci"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(token.starts_with("pga_") && token.len() > 40);
    let daemon = Daemon::start(&env);
    let http = reqwest::Client::new();

    let health = http
        .get(format!("{}/healthz", daemon.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let anonymous = http
        .get(format!("{}/api/v1/version", daemon.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let wrong = http
        .get(format!("{}/api/v1/version", daemon.base))
        .bearer_auth("pga_0000")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let version = http
        .get(format!("{}/api/v1/version", daemon.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(version.status(), 200);
    let body: serde_json::Value = version.json().await.unwrap();
    assert_eq!(body["version"], pganalytics_core::VERSION);

    let servers = http
        .get(format!("{}/api/v1/servers", daemon.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        servers.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!([])
    );

    // The token's use is recorded; the token itself is never listed.
    let tokens = env.run(&["token", "list"]).ok().stdout;
    assert!(
        tokens.contains("ci") && !tokens.contains(&token) && !tokens.contains("never"),
        "{tokens}"
    );

    let doc: serde_json::Value = http
        .get(format!("{}/api/v1/openapi.json", daemon.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    insta::assert_json_snapshot!("openapi", doc, { ".info.version" => "[version]" });
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_reports_a_port_in_use() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let run = env.run(&["serve", "--listen", &addr]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("already used by another program"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--listen"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_token_names_are_refused() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    env.run(&["token", "create", "grafana"]).ok();
    let run = env.run(&["token", "create", "grafana"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
}

/// Engine metrics over HTTP: a snapshot, the report, and typed errors with their statuses.
#[tokio::test(flavor = "multi_thread")]
async fn daemon_serves_metrics_snapshot_and_report() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let target = pganalytics_testkit::pg(18).await.unwrap();
    env.run(&["server", "add", "db18", "--dsn", &target.dsn("postgres")])
        .ok();
    let token = env
        .run(&["token", "create", "m"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let daemon = Daemon::start(&env);
    let http = reqwest::Client::new();

    let snap = http
        .post(format!(
            "{}/api/v1/servers/db18/metrics/snapshot",
            daemon.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(snap.status(), 200);
    let snap: serde_json::Value = snap.json().await.unwrap();
    let snap_id = snap["snap_id"].as_i64().unwrap();
    assert!(
        snap["values"]["bgwriter"]["checkpoints_done"].is_i64(),
        "18 has num_done"
    );

    let report = http
        .get(format!(
            "{}/api/v1/servers/db18/metrics?since=10m",
            daemon.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
    let report: serde_json::Value = report.json().await.unwrap();
    assert_eq!(report["latest_snap_id"].as_i64(), Some(snap_id));

    let missing = http
        .post(format!(
            "{}/api/v1/servers/ghost/metrics/snapshot",
            daemon.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let bad = http
        .get(format!(
            "{}/api/v1/servers/db18/metrics?since=soon",
            daemon.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_input");
    let anonymous = http
        .get(format!("{}/api/v1/servers/db18/metrics", daemon.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
