//! Replication: walsenders on a primary (`pg_stat_replication`), the WAL receiver on a standby
//! (`pg_stat_wal_receiver`), and replication slots with the WAL they retain. The columns used
//! here are the same on 13–18, except slots: `conflicting` from 16, `inactive_since` and
//! `invalidation_reason` from 17.
//!
//! Lag in bytes is `pg_wal_lsn_diff` against the server's own position: `pg_current_wal_lsn()`
//! on a primary; on a (cascading) standby, which cannot call it, the last received LSN.
//! OIDs are cast to bigint: `to_json(oid)` is a string.

/// The server's own WAL position, usable on a primary and a standby.
pub(super) const CURRENT_LSN: &str = "(CASE WHEN pg_is_in_recovery()
    THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
    ELSE pg_current_wal_lsn() END)";

pub(super) fn senders_sql() -> String {
    format!(
        "(SELECT coalesce(json_agg(json_build_object(
            'pid', pid, 'usesysid', usesysid::bigint, 'usename', usename,
            'application_name', application_name, 'client_addr', host(client_addr),
            'state', state, 'backend_start', backend_start, 'sync_state', sync_state,
            'wal_sent_lsn', sent_lsn, 'wal_write_lsn', write_lsn, 'wal_flush_lsn', flush_lsn,
            'wal_replay_lsn', replay_lsn,
            'write_lag', extract(epoch FROM write_lag), 'flush_lag', extract(epoch FROM flush_lag),
            'replay_lag', extract(epoch FROM replay_lag),
            'lag_bytes', pg_wal_lsn_diff({CURRENT_LSN}, replay_lsn)::bigint)
          ORDER BY application_name, pid), '[]'::json)
        FROM pg_stat_replication)"
    )
}

pub(super) const RECEIVER_SQL: &str = "(SELECT json_build_object(
        'pid', pid, 'status', status, 'receive_start_lsn', receive_start_lsn,
        'written_lsn', written_lsn, 'flushed_lsn', flushed_lsn, 'received_tli', received_tli,
        'last_msg_send_time', last_msg_send_time, 'last_msg_receipt_time', last_msg_receipt_time,
        'latest_end_lsn', latest_end_lsn, 'latest_end_time', latest_end_time,
        'slot_name', slot_name, 'sender_host', sender_host, 'sender_port', sender_port,
        'replay_lsn', pg_last_wal_replay_lsn(),
        'replay_lag_bytes', pg_wal_lsn_diff(flushed_lsn, pg_last_wal_replay_lsn())::bigint,
        'last_replay_time', pg_last_xact_replay_timestamp())
    FROM pg_stat_wal_receiver LIMIT 1)";

pub(super) fn slots_sql(version_num: i32) -> String {
    let v16 = if version_num >= 160000 {
        "'conflicting', conflicting,"
    } else {
        ""
    };
    let v17 = if version_num >= 170000 {
        "'inactive_since', inactive_since, 'invalidation_reason', invalidation_reason,"
    } else {
        ""
    };
    format!(
        "(SELECT coalesce(json_agg(json_build_object({v16} {v17}
            'slot_name', slot_name, 'plugin', plugin, 'slot_type', slot_type,
            'database', database, 'temporary', temporary, 'active', active,
            'active_pid', active_pid, 'restart_lsn', restart_lsn,
            'confirmed_flush_lsn', confirmed_flush_lsn, 'wal_status', wal_status,
            'safe_wal_size', safe_wal_size,
            'retained_bytes', pg_wal_lsn_diff({CURRENT_LSN}, restart_lsn)::bigint)
          ORDER BY slot_name), '[]'::json)
        FROM pg_replication_slots)"
    )
}
