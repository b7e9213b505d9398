//! The audit log: append and verify on every major version, the tamper matrix (each case done
//! the way a superuser would), concurrent writers, retention, erasure, keys and privileges.

use crate::each_major;
use crate::support::api_on;
use pganalytics_core::api::{
    Api, AuditEraseRequest, AuditEventId, AuditKeygenRequest, AuditLogRequest, AuditLogsRequest,
    AuditProblem, AuditRetentionSetRequest, AuditVerification, AuditVerifyRequest, Empty,
};
use pganalytics_core::audit::event::HashedFields;
use pganalytics_core::audit::{Actor, Caller, NewEvent, Source};
use pganalytics_testkit::sqlx_pool::PgPool;
use pganalytics_testkit::TestCluster;
use sqlx::Row;

/// A repository with an audit log, its signing key in a file, and a superuser's connection to
/// the repository database (the attacker's).
struct Log {
    api: Api,
    dir: tempfile::TempDir,
    db: PgPool,
    db_name: String,
    cluster: TestCluster,
}

async fn log_with_key(major: u32, algorithm: &str) -> Log {
    let cluster = pganalytics_testkit::pg(major).await.expect("cluster");
    let (api, dir) = api_on(&cluster).await;
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(api.repository().pool())
        .await
        .unwrap();
    let db = cluster.pool(&name).await.unwrap();
    api.audit_keygen(AuditKeygenRequest {
        algorithm: Some(algorithm.into()),
        key_file: Some(dir.path().join("signing.pem").display().to_string()),
        checkpoints: None,
    })
    .await
    .expect("keygen");
    Log {
        api,
        dir,
        db,
        db_name: name,
        cluster,
    }
}

fn external(actor: &str, action: &str, n: usize) -> AuditLogRequest {
    AuditLogRequest {
        actor: actor.into(),
        action: action.into(),
        resource_type: "table".into(),
        resource_id: Some(format!("public.t{n}")),
        event_type: None,
        outcome: None,
        details: Some(serde_json::json!({ "n": n, "ticket": "CHG-1" })),
        old_values: Some(serde_json::json!({ "rows": n })),
        new_values: Some(serde_json::json!({ "rows": n + 1 })),
        personal_details: None,
    }
}

impl Log {
    /// `n` external events, then a signed checkpoint covering them.
    async fn fill(&self, n: usize) {
        for i in 0..n {
            self.api
                .audit_log_event(external("alice", "update", i))
                .await
                .expect("log");
        }
        self.api.audit_log().flush().await.expect("flush");
    }

    async fn verify(&self) -> AuditVerification {
        self.api
            .audit_verify(AuditVerifyRequest::default())
            .await
            .expect("verify runs")
    }

    /// What a superuser does first: the append-only trigger is ENABLE ALWAYS, so neither
    /// `session_replication_role` nor `DISABLE TRIGGER USER`... only naming it turns it off.
    async fn attack(&self, sql: &str) {
        let mut tx = self.db.begin().await.unwrap();
        sqlx::query("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only")
            .execute(&mut *tx)
            .await
            .unwrap();
        for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
            sqlx::query(statement).execute(&mut *tx).await.unwrap();
        }
        sqlx::query("ALTER TABLE audit_logs ENABLE ALWAYS TRIGGER audit_logs_append_only")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    async fn max_id(&self) -> i64 {
        sqlx::query_scalar("SELECT max(id) FROM audit_logs")
            .fetch_one(&self.db)
            .await
            .unwrap()
    }
}

#[track_caller]
fn assert_detected(report: &AuditVerification, problem: AuditProblem, id: Option<i64>) {
    assert!(!report.intact, "tampering not detected: {report:#?}");
    assert_eq!(report.problem, Some(problem), "wrong problem: {report:#?}");
    if id.is_some() {
        assert_eq!(report.first_bad_id, id, "wrong first bad id: {report:#?}");
    }
}

async fn append_and_verify(major: u32) {
    let algorithm = if major.is_multiple_of(2) {
        "ed25519"
    } else {
        "rsa-2048"
    };
    let log = log_with_key(major, algorithm).await;
    log.fill(30).await;
    let report = log.verify().await;
    assert!(report.intact, "{report:#?}");
    assert!(report.events_checked >= 30, "{report:#?}");
    let checkpoint = report.checkpoint.expect("checked against a checkpoint");
    assert_eq!(checkpoint.algorithm, algorithm);
    assert!(checkpoint.tree_size >= 30);
    // The same log, one field changed by a superuser: detected and named.
    log.attack("UPDATE audit_logs SET resource_id = 'public.other' WHERE id = 12")
        .await;
    assert_detected(&log.verify().await, AuditProblem::ContentChanged, Some(12));
}
each_major!(append_and_verify);

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_field_is_named() {
    let log = log_with_key(16, "rsa-2048").await;
    log.fill(20).await;
    log.attack("UPDATE audit_logs SET action = 'read' WHERE id = 10")
        .await;
    assert_detected(&log.verify().await, AuditProblem::ContentChanged, Some(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_event_is_named() {
    let log = log_with_key(16, "rsa-2048").await;
    log.fill(20).await;
    log.attack("DELETE FROM audit_logs WHERE id = 10").await;
    assert_detected(&log.verify().await, AuditProblem::EventMissing, Some(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_event_with_renumbered_successors_is_named() {
    let log = log_with_key(16, "rsa-2048").await;
    log.fill(20).await;
    log.attack(
        "DELETE FROM audit_logs WHERE id = 10;
         UPDATE audit_logs SET id = -id WHERE id > 10;
         UPDATE audit_logs SET id = -id - 1 WHERE id < 0",
    )
    .await;
    assert_detected(&log.verify().await, AuditProblem::EventMissing, Some(10));
}

/// Forge an event at `id` with a correct content hash (the format is public) chained to the
/// event before it, after moving the later events down by one.
async fn forge_at(log: &Log, id: i64) {
    log.attack(&format!(
        "UPDATE audit_logs SET id = -id WHERE id >= {id};
         UPDATE audit_logs SET id = -id + 1 WHERE id < 0"
    ))
    .await;
    let row = sqlx::query(
        "SELECT event_type::text, resource_type::text, action::text, outcome::text, source::text,
                actor_id, changes, personal_digest::text, content_hash::text AS h
         FROM audit_logs WHERE id = $1",
    )
    .bind(id - 1)
    .fetch_one(&log.db)
    .await
    .unwrap();
    let changes: serde_json::Value = serde_json::json!({ "forged": true });
    let previous: String = row.get("h");
    let event_id = uuid::Uuid::new_v4();
    let created_at = chrono::Utc::now();
    let created_at =
        chrono::DateTime::from_timestamp_micros(created_at.timestamp_micros()).unwrap();
    let fields = HashedFields {
        id,
        event_id,
        event_type: row.get::<&str, _>(0),
        resource_type: row.get::<&str, _>(1),
        resource_id: Some("public.forged"),
        action: row.get::<&str, _>(2),
        outcome: row.get::<&str, _>(3),
        source: row.get::<&str, _>(4),
        actor_id: row.get("actor_id"),
        subject_id: None,
        changes: &changes,
        old_values: None,
        new_values: None,
        personal_digest: row.get::<&str, _>(7),
        created_at,
        previous_hash: Some(&previous),
    };
    let hash = fields.content_hash().unwrap();
    sqlx::query(
        "INSERT INTO audit_logs (id, event_id, event_type, resource_type, resource_id, action,
             outcome, source, actor_id, changes, personal_digest, content_hash, previous_hash,
             created_at)
         VALUES ($1, $2, $3, $4, 'public.forged', $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(id)
    .bind(event_id)
    .bind(fields.event_type)
    .bind(fields.resource_type)
    .bind(fields.action)
    .bind(fields.outcome)
    .bind(fields.source)
    .bind(fields.actor_id)
    .bind(&changes)
    .bind(fields.personal_digest)
    .bind(&hash)
    .bind(&previous)
    .bind(created_at)
    .execute(&log.db)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_event_inserted_in_the_middle_is_named() {
    let log = log_with_key(16, "rsa-2048").await;
    log.fill(20).await;
    forge_at(&log, 10).await;
    assert_detected(&log.verify().await, AuditProblem::EventInserted, Some(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn swapped_events_are_named() {
    let log = log_with_key(16, "rsa-2048").await;
    log.fill(20).await;
    log.attack(
        "UPDATE audit_logs SET id = -10 WHERE id = 10;
         UPDATE audit_logs SET id = 10 WHERE id = 11;
         UPDATE audit_logs SET id = 11 WHERE id = -10",
    )
    .await;
    assert_detected(&log.verify().await, AuditProblem::OrderChanged, Some(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_tail_is_named() {
    let log = log_with_key(16, "rsa-2048").await;
    log.fill(20).await;
    log.attack("DELETE FROM audit_logs WHERE id > 15").await;
    assert_detected(&log.verify().await, AuditProblem::TailMissing, Some(16));
}

/// The oldest events removed without retention's seal: verification starts at event 1, not
/// at the oldest row left (which is where it began reading before the checkpoints were
/// checked).
#[tokio::test(flavor = "multi_thread")]
async fn the_oldest_events_deleted_without_a_seal_are_named() {
    let log = log_with_key(16, "rsa-2048").await;
    log.fill(20).await;
    log.attack("DELETE FROM audit_logs WHERE id <= 5").await;
    assert_detected(&log.verify().await, AuditProblem::EventMissing, Some(1));
}

/// The strongest database-only attack: change an event and recompute every hash after it,
/// so the chain in the database is perfectly consistent. The external checkpoint catches it.
#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_chain_with_fresh_hashes_is_named() {
    let log = log_with_key(16, "rsa-2048").await;
    log.fill(20).await;
    let max = log.max_id().await;
    let mut previous: Option<String> =
        sqlx::query_scalar("SELECT content_hash::text FROM audit_logs WHERE id = 4")
            .fetch_one(&log.db)
            .await
            .unwrap();
    let mut statements = Vec::new();
    for id in 5..=max {
        let row = sqlx::query(
            "SELECT event_id, event_type::text, resource_type::text, resource_id, action::text,
                    outcome::text, source::text, actor_id, subject_id, changes, old_values,
                    new_values, personal_digest::text, created_at
             FROM audit_logs WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&log.db)
        .await
        .unwrap();
        let action = if id == 5 {
            "read"
        } else {
            row.get::<&str, _>(4)
        };
        let changes: serde_json::Value = row.get(9);
        let old: Option<serde_json::Value> = row.get(10);
        let new: Option<serde_json::Value> = row.get(11);
        let hash = HashedFields {
            id,
            event_id: row.get(0),
            event_type: row.get::<&str, _>(1),
            resource_type: row.get::<&str, _>(2),
            resource_id: row.get::<Option<&str>, _>(3),
            action,
            outcome: row.get::<&str, _>(5),
            source: row.get::<&str, _>(6),
            actor_id: row.get(7),
            subject_id: row.get(8),
            changes: &changes,
            old_values: old.as_ref(),
            new_values: new.as_ref(),
            personal_digest: row.get::<&str, _>(12),
            created_at: row.get(13),
            previous_hash: previous.as_deref(),
        }
        .content_hash()
        .unwrap();
        statements.push(format!(
            "UPDATE audit_logs SET action = '{action}', content_hash = '{hash}', previous_hash = '{}' WHERE id = {id}",
            previous.as_deref().unwrap_or_default()
        ));
        previous = Some(hash);
    }
    log.attack(&statements.join(";")).await;
    let report = log.verify().await;
    assert_detected(&report, AuditProblem::ContentChanged, Some(5));
    assert!(report.detail.unwrap().contains("signed log"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_signature_is_named() {
    let log = log_with_key(16, "rsa-2048").await;
    log.fill(5).await;
    log.fill(5).await;
    // Replace the database copy's signature of the newest checkpoint with that of an older one.
    let mut tx = log.db.begin().await.unwrap();
    sqlx::query(
        "ALTER TABLE audit_log_verification DISABLE TRIGGER audit_log_verification_append_only",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE audit_log_verification SET signature = (
             SELECT signature FROM audit_log_verification WHERE kind = 'checkpoint'
             ORDER BY tree_size LIMIT 1)
         WHERE kind = 'checkpoint' AND tree_size = (
             SELECT max(tree_size) FROM audit_log_verification WHERE kind = 'checkpoint')",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_detected(&log.verify().await, AuditProblem::SignatureInvalid, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_external_signature_is_named() {
    let log = log_with_key(16, "ed25519").await;
    log.fill(10).await;
    let status = log.api.audit_status(Empty {}).await.unwrap();
    let newest = std::fs::read_dir(&status.checkpoints)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".checkpoint.json"))
        .max()
        .unwrap();
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&newest).unwrap()).unwrap();
    let forged = pganalytics_core::audit::keys::SigningKey::generate(
        pganalytics_core::audit::keys::Algorithm::Ed25519,
    )
    .unwrap()
    .sign(json["note"].as_str().unwrap().as_bytes())
    .unwrap();
    use base64::Engine;
    json["signature"] = base64::engine::general_purpose::STANDARD
        .encode(forged)
        .into();
    std::fs::write(&newest, serde_json::to_vec(&json).unwrap()).unwrap();
    assert_detected(&log.verify().await, AuditProblem::SignatureInvalid, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wrong_public_key_fails_clearly() {
    let log = log_with_key(15, "rsa-2048").await;
    log.fill(5).await;
    let other = pganalytics_core::audit::keys::SigningKey::generate(
        pganalytics_core::audit::keys::Algorithm::Rsa2048,
    )
    .unwrap();
    let path = log.dir.path().join("other.pem");
    std::fs::write(&path, other.verifying_key().to_public_key_pem().unwrap()).unwrap();
    let report = log
        .api
        .audit_verify(AuditVerifyRequest {
            public_key: Some(path.display().to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_detected(&report, AuditProblem::SignatureInvalid, None);
    assert!(
        report
            .detail
            .as_deref()
            .unwrap()
            .contains("not by the given public key"),
        "{report:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_refuses_changes_even_to_a_superuser_in_replica_mode() {
    let log = log_with_key(17, "ed25519").await;
    log.fill(3).await;
    // The application's own role has no such privilege at all.
    let err = sqlx::query("UPDATE audit_logs SET action = 'x' WHERE id = 1")
        .execute(log.api.repository().pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    // A superuser hits the triggers, also with session_replication_role = replica.
    let mut conn = log.db.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    for sql in [
        "UPDATE audit_logs SET action = 'x' WHERE id = 1",
        "DELETE FROM audit_logs WHERE id = 1",
        "TRUNCATE audit_logs",
        "DELETE FROM audit_log_verification",
    ] {
        let err = sqlx::query(sql).execute(&mut *conn).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert!(log.verify().await.intact);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writers_make_one_valid_chain() {
    let log = log_with_key(16, "ed25519").await;
    let before = log.max_id().await;
    // Two processes' worth of writers: this Api, and a second one opened on the same
    // repository (its own writer task), 4 tasks each.
    let second = Api::open(pganalytics_core::api::ApiOptions {
        data_dir: Some(log.dir.path().join("second")),
        repository: Some(log.cluster.dsn(&log.db_name)),
        ..Default::default()
    })
    .await;
    let second = match second {
        Ok(api) => api,
        Err(e) => panic!("second writer: {e}"),
    };
    let mut tasks = Vec::new();
    for w in 0u32..8 {
        let api = if w.is_multiple_of(2) {
            log.api.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            let caller = Caller {
                actor: Actor::external(&format!("writer{w}")),
                source: Source::Api,
                ip_address: Some("10.0.0.1".parse().unwrap()),
                user_agent: Some("load/1".into()),
            };
            for i in 0..250 {
                api.audit_log()
                    .log(
                        &caller,
                        NewEvent::new("load.event", "create", "row").resource(i.to_string()),
                    )
                    .await
                    .unwrap();
            }
            api.audit_log().sync().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    second.close().await;
    let (count, min, max): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), min(id), max(id) FROM audit_logs WHERE event_type = 'load.event'",
    )
    .fetch_one(&log.db)
    .await
    .unwrap();
    assert_eq!(count, 2000);
    assert!(min > before);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_logs")
        .fetch_one(&log.db)
        .await
        .unwrap();
    assert_eq!(total, log.max_id().await, "positions are dense");
    assert!(max <= total);
    log.api.audit_log().flush().await.unwrap();
    let report = log.verify().await;
    assert!(report.intact, "{report:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_removes_a_sealed_range_and_the_rest_still_verifies() {
    let log = log_with_key(18, "rsa-2048").await;
    log.fill(10).await;
    let cutoff = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    log.fill(10).await;
    // Deletion needs a policy that allows it.
    let refused = log
        .api
        .audit_log()
        .apply_retention_before(cutoff, false)
        .await;
    assert!(refused.is_err());
    log.api
        .audit_retention_set(AuditRetentionSetRequest {
            retention_days: 30,
            archive_after_days: None,
            deletion_allowed: Some(true),
            compliance_framework: Some("SOX".into()),
        })
        .await
        .unwrap();
    let result = log
        .api
        .audit_log()
        .apply_retention_before(cutoff, false)
        .await
        .unwrap();
    let through = result.through_id.expect("something was old enough");
    assert!(
        result.removed >= 10 && result.removed == through,
        "{result:?}"
    );
    let min: i64 = sqlx::query_scalar("SELECT min(id) FROM audit_logs")
        .fetch_one(&log.db)
        .await
        .unwrap();
    assert_eq!(min, through + 1);
    log.api.audit_log().flush().await.unwrap();
    let report = log.verify().await;
    assert!(report.intact, "{report:#?}");
    // New events after retention still chain on.
    log.fill(3).await;
    assert!(log.verify().await.intact);
    // Deleting more than the seal covers is still detected.
    log.attack(&format!(
        "DELETE FROM audit_logs WHERE id = {}",
        through + 2
    ))
    .await;
    assert_detected(
        &log.verify().await,
        AuditProblem::EventMissing,
        Some(through + 2),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn erasure_removes_personal_data_and_verification_still_passes() {
    let log = log_with_key(15, "ed25519").await;
    let alice = Caller {
        actor: Actor::external("alice"),
        source: Source::Api,
        ip_address: Some("192.0.2.7".parse().unwrap()),
        user_agent: Some("Mozilla/5.0 (alice's laptop)".into()),
    };
    let mut event = NewEvent::new("user.updated", "update", "user");
    event.personal_details = Some(serde_json::json!({ "email": "alice@example.com" }));
    log.api.audit_log().log(&alice, event).await.unwrap();
    log.fill(3).await;
    assert!(log.verify().await.intact);
    let erased = log
        .api
        .audit_erase_subject(AuditEraseRequest {
            actor: "alice".into(),
        })
        .await
        .unwrap();
    assert!(erased.events_erased >= 4, "{erased:?}");
    // No trace of her personal data is left in the repository.
    let leftovers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_logs l JOIN actors a ON a.id = l.actor_id
         WHERE a.name = 'alice' OR l.ip_address = '192.0.2.7' OR l.user_agent LIKE '%alice%'
            OR l.personal_details::text LIKE '%alice%'",
    )
    .fetch_one(&log.db)
    .await
    .unwrap();
    assert_eq!(leftovers, 0);
    let page = log
        .api
        .audit_logs(AuditLogsRequest {
            actor: Some(erased.actor_id.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page
        .events
        .iter()
        .all(|e| e.personal_erased && e.ip_address.is_none()));
    let report = log.verify().await;
    assert!(report.intact, "{report:#?}");
    // Removing someone's personal data without an erasure is tampering.
    log.attack("UPDATE audit_logs SET ip_address = NULL, user_agent = NULL, personal_salt = NULL WHERE id = (SELECT max(id) FROM audit_logs WHERE personal_salt IS NOT NULL)")
        .await;
    assert_detected(&log.verify().await, AuditProblem::ContentChanged, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_of_the_api_are_recorded_with_outcome() {
    let log = log_with_key(16, "ed25519").await;
    // A failed action is recorded too.
    let failed = log
        .api
        .server_add(crate::support::add(
            "nowhere",
            "host=127.0.0.1 port=1 dbname=x",
        ))
        .await;
    assert!(failed.is_err());
    let page = log
        .api
        .audit_logs(AuditLogsRequest {
            event_type: Some("server.added".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let event = &page.events[0];
    assert_eq!(event.outcome, pganalytics_core::api::AuditOutcome::Failure);
    assert_eq!(event.resource_id.as_deref(), Some("nowhere"));
    assert_eq!(event.source, "cli");
    assert_eq!(event.actor_kind, "os_user");
    assert!(event.changes["error_code"].is_string());
    let shown = log
        .api
        .audit_show(AuditEventId { id: event.id })
        .await
        .unwrap();
    assert_eq!(shown.event_id, event.event_id);
    // The key creation itself is in the log.
    let keys = log
        .api
        .audit_logs(AuditLogsRequest {
            event_type: Some("audit.key_created".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(keys.total, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inclusion_proof_leads_to_the_signed_root() {
    let log = log_with_key(16, "rsa-2048").await;
    log.fill(13).await;
    let proof = log.api.audit_prove(AuditEventId { id: 7 }).await.unwrap();
    assert!(proof.verified, "{proof:#?}");
    assert_eq!(proof.leaf_index, 6);
    assert!(proof.tree_size >= 13);
    let root = pganalytics_core::audit::checkpoint::parse_hash(&proof.root_hash).unwrap();
    let leaf = pganalytics_core::audit::merkle::leaf_hash(
        &pganalytics_core::audit::checkpoint::parse_hash(&proof.content_hash).unwrap(),
    );
    let path: Vec<_> = proof
        .proof
        .iter()
        .map(|h| pganalytics_core::audit::checkpoint::parse_hash(h).unwrap())
        .collect();
    assert!(pganalytics_core::audit::merkle::verify_inclusion(
        &leaf,
        6,
        proof.tree_size as u64,
        &path,
        &root
    ));
    let mut wrong = leaf;
    wrong[0] ^= 1;
    assert!(!pganalytics_core::audit::merkle::verify_inclusion(
        &wrong,
        6,
        proof.tree_size as u64,
        &path,
        &root
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_events_are_refused_before_they_reach_the_batch() {
    let log = log_with_key(16, "ed25519").await;
    let mut bad = external("bob", "update", 1);
    bad.details = Some(serde_json::json!({ "text": "nul\u{0}byte" }));
    let err = log.api.audit_log_event(bad).await.unwrap_err();
    assert_eq!(err.code, pganalytics_core::ErrorCode::InvalidInput);
    let mut not_object = external("bob", "update", 1);
    not_object.details = Some(serde_json::json!([1, 2]));
    assert!(log.api.audit_log_event(not_object).await.is_err());
    // The writer is unaffected.
    log.fill(2).await;
    assert!(log.verify().await.intact);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_key_the_chain_is_still_checked_and_the_report_says_what_is_not() {
    let cluster = pganalytics_testkit::pg(16).await.expect("cluster");
    let (api, _dir) = api_on(&cluster).await;
    for i in 0..5 {
        api.audit_log_event(external("carol", "update", i))
            .await
            .unwrap();
    }
    let report = api
        .audit_verify(AuditVerifyRequest::default())
        .await
        .unwrap();
    assert!(report.intact, "{report:#?}");
    assert!(report.checkpoint.is_none());
    assert!(
        report.warnings.iter().any(|w| w.contains("keygen")),
        "{report:#?}"
    );
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(api.repository().pool())
        .await
        .unwrap();
    let db = cluster.pool(&name).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    for sql in [
        "ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only",
        "DELETE FROM audit_logs WHERE id = 3",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let report = api
        .audit_verify(AuditVerifyRequest::default())
        .await
        .unwrap();
    assert_detected(&report, AuditProblem::EventMissing, Some(3));
}

/// A second process (its own writer and actor cache) on the same repository.
async fn second_process(log: &Log, name: &str) -> Api {
    Api::open(pganalytics_core::api::ApiOptions {
        data_dir: Some(log.dir.path().join(name)),
        repository: Some(log.cluster.dsn(&log.db_name)),
        ..Default::default()
    })
    .await
    .expect("second process")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_actor_erased_by_another_process_gets_a_new_pseudonym_there() {
    let log = log_with_key(16, "ed25519").await;
    let other = second_process(&log, "other").await;
    let bob = Caller {
        actor: Actor::external("bob"),
        source: Source::Api,
        ip_address: Some("198.51.100.4".parse().unwrap()),
        user_agent: None,
    };
    let (_, _) = other
        .audit_log()
        .log_durable(&bob, NewEvent::new("user.login", "login", "session"))
        .await
        .unwrap();
    let erased = log
        .api
        .audit_erase_subject(AuditEraseRequest {
            actor: "bob".into(),
        })
        .await
        .unwrap();
    // `other` still has bob's old id cached; its next event must not land under it.
    let (id, _) = other
        .audit_log()
        .log_durable(&bob, NewEvent::new("user.login", "login", "session"))
        .await
        .unwrap();
    let actor: uuid::Uuid = sqlx::query_scalar("SELECT actor_id FROM audit_logs WHERE id = $1")
        .bind(id)
        .fetch_one(&log.db)
        .await
        .unwrap();
    assert_ne!(actor, erased.actor_id);
    other.close().await;
    // A checkpoint with nothing new to sign must not leave its lock behind.
    let signed = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        log.api.audit_checkpoint(Empty {}),
    )
    .await
    .expect("checkpointing does not hang")
    .unwrap();
    if let Some(c) = signed {
        assert_eq!(c.algorithm, "ed25519");
        assert!(c.key_fingerprint.starts_with("sha256:"));
    }
    let report = log.verify().await;
    assert!(report.intact, "{report:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_checkpoint_folder_that_lacks_signed_checkpoints_is_refused() {
    let log = log_with_key(16, "rsa-2048").await;
    log.fill(4).await;
    let empty = log.dir.path().join("empty-folder");
    std::fs::create_dir_all(&empty).unwrap();
    let report = log
        .api
        .audit_verify(AuditVerifyRequest {
            checkpoints: Some(empty.display().to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_detected(&report, AuditProblem::CheckpointsMissing, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn keygen_writes_checkpoints_to_the_folder_it_names() {
    let cluster = pganalytics_testkit::pg(16).await.expect("cluster");
    let (api, dir) = api_on(&cluster).await;
    let folder = dir.path().join("elsewhere");
    api.audit_keygen(AuditKeygenRequest {
        algorithm: Some("ed25519".into()),
        key_file: Some(dir.path().join("k.pem").display().to_string()),
        checkpoints: Some(folder.display().to_string()),
    })
    .await
    .unwrap();
    let status = api.audit_status(Empty {}).await.unwrap();
    assert!(status
        .checkpoints
        .starts_with(&folder.display().to_string()));
    let written = std::fs::read_dir(folder.join(status.log_id.to_string()))
        .unwrap()
        .count();
    assert!(written >= 4, "note, signature, leaves and checkpoint files");
}
