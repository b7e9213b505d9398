//! SCRATCH (docs author): produces real checkpoint files for docs/AUDIT_LOGGING.md. Not to be
//! committed; deleted once the outputs are captured.

use pganalytics_core::api::*;
use pganalytics_core::audit::event::{personal_digest, HashedFields};
use pganalytics_core::audit::{Actor, Caller, Source};
use serde_json::json;
use sqlx::Row;

fn pretty<T: serde::Serialize>(label: &str, v: &T) {
    println!(
        "=== {label}\n{}",
        serde_json::to_string_pretty(v).unwrap_or_default()
    );
}

async fn open(dir: &str, db: &str) -> Api {
    Api::open(ApiOptions {
        data_dir: Some(dir.into()),
        repository: Some(format!("postgres://postgres@127.0.0.1:5432/{db}")),
        source: Source::Cli,
    })
    .await
    .expect("open")
}

async fn dump(db: &str, ids: &[i64]) {
    let pool = sqlx::PgPool::connect(&format!("postgres://postgres@127.0.0.1:5432/{db}"))
        .await
        .expect("pool");
    for &id in ids {
        let r = sqlx::query(
            "SELECT l.id, l.event_id, l.event_type::text AS event_type,
                l.resource_type::text AS resource_type, l.resource_id, l.action::text AS action,
                l.outcome::text AS outcome, l.source::text AS source, l.actor_id, l.subject_id,
                l.changes::text AS changes, l.old_values::text AS old_values,
                l.new_values::text AS new_values, l.personal_digest::text AS personal_digest,
                l.created_at, l.previous_hash::text AS previous_hash,
                l.content_hash::text AS content_hash, l.personal_salt,
                host(l.ip_address) AS ip, l.user_agent, l.personal_details::text AS pd,
                a.name AS actor_name
             FROM audit_logs l JOIN actors a ON a.id = l.actor_id WHERE l.id = $1",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .expect("row");
        let changes: serde_json::Value =
            serde_json::from_str(&r.get::<String, _>("changes")).unwrap();
        let old: Option<serde_json::Value> = r
            .get::<Option<String>, _>("old_values")
            .map(|s| serde_json::from_str(&s).unwrap());
        let new: Option<serde_json::Value> = r
            .get::<Option<String>, _>("new_values")
            .map(|s| serde_json::from_str(&s).unwrap());
        let event_type: String = r.get("event_type");
        let resource_type: String = r.get("resource_type");
        let resource_id: Option<String> = r.get("resource_id");
        let action: String = r.get("action");
        let outcome: String = r.get("outcome");
        let source: String = r.get("source");
        let pdig: String = r.get("personal_digest");
        let prev: Option<String> = r.get("previous_hash");
        let fields = HashedFields {
            id: r.get("id"),
            event_id: r.get("event_id"),
            event_type: &event_type,
            resource_type: &resource_type,
            resource_id: resource_id.as_deref(),
            action: &action,
            outcome: &outcome,
            source: &source,
            actor_id: r.get("actor_id"),
            subject_id: r.get("subject_id"),
            changes: &changes,
            old_values: old.as_ref(),
            new_values: new.as_ref(),
            personal_digest: pdig.trim_end(),
            created_at: r.get("created_at"),
            previous_hash: prev.as_deref(),
        };
        let canonical = String::from_utf8(fields.canonical().unwrap()).unwrap();
        println!("=== event {id} canonical\n{canonical}");
        println!(
            "content_hash (recomputed) {}",
            fields.content_hash().unwrap()
        );
        println!(
            "content_hash (stored)     {}",
            r.get::<String, _>("content_hash")
        );
        let salt: Option<Vec<u8>> = r.get("personal_salt");
        let name: String = r.get("actor_name");
        let ip: Option<String> = r.get("ip");
        let ua: Option<String> = r.get("user_agent");
        let pd: Option<serde_json::Value> = r
            .get::<Option<String>, _>("pd")
            .map(|s| serde_json::from_str(&s).unwrap());
        match salt {
            Some(salt) => {
                let doc = json!({"actor_name": name, "ip_address": ip, "personal_details": pd, "user_agent": ua});
                println!(
                    "personal salt {} jcs {} digest(recomputed) {} stored {}",
                    hex::encode(&salt),
                    String::from_utf8(
                        pganalytics_core::audit::event::canonical_bytes(&doc).unwrap()
                    )
                    .unwrap(),
                    personal_digest(&salt, &name, ip.as_deref(), ua.as_deref(), pd.as_ref()),
                    pdig
                );
            }
            None => println!("personal fields erased; actor name now {name}"),
        }
    }
    pool.close().await;
}

async fn verify(api: &Api, label: &str) {
    let v = api.audit_verify(AuditVerifyRequest::default()).await;
    match v {
        Ok(v) => pretty(label, &v),
        Err(e) => pretty(label, &e),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, dir, db) = (args[1].as_str(), args[2].as_str(), args[3].as_str());
    match mode {
        "setup" => {
            let algorithm = args[4].clone();
            let api = open(dir, db).await;
            let info = api
                .audit_keygen(AuditKeygenRequest {
                    algorithm: Some(algorithm),
                    key_file: Some(format!("{dir}/k.pem")),
                    checkpoints: Some(format!("{dir}/checkpoints")),
                })
                .await
                .expect("keygen");
            pretty("keygen", &info);
            let logged = api
                .audit_log_event(AuditLogRequest {
                    actor: "alice@example.com".into(),
                    action: "approve".into(),
                    resource_type: "change_request".into(),
                    resource_id: Some("CHG-1234".into()),
                    event_type: None,
                    outcome: None,
                    details: Some(json!({"ticket": "CHG-1234", "window": "2026-11-30T02:00Z"})),
                    old_values: Some(json!({"status": "pending"})),
                    new_values: Some(json!({"status": "approved"})),
                })
                .await
                .expect("log");
            pretty("logged", &logged);
            let remote = api.with_caller(Caller {
                actor: Actor::api_token("grafana"),
                source: Source::Daemon,
                ip_address: Some("203.0.113.7".parse().unwrap()),
                user_agent: Some("curl/8.5.0".into()),
            });
            let _ = remote.authenticate_token("not-a-token").await;
            let _ = remote
                .audit_logs(AuditLogsRequest {
                    action: Some("approve".into()),
                    ..Default::default()
                })
                .await;
            let _ = api
                .server_add(ServerAddRequest {
                    name: "prod".into(),
                    dsn: "host=db1.example.com user=monitor dbname=postgres".into(),
                    skip_check: Some(true),
                })
                .await;
            let _ = api
                .server_remove(ServerName {
                    name: "prod".into(),
                })
                .await;
            let _ = api
                .metrics_prune(MetricsPruneRequest {
                    keep: "30d".into(),
                    server: None,
                })
                .await;
            let cp = api.audit_checkpoint(Empty {}).await;
            pretty("checkpoint", &cp.map_err(|e| e.message));
            verify(&api, "verify").await;
            api.close().await;
        }
        "more" => {
            let api = open(dir, db).await;
            let _ = api
                .token_create(TokenCreateRequest {
                    name: "prometheus".into(),
                })
                .await;
            api.close().await;
        }
        "dump" => {
            let ids: Vec<i64> = args[4..].iter().map(|s| s.parse().unwrap()).collect();
            dump(db, &ids).await;
        }
        "verify" => {
            let api = open(dir, db).await;
            verify(&api, "verify").await;
            api.close().await;
        }
        "verifykey" => {
            let api = open(dir, db).await;
            let v = api
                .audit_verify(AuditVerifyRequest {
                    public_key: Some(args[4].clone()),
                    from: args.get(5).map(|s| s.parse().unwrap()),
                    to: args.get(6).map(|s| s.parse().unwrap()),
                    checkpoints: None,
                })
                .await;
            match v {
                Ok(v) => pretty("verify", &v),
                Err(e) => pretty("verify", &e),
            }
            api.close().await;
        }
        "stale" => {
            let ev = |actor: &str| AuditLogRequest {
                actor: actor.into(),
                action: "approve".into(),
                resource_type: "change_request".into(),
                resource_id: Some("CHG-9".into()),
                event_type: None,
                outcome: None,
                details: None,
                old_values: None,
                new_values: None,
            };
            let daemon = open(dir, db).await;
            pretty(
                "first",
                &daemon
                    .audit_log_event(ev("bob@example.com"))
                    .await
                    .map_err(|e| e.message),
            );
            let cli = open(dir, db).await;
            pretty(
                "erase",
                &cli.audit_erase_subject(AuditEraseRequest {
                    actor: "bob@example.com".into(),
                })
                .await
                .map_err(|e| e.message),
            );
            cli.close().await;
            pretty(
                "again",
                &daemon
                    .audit_log_event(ev("bob@example.com"))
                    .await
                    .map_err(|e| e.message),
            );
            daemon.close().await;
            let v = open(dir, db).await;
            verify(&v, "verify").await;
            v.close().await;
        }
        "retain" => {
            let api = open(dir, db).await;
            pretty(
                "policy",
                &api.audit_retention_set(AuditRetentionSetRequest {
                    retention_days: 365,
                    archive_after_days: Some(90),
                    deletion_allowed: Some(true),
                    compliance_framework: Some("PCI-DSS".into()),
                })
                .await
                .map_err(|e| e.message),
            );
            let cutoff: chrono::DateTime<chrono::Utc> = args[4].parse().unwrap();
            pretty(
                "applied",
                &api.audit_log()
                    .apply_retention_before(cutoff, false)
                    .await
                    .map_err(|e| e.message),
            );
            api.close().await;
            let api = open(dir, db).await;
            verify(&api, "verify after retention").await;
            api.close().await;
        }
        "erase" => {
            let api = open(dir, db).await;
            let r = api
                .audit_erase_subject(AuditEraseRequest {
                    actor: args[4].clone(),
                })
                .await;
            pretty("erase", &r.map_err(|e| e.message));
            verify(&api, "verify after erasure").await;
            api.close().await;
        }
        "prove" => {
            let api = open(dir, db).await;
            let r = api
                .audit_prove(AuditEventId {
                    id: args[4].parse().unwrap(),
                })
                .await;
            pretty("prove", &r.map_err(|e| e.message));
            api.close().await;
        }
        "status" => {
            let api = open(dir, db).await;
            pretty(
                "status",
                &api.audit_status(Empty {}).await.map_err(|e| e.message),
            );
            api.close().await;
        }
        other => panic!("unknown mode {other}"),
    }
}
