//! The daemon: health, token authentication, version, OpenAPI document, port conflicts.

use crate::support::{Daemon, Env};

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
    // The daemon collects db18 once at start, then not again within the test: wait for that
    // first round so that the snapshot below is the newest.
    let daemon = Daemon::start_with(&env, &["--interval", "1h"]);
    let http = reqwest::Client::new();
    for attempt in 0.. {
        let text = http
            .get(format!("{}/metrics", daemon.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("pganalytics_up{server=\"db18\"} 1") {
            break;
        }
        assert!(attempt < 100, "db18 never collected: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

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

/// `GET /metrics`: every registered server from memory, a server that is down shows
/// `pganalytics_up 0` with the reason while the other has values, a server registered while
/// the daemon runs is picked up at the next round, the text passes `promtool check metrics`,
/// and the endpoint needs a token like the rest of the API.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_endpoint_serves_every_server_even_when_one_is_down() {
    let repo = pganalytics_testkit::pg(15).await.unwrap();
    let env = Env::with_repository(&repo).await;
    let target = pganalytics_testkit::pg(16).await.unwrap();
    env.run(&["server", "add", "db16", "--dsn", &target.dsn("postgres")])
        .ok();
    let port = pganalytics_core::cluster::free_port().unwrap().to_string();
    let dsn = format!("host=127.0.0.1 port={port} user=postgres");
    env.run(&["server", "add", "down", "--dsn", &dsn, "--skip-check"])
        .ok();
    let token = env
        .run(&["token", "create", "prometheus"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let daemon = Daemon::start_with(&env, &["--interval", "1s", "--keep", "7d"]);
    let http = reqwest::Client::new();
    let scrape = || async {
        let r = http
            .get(format!("{}/metrics", daemon.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        r.text().await.unwrap()
    };
    let wait_for = |needle: &'static str| async move {
        for _ in 0..100 {
            let text = scrape().await;
            if text.contains(needle) {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("`{needle}` never appeared in /metrics: {}", scrape().await);
    };

    let text = wait_for("pganalytics_up{server=\"down\"} 0").await;
    let text = if text.contains("pganalytics_up{server=\"db16\"} 1") {
        text
    } else {
        wait_for("pganalytics_up{server=\"db16\"} 1").await
    };
    assert!(
        text.contains("pganalytics_checkpoints_timed_total{server=\"db16\"}"),
        "{text}"
    );
    assert!(
        text.contains("pganalytics_io_reads_total{server=\"db16\","),
        "16 has pg_stat_io: {text}"
    );
    assert!(
        !text.contains("pganalytics_checkpoints_done_total"),
        "16 has no num_done: {text}"
    );
    let error = text
        .lines()
        .find(|l| l.starts_with("pganalytics_collection_error{server=\"down\""))
        .unwrap_or_else(|| panic!("no reason for the down server: {text}"));
    assert!(error.contains("code=\"unreachable\""), "{error}");
    assert!(error.contains("reason=\"cannot reach"), "{error}");
    assert!(
        !text.contains("server_version_num{server=\"down\""),
        "{text}"
    );
    crate::support::promtool_check(&text);

    // Registered while running: collected at the next round.
    let other = pganalytics_testkit::pg(13).await.unwrap();
    env.run(&["server", "add", "db13", "--dsn", &other.dsn("postgres")])
        .ok();
    let text = wait_for("pganalytics_up{server=\"db13\"} 1").await;
    assert!(
        text.contains("pganalytics_server_version_num{server=\"db13\"} 13"),
        "{text}"
    );
    assert!(text.contains("pganalytics_up{server=\"db16\"} 1"), "{text}");
    crate::support::promtool_check(&text);

    let anonymous = http
        .get(format!("{}/metrics", daemon.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // The daemon stored what it collected.
    let report = env
        .run(&["--json", "metrics", "show", "--server", "db16"])
        .ok()
        .json();
    assert!(report["snapshots_in_window"].as_i64().unwrap() >= 1);
}
