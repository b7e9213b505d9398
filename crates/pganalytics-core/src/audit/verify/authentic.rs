//! Trust anchors: the external checkpoints (signatures, the event hashes they cover,
//! consistency) and the database's copies of them.

use super::*;

/// Read and authenticate the external checkpoints and the event hashes they cover.
pub(super) fn load_authentic(
    store: &Store,
    key: &VerifyingKey,
) -> std::result::Result<Authentic, Verdict> {
    let checkpoints = store
        .list()
        .map_err(|e| failed(AuditProblem::SignatureInvalid, None, e.message))?;
    let mut authentic = Authentic {
        offset: 0,
        hashes: Vec::new(),
        newest: None,
        seal: None,
    };
    let mut frontier: Option<Frontier> = None;
    // (size, root) of every checkpoint of the whole log, for the consistency check.
    let mut full: Vec<(u64, Hash)> = Vec::new();
    // Leaf hashes of `authentic.hashes`, kept for the consistency check.
    let mut leaf_hashes: Vec<Hash> = Vec::new();
    for c in checkpoints {
        let statement = c.verified(key).map_err(|why| {
            let size = c.statement().map(|s| s.size).unwrap_or(0);
            failed(
                AuditProblem::SignatureInvalid,
                None,
                format!("the external checkpoint at size {size} is not valid: {why}"),
            )
        })?;
        let f = match frontier.as_mut() {
            Some(f) => f,
            None => {
                // The oldest checkpoint kept: start from it (older ones may have been removed
                // together with the events they covered).
                if c.previous_size == 0 {
                    frontier.insert(Frontier::new())
                } else {
                    authentic.offset = statement.size;
                    let f = c
                        .frontier()
                        .map_err(|why| failed(AuditProblem::SignatureInvalid, None, why))?;
                    authentic.newest = Some((c.clone(), statement.clone()));
                    if statement.kind == Kind::Seal {
                        authentic.seal = Some(statement);
                    }
                    frontier = Some(f);
                    continue;
                }
            }
        };
        if c.previous_size > authentic.size()
            || statement.size < authentic.size().min(statement.size)
        {
            return Err(failed(
                AuditProblem::SignatureInvalid,
                None,
                format!(
                    "the external checkpoints have a gap before size {}",
                    statement.size
                ),
            ));
        }
        let leaves = store
            .leaves(&statement, c.previous_size)
            .map_err(|e| failed(AuditProblem::SignatureInvalid, None, e.message))?;
        // Positions below the size already known must agree; the rest are new.
        let known = (authentic.size().saturating_sub(c.previous_size) as usize).min(leaves.len());
        for (i, leaf) in leaves[..known].iter().enumerate() {
            let position = c.previous_size + i as u64; // 0-based
            let earlier = position
                .checked_sub(authentic.offset)
                .map(|p| authentic.hashes[p as usize]);
            if earlier.is_some_and(|k| &k != leaf) {
                return Err(failed(
                    AuditProblem::SignatureInvalid,
                    None,
                    format!(
                        "two external checkpoints disagree about event {}",
                        position + 1
                    ),
                ));
            }
        }
        let new = &leaves[known..];
        let hashed: Vec<Hash> = new.par_iter().map(|l| leaf_hash(l)).collect();
        authentic.hashes.extend_from_slice(new);
        f.extend(&hashed);
        leaf_hashes.extend(hashed);
        if statement.size == f.size() {
            if f.root() != statement.root {
                return Err(failed(
                    AuditProblem::SignatureInvalid,
                    None,
                    format!("the event hashes stored with the checkpoint at size {} do not lead to its signed root", statement.size),
                ));
            }
        } else if statement.kind != Kind::Seal {
            return Err(failed(
                AuditProblem::SignatureInvalid,
                None,
                format!("checkpoint at size {} is out of order", statement.size),
            ));
        }
        if statement.size == f.size() && statement.kind == Kind::Checkpoint {
            full.push((statement.size, statement.root));
        }
        if statement.kind == Kind::Seal {
            authentic.seal = Some(statement.clone());
        }
        if authentic
            .newest
            .as_ref()
            .is_none_or(|(_, s)| s.size <= statement.size)
        {
            authentic.newest = Some((c, statement));
        }
    }
    // Consistency (RFC 6962 2.1.2) of the two newest checkpoints: the newer tree extends the
    // older one. (Every root was already recomputed from the authenticated hashes above.)
    if let [.., (old_size, old_root), (new_size, new_root)] = full[..] {
        if old_size < new_size {
            let prefix = match &authentic.newest {
                _ if authentic.offset == 0 => Frontier::new(),
                _ => return Ok(authentic),
            };
            let leaves = &leaf_hashes[..(new_size - authentic.offset) as usize];
            let ok = merkle::consistency_proof(&prefix, leaves, old_size)
                .map(|proof| {
                    merkle::verify_consistency(old_size, new_size, &old_root, &new_root, &proof)
                })
                .unwrap_or(false);
            if !ok {
                return Err(failed(
                    AuditProblem::SignatureInvalid,
                    None,
                    format!("checkpoints at sizes {old_size} and {new_size} are not consistent"),
                ));
            }
        }
    }
    Ok(authentic)
}

/// The database's copies of the checkpoints must carry valid signatures too: a replaced
/// signature there is tampering, even if the external copy is intact.
pub(super) async fn check_database_checkpoints(
    pool: &PgPool,
    key: &VerifyingKey,
    store: &Store,
    external_size: u64,
) -> Result<Option<Verdict>> {
    let rows = sqlx::query(
        "SELECT tree_size, signature, signed_note, algorithm, key_fingerprint, frontier
         FROM audit_log_verification WHERE kind IN ('checkpoint', 'seal') ORDER BY created_at",
    )
    .fetch_all(pool)
    .await?;
    for row in rows {
        let size: Option<i64> = row.try_get("tree_size")?;
        let frontier: Option<String> = row.try_get("frontier")?;
        let checkpoint = Checkpoint {
            note: row
                .try_get::<Option<String>, _>("signed_note")?
                .unwrap_or_default(),
            signature: row
                .try_get::<Option<String>, _>("signature")?
                .unwrap_or_default(),
            algorithm: row
                .try_get::<Option<String>, _>("algorithm")?
                .and_then(|a| a.parse().ok())
                .unwrap_or(key.algorithm()),
            key_fingerprint: row
                .try_get::<Option<String>, _>("key_fingerprint")?
                .unwrap_or_default(),
            previous_size: 0,
            frontier: frontier
                .and_then(|f| serde_json::from_str(&f).ok())
                .unwrap_or_default(),
        };
        let statement = match checkpoint.verified(key) {
            Ok(statement) => statement,
            Err(why) => {
                return Ok(Some(failed(
                    AuditProblem::SignatureInvalid,
                    None,
                    format!(
                        "the checkpoint recorded in the database at size {} is not valid: {why}",
                        size.unwrap_or(0)
                    ),
                )))
            }
        };
        // Validly signed, so this log reached that size (the signed note's, not the column's):
        // the folder must know it too, or it is not the trusted copy (a rewrite could hide
        // behind it).
        let size = statement.size;
        if size > external_size {
            return Ok(Some(failed(
                AuditProblem::CheckpointsMissing,
                None,
                format!(
                    "the database records a checkpoint signed with this key at size {size}, but the checkpoint folder {} goes only to size {external_size}: it is incomplete or not this log's",
                    store.dir().display()
                ),
            )));
        }
    }
    Ok(None)
}

/// Subjects whose erasure is recorded: erased in `actors` and named by an erasure event.
pub(super) async fn erased_subjects(pool: &PgPool) -> Result<HashSet<Uuid>> {
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT a.id FROM actors a WHERE a.erased_at IS NOT NULL AND EXISTS (
             SELECT 1 FROM audit_logs l WHERE l.event_type = 'gdpr.subject_erased'
                AND l.resource_id = a.id::text)",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
