//! WAL generation (`pg_stat_wal`): absent on 13; 18 dropped wal_write, wal_sync and their
//! times (pg_stat_io's `object = 'wal'` rows hold them there), so those are NULL on 18.

pub(super) fn sql(version_num: i32) -> &'static str {
    if version_num < 140000 {
        "NULL::json"
    } else if version_num < 180000 {
        "(SELECT json_build_object('wal_records', wal_records, 'wal_fpi', wal_fpi,
            'wal_bytes', wal_bytes::bigint, 'wal_buffers_full', wal_buffers_full,
            'wal_write', wal_write, 'wal_sync', wal_sync, 'wal_write_time', wal_write_time,
            'wal_sync_time', wal_sync_time, 'stats_reset', stats_reset) FROM pg_stat_wal)"
    } else {
        "(SELECT json_build_object('wal_records', wal_records, 'wal_fpi', wal_fpi,
            'wal_bytes', wal_bytes::bigint, 'wal_buffers_full', wal_buffers_full,
            'stats_reset', stats_reset) FROM pg_stat_wal)"
    }
}
