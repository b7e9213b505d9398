//! WAL archiver (`pg_stat_archiver`, the same on 13–18) and archive lag.
//!
//! Archive lag compares the WAL position being written with the last archived segment. The
//! segment size comes from the server (`wal_segment_size`, chosen at initdb: 1 MB–1 GB), never
//! assumed to be 16 MB: a WAL file name is `TTTTTTTT XXXXXXXX YYYYYYYY` where the segment
//! number is `X * (2^32 / segment size) + Y`, and an LSN's segment is `lsn / segment size`.

use crate::api::ArchiverValues;

pub(super) const SQL: &str = "(SELECT json_build_object(
    'archived_count', archived_count, 'last_archived_wal', last_archived_wal,
    'last_archived_time', last_archived_time, 'failed_count', failed_count,
    'last_failed_wal', last_failed_wal, 'last_failed_time', last_failed_time,
    'stats_reset', stats_reset,
    -- pg_walfile_name() refuses to run during recovery.
    'current_wal_file', CASE WHEN NOT pg_is_in_recovery() THEN pg_walfile_name(pg_current_wal_lsn()) END)
  FROM pg_stat_archiver)";

/// `"16/B374D848"` → byte position.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    if hi > u32::MAX as u64 || lo > u32::MAX as u64 {
        return None;
    }
    Some(hi << 32 | lo)
}

/// Segment number of a WAL file name (`000000010000000A000000FF`, also with a `.partial` or
/// `.00000028.backup` suffix); `None` for history files and anything else.
pub fn segment_of_file(name: &str, segment_size: u64) -> Option<u64> {
    let base = name.get(..24)?;
    if !base.chars().all(|c| c.is_ascii_hexdigit())
        || name.len() > 24 && !name[24..].starts_with('.')
    {
        return None;
    }
    if segment_size == 0 || !segment_size.is_power_of_two() {
        return None;
    }
    let log = u64::from_str_radix(&base[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&base[16..24], 16).ok()?;
    let per_log = (1u64 << 32) / segment_size;
    if seg >= per_log {
        return None;
    }
    Some(log * per_log + seg)
}

/// Fill `archive_lag_*` from the current WAL position. Left `None` when archiving is off, on a
/// standby, before anything was archived, or when the last archived file is a history file.
pub(super) fn compute_lag(
    archiver: &mut ArchiverValues,
    archive_mode: Option<&str>,
    in_recovery: bool,
    current_lsn: Option<&str>,
    segment_size: Option<i64>,
) {
    archiver.archive_lag_segments = None;
    archiver.archive_lag_bytes = None;
    if in_recovery || matches!(archive_mode, None | Some("off")) {
        return;
    }
    let (Some(lsn), Some(size), Some(last)) = (
        current_lsn.and_then(parse_lsn),
        segment_size.and_then(|s| u64::try_from(s).ok()),
        archiver.last_archived_wal.as_deref(),
    ) else {
        return;
    };
    let Some(archived) = segment_of_file(last, size) else {
        return;
    };
    let current = lsn / size;
    // The segment being written is not complete, so it is not "waiting" to be archived.
    let waiting = current.saturating_sub(archived + 1);
    let archived_end = (archived + 1).saturating_mul(size);
    archiver.archive_lag_segments = i64::try_from(waiting).ok();
    archiver.archive_lag_bytes = i64::try_from(lsn.saturating_sub(archived_end)).ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB16: u64 = 16 << 20;

    #[test]
    fn lsn_and_file_names() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse_lsn("nope"), None);
        assert_eq!(segment_of_file("000000010000000000000001", MB16), Some(1));
        assert_eq!(
            segment_of_file("00000001000000010000000A", MB16),
            Some(256 + 10)
        );
        // 64 MB segments: 64 per "log" file number.
        assert_eq!(
            segment_of_file("000000010000000100000003", 64 << 20),
            Some(64 + 3)
        );
        assert_eq!(
            segment_of_file("00000002000000000000000A.partial", MB16),
            Some(10)
        );
        assert_eq!(
            segment_of_file("000000010000000000000002.00000028.backup", MB16),
            Some(2)
        );
        assert_eq!(segment_of_file("00000002.history", MB16), None);
        assert_eq!(segment_of_file("0000000100000000000001FF", MB16), None);
    }

    #[test]
    fn lag_counts_complete_segments_after_the_archived_one() {
        let mut a = ArchiverValues {
            last_archived_wal: Some("000000010000000000000003".into()),
            ..Default::default()
        };
        // Writing segment 4, segment 3 archived: nothing waits.
        compute_lag(
            &mut a,
            Some("on"),
            false,
            Some("0/4000100"),
            Some(MB16 as i64),
        );
        assert_eq!(a.archive_lag_segments, Some(0));
        assert_eq!(a.archive_lag_bytes, Some(0x100));
        // Writing segment 7: 4, 5, 6 wait.
        compute_lag(
            &mut a,
            Some("on"),
            false,
            Some("0/7000000"),
            Some(MB16 as i64),
        );
        assert_eq!(a.archive_lag_segments, Some(3));
        assert_eq!(a.archive_lag_bytes, Some(3 * MB16 as i64));
        compute_lag(
            &mut a,
            Some("off"),
            false,
            Some("0/7000000"),
            Some(MB16 as i64),
        );
        assert_eq!(a.archive_lag_segments, None);
        compute_lag(
            &mut a,
            Some("on"),
            true,
            Some("0/7000000"),
            Some(MB16 as i64),
        );
        assert_eq!(a.archive_lag_segments, None);
    }
}
