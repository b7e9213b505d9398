//! Inclusion proofs (`audit prove`): one event against a signed checkpoint.

use super::*;

impl AuditLog {
    /// Inclusion proof of event `id` in the newest external checkpoint that covers it.
    pub async fn prove(&self, id: i64, key: &VerifyingKey) -> Result<AuditProof> {
        self.sync().await?;
        let list = self.store().list()?;
        let mut chosen = None;
        for c in &list {
            let s = c.verified(key).map_err(|why| {
                Error::new(
                    ErrorCode::VerificationFailed,
                    format!("an external checkpoint is not valid: {why}"),
                )
            })?;
            if s.size as i64 >= id && s.kind == checkpoint::Kind::Checkpoint {
                chosen = Some((c.clone(), s));
            }
        }
        let Some((c, s)) = chosen else {
            return Err(Error::not_found(format!("no signed checkpoint covers event {id} yet"))
                .with_hint("sign one with `pganalytics audit checkpoint`, or wait for the next one (every 10 s while events arrive)"));
        };
        // The tree below the oldest remaining event is summarised by the newest seal.
        let seal = list
            .iter()
            .filter_map(|c| c.statement().ok().map(|s| (c, s)))
            .rfind(|(_, s)| s.kind == checkpoint::Kind::Seal && s.size < id as u64);
        let (prefix, from) = match seal {
            Some((c, s)) => (c.frontier().map_err(Error::internal)?, s.size as i64),
            None => (merkle::Frontier::new(), 0),
        };
        let hashes: Vec<(String,)> = sqlx::query_as(
            "SELECT content_hash::text FROM audit_logs WHERE id > $1 AND id <= $2 ORDER BY id",
        )
        .bind(from)
        .bind(s.size as i64)
        .fetch_all(&self.pool)
        .await?;
        let leaves: Vec<merkle::Hash> = hashes
            .iter()
            .map(|(h,)| checkpoint::parse_hash(h).map(|h| merkle::leaf_hash(&h)))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::VerificationFailed,
                    "an event has a malformed content hash",
                )
            })?;
        if leaves.len() as u64 + prefix.size() != s.size {
            return Err(Error::new(
                ErrorCode::VerificationFailed,
                "events covered by the checkpoint are missing from the database",
            )
            .with_hint("run `pganalytics audit verify`"));
        }
        let index = (id - 1) as u64;
        let proof = merkle::inclusion_proof(&prefix, &leaves, index)
            .map_err(|e| Error::invalid_input(format!("no proof for event {id}: {e}")))?;
        let content_hash = hashes[(id - 1 - from) as usize].0.clone();
        let leaf = leaves[(index - prefix.size()) as usize];
        Ok(AuditProof {
            id,
            content_hash,
            leaf_index: index as i64,
            tree_size: s.size as i64,
            root_hash: hex::encode(s.root),
            verified: merkle::verify_inclusion(&leaf, index, s.size, &proof, &s.root),
            proof: proof.iter().map(hex::encode).collect(),
            checkpoint: verify::info(&c, &s),
        })
    }
}
