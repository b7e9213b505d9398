//! Naming the first bad event: what happened to it, judged by where the authentic event went.

use super::*;

use super::rows::{PersonalCheck, RowCheck};

/// Check one event against the chain and the authentic hashes; `Some` names the problem.
pub(super) async fn walk_one(
    row: &RowCheck,
    expected_id: i64,
    expected_previous: &Option<String>,
    authentic: &Authentic,
    erased: &HashSet<Uuid>,
    pool: &PgPool,
) -> Result<Option<Verdict>> {
    if row.id != expected_id {
        return Ok(Some(failed(
            AuditProblem::EventMissing,
            Some(expected_id),
            if row.id == expected_id + 1 {
                format!("event {expected_id} is missing")
            } else {
                format!("events {expected_id}..{} are missing", row.id - 1)
            },
        )));
    }
    let id = row.id;
    // Hex on the stack: this runs once per event, in order, on one core.
    let mut digits = [0u8; 64];
    let authentic_hash: Option<&str> = match authentic.get(id) {
        Some(h) => {
            let _ = hex::encode_to_slice(h, &mut digits);
            std::str::from_utf8(&digits).ok()
        }
        None => None,
    };
    let matches_authentic = authentic_hash.is_none_or(|a| a == row.stored_hash);
    if !row.self_consistent() {
        if let Err(why) = &row.recomputed {
            return Ok(Some(failed(
                AuditProblem::ContentChanged,
                Some(id),
                format!("event {id} cannot be read: {why}"),
            )));
        }
        if authentic_hash == Some(row.stored_hash.as_str()) {
            // The stored hash is the authentic one: the fields were edited.
            if row.shifted[1].as_deref() == Some(row.stored_hash.as_str()) {
                return Ok(Some(failed(
                    AuditProblem::EventMissing,
                    Some(id),
                    format!(
                        "event {id} is missing: the event now numbered {id} was written as {}",
                        id + 1
                    ),
                )));
            }
            return Ok(Some(failed(
                AuditProblem::ContentChanged,
                Some(id),
                format!("event {id} was changed: its fields no longer give its content hash"),
            )));
        }
        return classify_moved(row, authentic_hash, pool).await.map(Some);
    }
    if !matches_authentic {
        return classify_moved(row, authentic_hash, pool).await.map(Some);
    }
    if &row.stored_previous != expected_previous {
        return Ok(Some(failed(
            if authentic_hash.is_some() { AuditProblem::ContentChanged } else { AuditProblem::EventInserted },
            Some(id - 1),
            format!("event {id} does not chain to event {}: the event before it was replaced or inserted", id - 1),
        )));
    }
    match row.personal {
        PersonalCheck::Matches => {}
        PersonalCheck::Differs => {
            return Ok(Some(failed(
                AuditProblem::ContentChanged,
                Some(id),
                format!("event {id} was changed: its personal fields (actor name, address, user agent or personal details) no longer match their digest"),
            )))
        }
        PersonalCheck::Erased => {
            let recorded = erased.contains(&row.actor_id) || row.subject_id.is_some_and(|s| erased.contains(&s));
            if !recorded {
                return Ok(Some(failed(
                    AuditProblem::ContentChanged,
                    Some(id),
                    format!("event {id} lost its personal fields without a recorded erasure"),
                )));
            }
        }
    }
    Ok(None)
}

/// The event at `row.id` is not the authentic one: find where the authentic one went.
async fn classify_moved(
    row: &RowCheck,
    authentic_hash: Option<&str>,
    pool: &PgPool,
) -> Result<Verdict> {
    let id = row.id;
    let Some(authentic_hash) = authentic_hash else {
        // Beyond the newest checkpoint: only the event's own hashes tell. An event whose
        // predecessor sits after it was exchanged with it.
        if let Some(previous) = &row.stored_previous {
            let at: Option<i64> =
                sqlx::query_scalar("SELECT id FROM audit_logs WHERE content_hash = $1 LIMIT 1")
                    .bind(previous)
                    .fetch_optional(pool)
                    .await?;
            if let Some(j) = at.filter(|j| *j > id) {
                return Ok(failed(
                    AuditProblem::OrderChanged,
                    Some(id),
                    format!("events {id} and {j} are out of order"),
                ));
            }
        }
        if row.shifted[0].as_deref() == Some(row.stored_hash.as_str()) {
            return Ok(failed(
                AuditProblem::EventInserted,
                Some(id - 1),
                format!(
                    "an event was inserted before event {}: the events after it were renumbered",
                    id - 1
                ),
            ));
        }
        if row.shifted[1].as_deref() == Some(row.stored_hash.as_str()) {
            return Ok(failed(
                AuditProblem::EventMissing,
                Some(id),
                format!("event {id} is missing: later events were renumbered to close the gap"),
            ));
        }
        return Ok(failed(
            AuditProblem::ContentChanged,
            Some(id),
            format!("event {id} was changed"),
        ));
    };
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM audit_logs WHERE content_hash = $1 ORDER BY id LIMIT 1")
            .bind(authentic_hash)
            .fetch_optional(pool)
            .await?;
    Ok(match found {
        Some(j) if j > id => {
            // The authentic event sits later. Exchanged with the one there, or pushed down by
            // a foreign event?
            let there: Option<String> =
                sqlx::query_scalar("SELECT content_hash::text FROM audit_logs WHERE id = $1")
                    .bind(j)
                    .fetch_optional(pool)
                    .await?;
            let row_hash_is_foreign = row.shifted[0].as_deref() != Some(row.stored_hash.as_str())
                && row.shifted[1].as_deref() != Some(row.stored_hash.as_str())
                && row.self_consistent();
            if there.is_some()
                && !row_hash_is_foreign
                && row.shifted[1].as_deref() == Some(row.stored_hash.as_str())
            {
                failed(
                    AuditProblem::OrderChanged,
                    Some(id),
                    format!("events {id} and {j} are out of order"),
                )
            } else {
                failed(AuditProblem::EventInserted, Some(id), format!("event {id} is not part of the signed log: it was inserted, and the authentic event {id} now sits at {j}"))
            }
        }
        _ => {
            if row.shifted[1].as_deref() == Some(row.stored_hash.as_str()) {
                failed(
                    AuditProblem::EventMissing,
                    Some(id),
                    format!("event {id} is missing: later events were renumbered to close the gap"),
                )
            } else {
                failed(AuditProblem::ContentChanged, Some(id), format!("event {id} differs from the signed log (its content hash was recomputed after a change)"))
            }
        }
    })
}
