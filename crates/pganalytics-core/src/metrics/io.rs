//! I/O by backend type, object and context (`pg_stat_io`, 16+). 16–17 report `op_bytes` (the
//! size of one operation); 18 drops it for `read_bytes`, `write_bytes`, `extend_bytes` and adds
//! `object = 'wal'` rows. Only rows that counted something are kept: most of the view is
//! zeros, and storing them every 15 s would triple the table for nothing.

/// Rows that counted anything (shared with the tests so they compare the same rows).
pub const NONZERO: &str = "coalesce(reads, 0) + coalesce(writes, 0) + coalesce(writebacks, 0)
    + coalesce(extends, 0) + coalesce(hits, 0) + coalesce(evictions, 0) + coalesce(reuses, 0)
    + coalesce(fsyncs, 0) > 0";

pub(super) fn sql(version_num: i32) -> String {
    if version_num < 160000 {
        return "NULL::json".into();
    }
    let bytes = if version_num >= 180000 {
        "'read_bytes', read_bytes::bigint, 'write_bytes', write_bytes::bigint,
         'extend_bytes', extend_bytes::bigint,"
    } else {
        "'op_bytes', op_bytes,"
    };
    format!(
        "(SELECT coalesce(json_agg(json_build_object({bytes}
            'backend_type', backend_type, 'object', object, 'context', context,
            'reads', reads, 'read_time', read_time, 'writes', writes, 'write_time', write_time,
            'writebacks', writebacks, 'writeback_time', writeback_time,
            'extends', extends, 'extend_time', extend_time, 'hits', hits,
            'evictions', evictions, 'reuses', reuses, 'fsyncs', fsyncs,
            'fsync_time', fsync_time, 'stats_reset', stats_reset)
          ORDER BY backend_type, object, context), '[]'::json)
        FROM pg_stat_io WHERE {NONZERO})"
    )
}
