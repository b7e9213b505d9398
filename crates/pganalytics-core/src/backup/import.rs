//! `backup import`: record the backups a storage target holds — after the repository was lost,
//! or to restore them from another machine. A backup is only ever recorded from its signed
//! catalogue: a catalogue whose signature does not verify with the public key is refused and
//! reported, never imported. Backups already on record are left as they are. Each imported
//! backup gets the newest verdict of its signed verification records (verified or damaged,
//! when, the measured restore time); a record that does not verify is reported and ignored.

use super::catalogue::{self, Catalogue};
use super::record;
use super::verification_record;
use crate::api::{BackupImportProblem, BackupImportRequest, BackupImportResult};
use crate::audit::keys::VerifyingKey;
use crate::error::Result;
use crate::repository::Repository;
use crate::storage::operator::Target;
use sha2::{Digest, Sha256};

pub async fn import(
    repo: &Repository,
    public_key: &VerifyingKey,
    req: &BackupImportRequest,
) -> Result<BackupImportResult> {
    // A retention given here is checked before anything; otherwise each backup keeps the one
    // its catalogue names (the default for catalogues that name none).
    if let Some(days) = req.retention_days {
        super::engine::retention_days(Some(days))?;
    }
    let server_id = match &req.server {
        Some(name) => Some(crate::server::id_of(repo, name).await?),
        None => None,
    };
    let storage = crate::storage::find(repo, &req.storage).await?;
    let target = crate::storage::open_target(&storage).await?;
    let mut result = BackupImportResult {
        imported: Vec::new(),
        already_recorded: 0,
        refused: Vec::new(),
    };
    for (sysid, id) in catalogues(&target).await? {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM backup_metadata WHERE id = $1)")
                .bind(id)
                .fetch_one(repo.pool())
                .await?;
        if known {
            result.already_recorded += 1;
            continue;
        }
        let dir = crate::storage::layout::backup_dir(sysid, id);
        let catalogue = match read_signed(&target, &dir, public_key).await? {
            Ok(c) => c,
            Err(problem) => {
                result.refused.push(BackupImportProblem {
                    backup_id: id,
                    object: format!("{dir}{}", crate::storage::layout::CATALOGUE),
                    problem,
                });
                continue;
            }
        };
        let (catalogue, checksum, signed_by) = catalogue;
        if catalogue.backup_id != id || catalogue.system_identifier != sysid.to_string() {
            result.refused.push(BackupImportProblem {
                backup_id: id,
                object: format!("{dir}{}", crate::storage::layout::CATALOGUE),
                problem: format!(
                    "the catalogue is of backup {} of system {}, not of the folder it is in",
                    catalogue.backup_id, catalogue.system_identifier
                ),
            });
            continue;
        }
        let retention_days = req
            .retention_days
            .or(catalogue.retention_days)
            .filter(|days| *days >= 1)
            .unwrap_or(super::engine::DEFAULT_RETENTION_DAYS);
        record::insert_imported(
            repo,
            &record::Imported {
                catalogue: &catalogue,
                checksum: &checksum,
                signed_by: &signed_by,
                server_id,
                storage_id: storage.id,
                destination_type: storage.kind.as_str(),
                destination_path: &format!("{}/{dir}", storage.url),
                retention_days,
            },
        )
        .await?;
        // The newest verdict kept beside the backup, if any can be trusted.
        let found = verification_record::find(&target, &dir, public_key, id, &checksum).await?;
        for (object, why) in &found.refused {
            result.refused.push(BackupImportProblem {
                backup_id: id,
                object: object.clone(),
                problem: format!("verification record not trusted (ignored): {why}"),
            });
        }
        if let Some(v) = found.newest() {
            let rto = found.rto_seconds();
            record::set_verified(repo, id, v.intact, rto, Some(v.verified_at)).await?;
        }
        result.imported.push(record::get(repo, id).await?);
    }
    result
        .imported
        .sort_by_key(|b| std::cmp::Reverse(b.started_at));
    Ok(result)
}

/// `(system identifier, backup id)` of every `<sysid>/backups/<id>/catalogue.json` in the
/// target, in listing order.
async fn catalogues(target: &Target) -> Result<Vec<(u64, uuid::Uuid)>> {
    let entries = target
        .op
        .list_with("")
        .recursive(true)
        .await
        .map_err(|e| target.error("list", "", &e))?;
    Ok(entries
        .iter()
        .filter_map(|e| parse_catalogue_path(e.path()))
        .collect())
}

fn parse_catalogue_path(path: &str) -> Option<(u64, uuid::Uuid)> {
    let mut parts = path.split('/');
    let (sysid, backups, id, file) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || backups != "backups" || file != crate::storage::layout::CATALOGUE {
        return None;
    }
    Some((sysid.parse().ok()?, id.parse().ok()?))
}

/// The catalogue, its SHA-256 and who signed it; `Ok(Err(why))` when it cannot be trusted.
async fn read_signed(
    target: &Target,
    dir: &str,
    key: &VerifyingKey,
) -> Result<std::result::Result<(Catalogue, String, String), String>> {
    let read = |name: &'static str| {
        let key = format!("{dir}{name}");
        async move { target.read_if_exists(&key).await }
    };
    let Some(bytes) = read(crate::storage::layout::CATALOGUE).await? else {
        return Ok(Err("the catalogue disappeared while importing".into()));
    };
    let Some(sig) = read(crate::storage::layout::CATALOGUE_SIGNATURE).await? else {
        return Ok(Err("the catalogue has no signature (catalogue.sig)".into()));
    };
    let signed_by = match catalogue::check_signature(&bytes, &sig, key) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let catalogue: Catalogue = match serde_json::from_slice(&bytes) {
        Ok(c) => c,
        Err(e) => return Ok(Err(format!("not a catalogue: {e}"))),
    };
    Ok(Ok((
        catalogue,
        hex::encode(Sha256::digest(&bytes)),
        signed_by,
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn catalogue_paths() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            super::parse_catalogue_path(&format!("7301/backups/{id}/catalogue.json")),
            Some((7301, id))
        );
        for other in [
            format!("7301/backups/{id}/catalogue.sig"),
            format!("7301/backups/{id}/data/base/00000000"),
            format!("x/backups/{id}/catalogue.json"),
            "7301/backups/not-a-uuid/catalogue.json".to_string(),
            format!("prefix/7301/backups/{id}/catalogue.json"),
        ] {
            assert_eq!(super::parse_catalogue_path(&other), None, "{other}");
        }
    }
}
