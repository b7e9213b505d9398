//! Checkpointer and background writer: the board's ten metrics on every version.
//!
//! | metric | 13–16 | 17 | 18 |
//! | --- | --- | --- | --- |
//! | checkpoints_timed | bgwriter.checkpoints_timed | checkpointer.num_timed | same |
//! | checkpoints_req | bgwriter.checkpoints_req | checkpointer.num_requested | same |
//! | checkpoints_done | NULL | NULL | checkpointer.num_done |
//! | restartpoints_timed/req/done | NULL | checkpointer.restartpoints_* | same |
//! | checkpoint_write_time | bgwriter.checkpoint_write_time | checkpointer.write_time | same |
//! | checkpoint_sync_time | bgwriter.checkpoint_sync_time | checkpointer.sync_time | same |
//! | buffers_checkpoint | bgwriter.buffers_checkpoint | checkpointer.buffers_written | same |
//! | slru_written | NULL | NULL | checkpointer.slru_written |
//! | buffers_clean, maxwritten_clean, buffers_alloc | bgwriter | bgwriter | bgwriter |
//! | buffers_backend | bgwriter.buffers_backend | Σ pg_stat_io.writes (*) | same |
//! | buffers_backend_fsync | bgwriter.buffers_backend_fsync | Σ pg_stat_io.fsyncs (*) | same |
//!
//! (*) over `object = 'relation'` rows of every backend type except `checkpointer` and
//! `background writer`: before 17 buffers_backend counted writes of every process other than
//! those two (client backends, autovacuum workers, background workers …), so summing only
//! `client backend` would silently drop autovacuum's writes. Temporary relations (local
//! buffers) and 18's `object = 'wal'` rows are not shared buffers and are left out, as before.
//! One difference remains: before 17 relation extensions were counted too; pg_stat_io reports
//! them separately (`extends`), see sn_stat_io.

/// A JSON object expression with the keys of [`crate::api::BgwriterValues`].
pub(super) fn sql(version_num: i32) -> String {
    if version_num < 170000 {
        return V13.to_string();
    }
    // 17 moved the checkpoint counters to pg_stat_checkpointer; 18 added num_done and
    // slru_written there.
    let v18 = if version_num >= 180000 {
        "'checkpoints_done', c.num_done, 'slru_written', c.slru_written,"
    } else {
        ""
    };
    format!(
        "(SELECT json_build_object({v18}
    'checkpoints_timed', c.num_timed, 'checkpoints_req', c.num_requested,
    'restartpoints_timed', c.restartpoints_timed, 'restartpoints_req', c.restartpoints_req,
    'restartpoints_done', c.restartpoints_done,
    'checkpoint_write_time', c.write_time, 'checkpoint_sync_time', c.sync_time,
    'buffers_checkpoint', c.buffers_written, 'buffers_clean', b.buffers_clean,
    'maxwritten_clean', b.maxwritten_clean, 'buffers_backend', io.writes,
    'buffers_backend_fsync', io.fsyncs, 'buffers_alloc', b.buffers_alloc,
    'stats_reset', b.stats_reset, 'checkpointer_stats_reset', c.stats_reset,
    'io_stats_reset', io.stats_reset)
  FROM pg_stat_bgwriter b, pg_stat_checkpointer c, {BACKEND_IO} io)"
    )
}

const V13: &str = "(SELECT json_build_object(
    'checkpoints_timed', checkpoints_timed, 'checkpoints_req', checkpoints_req,
    'checkpoint_write_time', checkpoint_write_time, 'checkpoint_sync_time', checkpoint_sync_time,
    'buffers_checkpoint', buffers_checkpoint, 'buffers_clean', buffers_clean,
    'maxwritten_clean', maxwritten_clean, 'buffers_backend', buffers_backend,
    'buffers_backend_fsync', buffers_backend_fsync, 'buffers_alloc', buffers_alloc,
    'stats_reset', stats_reset) FROM pg_stat_bgwriter)";

/// What pg_stat_bgwriter lost in 17, from pg_stat_io (see the module comment). Public so the
/// tests compare the collector with this very aggregate.
pub const BACKEND_IO: &str = "(SELECT sum(writes)::bigint AS writes, sum(fsyncs)::bigint AS fsyncs,
        max(stats_reset) AS stats_reset
    FROM pg_stat_io
    WHERE object = 'relation' AND backend_type NOT IN ('checkpointer', 'background writer'))";
