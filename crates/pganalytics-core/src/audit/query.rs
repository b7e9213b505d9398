//! Reading the log: filtered pages, one event, one actor's activity.

use crate::api::{AuditEvent, AuditLogsRequest, AuditOutcome, AuditPage};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, QueryBuilder, Row};
use uuid::Uuid;

const COLUMNS: &str = "l.id, l.event_id, l.event_type::text AS event_type,
    l.resource_type::text AS resource_type, l.resource_id, l.action::text AS action,
    l.outcome::text AS outcome, l.source::text AS source, l.actor_id, a.kind AS actor_kind,
    a.name AS actor_name, l.subject_id, l.changes, l.old_values, l.new_values,
    host(l.ip_address) AS ip_address, l.user_agent, l.personal_details,
    l.personal_salt IS NULL AS personal_erased, l.content_hash::text AS content_hash,
    l.previous_hash::text AS previous_hash, l.created_at";

/// The actor ids a filter names: a UUID, or every actor (of any kind) with that name.
pub async fn resolve_actor(pool: &PgPool, actor: &str) -> Result<Vec<Uuid>> {
    if let Ok(id) = actor.parse::<Uuid>() {
        return Ok(vec![id]);
    }
    let ids: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM actors WHERE name = $1")
        .bind(actor)
        .fetch_all(pool)
        .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

fn filters<'a>(
    q: &mut QueryBuilder<'a, sqlx::Postgres>,
    req: &'a AuditLogsRequest,
    actors: Option<Vec<Uuid>>,
) {
    q.push(" WHERE true");
    if let Some(actors) = actors {
        q.push(" AND l.actor_id = ANY(").push_bind(actors).push(")");
    }
    if let Some(action) = &req.action {
        q.push(" AND l.action = ").push_bind(action);
    }
    if let Some(t) = &req.resource_type {
        q.push(" AND l.resource_type = ").push_bind(t);
    }
    if let Some(t) = &req.event_type {
        q.push(" AND l.event_type = ").push_bind(t);
    }
    if let Some(since) = req.since {
        q.push(" AND l.created_at >= ").push_bind(since);
    }
    if let Some(until) = req.until {
        q.push(" AND l.created_at < ").push_bind(until);
    }
}

pub async fn list(pool: &PgPool, req: &AuditLogsRequest) -> Result<AuditPage> {
    let limit = req.limit.unwrap_or(100);
    let offset = req.offset.unwrap_or(0);
    if !(1..=1000).contains(&limit) || offset < 0 {
        return Err(Error::invalid_input(
            "limit must be 1 to 1000 and offset 0 or more",
        ));
    }
    if let (Some(s), Some(u)) = (req.since, req.until) {
        if s >= u {
            return Err(Error::invalid_input("`since` must be before `until`"));
        }
    }
    let actors = match &req.actor {
        Some(a) => Some(resolve_actor(pool, a).await?),
        None => None,
    };
    let mut count = QueryBuilder::new("SELECT count(*) FROM audit_logs l");
    filters(&mut count, req, actors.clone());
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
    let mut q = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM audit_logs l LEFT JOIN actors a ON a.id = l.actor_id"
    ));
    filters(&mut q, req, actors);
    q.push(" ORDER BY l.id DESC LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    let rows = q.build().fetch_all(pool).await?;
    Ok(AuditPage {
        events: rows.iter().map(event).collect::<Result<_>>()?,
        total,
        limit,
        offset,
    })
}

pub async fn show(pool: &PgPool, id: i64) -> Result<AuditEvent> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_logs l LEFT JOIN actors a ON a.id = l.actor_id WHERE l.id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => event(&row),
        None => Err(Error::not_found(format!("no audit event {id}"))
            .with_hint("list events with `pganalytics audit logs`")),
    }
}

/// Everything one actor did in a window, oldest first.
pub async fn activity(
    pool: &PgPool,
    actor: &str,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<AuditEvent>> {
    let actors = resolve_actor(pool, actor).await?;
    if actors.is_empty() {
        return Err(Error::not_found(format!("no actor named `{actor}`"))
            .with_hint("give the actor's id (UUID) or name as shown by `pganalytics audit logs`"));
    }
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_logs l LEFT JOIN actors a ON a.id = l.actor_id
         WHERE (l.actor_id = ANY($1) OR l.subject_id = ANY($1))
           AND ($2::timestamptz IS NULL OR l.created_at >= $2)
           AND ($3::timestamptz IS NULL OR l.created_at < $3)
         ORDER BY l.id LIMIT 10000"
    ))
    .bind(&actors)
    .bind(since)
    .bind(until)
    .fetch_all(pool)
    .await?;
    rows.iter().map(event).collect()
}

fn event(r: &PgRow) -> Result<AuditEvent> {
    let outcome = match r.try_get::<String, _>("outcome")?.as_str() {
        "failure" => AuditOutcome::Failure,
        "denied" => AuditOutcome::Denied,
        _ => AuditOutcome::Success,
    };
    Ok(AuditEvent {
        id: r.try_get("id")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("event_type")?,
        resource_type: r.try_get("resource_type")?,
        resource_id: r.try_get("resource_id")?,
        action: r.try_get("action")?,
        outcome,
        source: r.try_get("source")?,
        actor_id: r.try_get("actor_id")?,
        actor_kind: r
            .try_get::<Option<String>, _>("actor_kind")?
            .unwrap_or_default(),
        actor_name: r
            .try_get::<Option<String>, _>("actor_name")?
            .unwrap_or_default(),
        subject_id: r.try_get("subject_id")?,
        changes: r.try_get("changes")?,
        old_values: r.try_get("old_values")?,
        new_values: r.try_get("new_values")?,
        ip_address: r.try_get("ip_address")?,
        user_agent: r.try_get("user_agent")?,
        personal_details: r.try_get("personal_details")?,
        personal_erased: r.try_get("personal_erased")?,
        content_hash: r.try_get("content_hash")?,
        previous_hash: r.try_get("previous_hash")?,
        created_at: r.try_get("created_at")?,
    })
}
