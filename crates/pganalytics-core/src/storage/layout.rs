//! Where objects go inside a storage target. Every key is relative to the target's prefix
//! (the operator's root), so a target can be moved or copied as a whole.
//!
//! ```text
//! <prefix>/
//!   .pganalytics/probes/<uuid>                 `storage check` probes (deleted at once)
//!   <system_identifier>/                       one PostgreSQL cluster (pg_control's id, decimal)
//!     backups/<backup_id>/                     one backup (UUID of its backup_metadata row)
//!       data/<tablespace>/<nnnnnnnn>           archive stream cut into chunks (zstd, AES-GCM)
//!       backup_manifest                        the server's own manifest
//!       wal/<segment>                          the WAL from the backup's start to its end,
//!                                              streamed alongside (zstd, AES-GCM)
//!       catalogue.json                         catalogue: objects, sizes, SHA-256, LSNs,
//!                                              timeline, WAL range; written last: a backup
//!                                              without it is incomplete
//!       catalogue.sig                          its signature (the installation's key)
//!     wal/<timeline>/<segment>                 archived WAL (timeline as 8 hex digits, the
//!                                              24-hex segment name PostgreSQL gives)
//!     wal/<timeline>/<timeline>.history        timeline history files
//! ```
//!
//! Keying by system identifier keeps two clusters that share a target (or a server that was
//! re-initialised under the same name) apart; keying WAL by timeline lets point-in-time
//! recovery list one timeline's segments with one listing. Objects are written once and never
//! overwritten (`if_not_exists` where the store supports it).

/// Folder of the check probes.
pub const PROBES: &str = ".pganalytics/probes/";

pub fn probe(id: uuid::Uuid) -> String {
    format!("{PROBES}{id}")
}

/// `<system_identifier>/`
pub fn cluster_dir(system_identifier: u64) -> String {
    format!("{system_identifier}/")
}

/// `<system_identifier>/backups/<backup_id>/`
pub fn backup_dir(system_identifier: u64, backup_id: uuid::Uuid) -> String {
    format!("{system_identifier}/backups/{backup_id}/")
}

/// `<system_identifier>/backups/<backup_id>/data/<tablespace>/<chunk:08>`; the base
/// tablespace is `base`, others their OID.
pub fn backup_chunk(
    system_identifier: u64,
    backup_id: uuid::Uuid,
    tablespace: &str,
    chunk: u32,
) -> String {
    format!(
        "{}data/{tablespace}/{chunk:08}",
        backup_dir(system_identifier, backup_id)
    )
}

pub fn backup_manifest(system_identifier: u64, backup_id: uuid::Uuid) -> String {
    format!(
        "{}backup_manifest",
        backup_dir(system_identifier, backup_id)
    )
}

/// File names inside a backup's folder.
pub const CATALOGUE: &str = "catalogue.json";
pub const CATALOGUE_SIGNATURE: &str = "catalogue.sig";

pub fn backup_catalogue(system_identifier: u64, backup_id: uuid::Uuid) -> String {
    format!("{}catalogue.json", backup_dir(system_identifier, backup_id))
}

/// `<system_identifier>/wal/<timeline:08X>/`
pub fn wal_dir(system_identifier: u64, timeline: u32) -> String {
    format!("{system_identifier}/wal/{timeline:08X}/")
}

/// `<system_identifier>/wal/<timeline:08X>/<segment>`; `segment` is PostgreSQL's 24-hex
/// name (its first 8 digits are the timeline) plus any suffix (`.partial`, `.zst`).
pub fn wal_segment(system_identifier: u64, segment: &str) -> Option<String> {
    let tli = u32::from_str_radix(segment.get(..8)?, 16).ok()?;
    let name_ok = segment.len() >= 24 && segment[..24].chars().all(|c| c.is_ascii_hexdigit());
    name_ok.then(|| format!("{}{segment}", wal_dir(system_identifier, tli)))
}

/// `<system_identifier>/wal/<timeline:08X>/<timeline:08X>.history`
pub fn timeline_history(system_identifier: u64, timeline: u32) -> String {
    format!(
        "{}{timeline:08X}.history",
        wal_dir(system_identifier, timeline)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let id = uuid::Uuid::nil();
        assert_eq!(
            backup_chunk(7, id, "base", 3),
            "7/backups/00000000-0000-0000-0000-000000000000/data/base/00000003"
        );
        assert_eq!(
            wal_segment(7, "000000020000000A000000FF").unwrap(),
            "7/wal/00000002/000000020000000A000000FF"
        );
        assert_eq!(wal_segment(7, "nonsense"), None);
        assert_eq!(timeline_history(7, 2), "7/wal/00000002/00000002.history");
    }
}
