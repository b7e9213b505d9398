//! The Prometheus text exposition format (version 0.0.4) of the latest collected values of one
//! or many servers, each sample labelled `server="<name>"`.
//!
//! - Cumulative statistics are `counter`s named `…_total`; positions, lags and ages are
//!   `gauge`s. Times are converted to seconds and sizes are in bytes (Prometheus base units).
//! - A value the server's version lacks (NULL in the snapshot) is **omitted** for that server,
//!   never written as 0: a 0 would look like a real reading and break `rate()` across versions.
//! - `pganalytics_up` is 1 when the latest collection of a server succeeded. When it failed,
//!   `pganalytics_collection_error{code, reason, hint}` carries why and the server's values
//!   are left out (stale values under `up 0` would mislead alerts).
//! - Samples of one metric are grouped under one HELP/TYPE header across all servers, as the
//!   format requires; metrics without any sample are not written at all.
//!
//! Rendering does no I/O: the daemon renders what it holds in memory at every scrape.

use crate::api::SnapshotValues;
use crate::error::Error;
use chrono::{DateTime, Utc};
use std::fmt::Write;
use std::time::Duration;

/// The HTTP `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What is known about one server after its latest collection attempt.
#[derive(Debug, Clone)]
pub struct ServerState {
    pub server: String,
    /// Values of the latest successful collection.
    pub values: Option<SnapshotValues>,
    /// Set when the latest attempt failed (`up` 0); cleared by the next success.
    pub error: Option<Error>,
    /// How long the latest attempt took (reading the server and storing the snapshot).
    pub duration: Option<Duration>,
    pub attempted_at: Option<DateTime<Utc>>,
    pub succeeded_at: Option<DateTime<Utc>>,
}

impl ServerState {
    /// A state with nothing collected yet.
    pub fn new(server: impl Into<String>) -> ServerState {
        ServerState {
            server: server.into(),
            values: None,
            error: None,
            duration: None,
            attempted_at: None,
            succeeded_at: None,
        }
    }

    /// Record a successful collection.
    pub fn succeeded(&mut self, values: SnapshotValues, took: Duration) {
        let now = Utc::now();
        self.values = Some(values);
        self.error = None;
        self.duration = Some(took);
        self.attempted_at = Some(now);
        self.succeeded_at = Some(now);
    }

    /// Record a failed collection.
    pub fn failed(&mut self, error: Error, took: Duration) {
        self.error = Some(error);
        self.duration = Some(took);
        self.attempted_at = Some(Utc::now());
    }

    pub fn up(&self) -> bool {
        self.error.is_none() && self.values.is_some()
    }
}

/// Take one snapshot with `collector` and record its outcome and duration in `state` (the
/// daemon's round and `metrics export`). The error is returned as well, for the caller to
/// report; it is already visible in `state` (and in the repository's collection status).
pub async fn collect_into(
    collector: &mut super::Collector,
    repo: &crate::repository::Repository,
    state: &mut ServerState,
) -> crate::error::Result<i64> {
    let started = std::time::Instant::now();
    match collector.snapshot(repo).await {
        Ok(r) => {
            state.succeeded(r.values, started.elapsed());
            Ok(r.snap_id)
        }
        Err(e) => {
            state.failed(e.clone(), started.elapsed());
            Err(e)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    samples: Vec<String>,
}

/// Metric families in the order they are first declared.
#[derive(Default)]
struct Exposition {
    families: Vec<Family>,
}

type Labels<'a> = &'a [(&'a str, &'a str)];

impl Exposition {
    fn family(&mut self, name: &'static str, help: &'static str, kind: Kind) -> &mut Family {
        let index = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    help,
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[index]
    }

    fn sample(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: Labels,
        value: Option<f64>,
    ) {
        // NULL (or a value that cannot be represented) means "not measured": no sample.
        let Some(value) = value.filter(|v| v.is_finite()) else {
            return;
        };
        let mut line = String::from(name);
        if !labels.is_empty() {
            line.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let _ = write!(line, "{k}=\"{}\"", escape_label(v));
            }
            line.push('}');
        }
        let _ = write!(line, " {}", format_value(value));
        self.family(name, help, kind).samples.push(line);
    }

    fn counter(&mut self, name: &'static str, help: &'static str, l: Labels, v: Option<f64>) {
        self.sample(name, help, Kind::Counter, l, v)
    }

    fn gauge(&mut self, name: &'static str, help: &'static str, l: Labels, v: Option<f64>) {
        self.sample(name, help, Kind::Gauge, l, v)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for f in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help));
            let _ = writeln!(out, "# TYPE {} {kind}", f.name);
            for s in &f.samples {
                out.push_str(s);
                out.push('\n');
            }
        }
        out
    }
}

/// Label values escape `\`, `"` and line feeds.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text escapes `\` and line feeds.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    // Integers print without a fraction (counters stay exact up to 2^53).
    if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn int(v: Option<i64>) -> Option<f64> {
    v.map(|v| v as f64)
}

/// Milliseconds (as PostgreSQL reports times) to seconds.
fn ms(v: Option<f64>) -> Option<f64> {
    v.map(|v| v / 1000.0)
}

fn epoch(t: Option<DateTime<Utc>>) -> Option<f64> {
    t.map(|t| t.timestamp_millis() as f64 / 1000.0)
}

fn bool01(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Seconds from `then` to `now`, never negative (clock skew between reads).
fn age(now: DateTime<Utc>, then: Option<DateTime<Utc>>) -> Option<f64> {
    then.map(|t| ((now - t).num_milliseconds() as f64 / 1000.0).max(0.0))
}

/// The exposition of every server in `states`, in the order given.
pub fn render(states: &[ServerState]) -> String {
    let mut e = Exposition::default();
    for s in states {
        status(&mut e, s);
    }
    for s in states.iter().filter(|s| s.up()) {
        if let Some(v) = &s.values {
            server_values(&mut e, &s.server, v);
        }
    }
    e.render()
}

fn status(e: &mut Exposition, s: &ServerState) {
    let l: Labels = &[("server", &s.server)];
    e.gauge(
        "pganalytics_up",
        "1 when the latest collection of the server succeeded, 0 when it failed (see pganalytics_collection_error).",
        l,
        Some(bool01(s.up())),
    );
    if let Some(err) = &s.error {
        let code = serde_json::to_value(err.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "internal".into());
        let hint = err.hint.clone().unwrap_or_default();
        e.gauge(
            "pganalytics_collection_error",
            "Present (value 1) while the latest collection of the server failed; the labels say why and what to do.",
            &[
                ("server", &s.server),
                ("code", &code),
                ("reason", &err.message),
                ("hint", &hint),
            ],
            Some(1.0),
        );
    }
    e.gauge(
        "pganalytics_scrape_duration_seconds",
        "Time the latest collection of the server took: reading every statistics view and storing the snapshot.",
        l,
        s.duration.map(|d| d.as_secs_f64()),
    );
    e.gauge(
        "pganalytics_last_collection_timestamp_seconds",
        "When the latest collection of the server was attempted (Unix time).",
        l,
        epoch(s.attempted_at),
    );
    e.gauge(
        "pganalytics_last_success_timestamp_seconds",
        "When a collection of the server last succeeded (Unix time).",
        l,
        epoch(s.succeeded_at),
    );
}

fn server_values(e: &mut Exposition, server: &str, v: &SnapshotValues) {
    let l: Labels = &[("server", server)];
    let now = v.collected_at;
    e.gauge(
        "pganalytics_server_version_num",
        "server_version_num of the server (e.g. 170004).",
        l,
        Some(v.server_version_num as f64),
    );
    e.gauge(
        "pganalytics_in_recovery",
        "1 when the server is a standby (in recovery).",
        l,
        Some(bool01(v.in_recovery)),
    );
    e.gauge(
        "pganalytics_postmaster_start_time_seconds",
        "When the server started (Unix time).",
        l,
        epoch(v.postmaster_start_time),
    );
    e.gauge(
        "pganalytics_wal_segment_size_bytes",
        "Size of a WAL segment file.",
        l,
        int(v.wal_segment_size),
    );

    // Checkpointer and background writer (pg_stat_bgwriter, 17+: pg_stat_checkpointer and pg_stat_io).
    let b = &v.bgwriter;
    e.counter(
        "pganalytics_checkpoints_timed_total",
        "Scheduled checkpoints (checkpoint_timeout).",
        l,
        int(b.checkpoints_timed),
    );
    e.counter(
        "pganalytics_checkpoints_requested_total",
        "Requested checkpoints (max_wal_size reached, CHECKPOINT, …).",
        l,
        int(b.checkpoints_req),
    );
    e.counter(
        "pganalytics_checkpoints_done_total",
        "Checkpoints actually performed (PostgreSQL 18+).",
        l,
        int(b.checkpoints_done),
    );
    e.counter(
        "pganalytics_restartpoints_timed_total",
        "Scheduled restartpoints on a standby (17+).",
        l,
        int(b.restartpoints_timed),
    );
    e.counter(
        "pganalytics_restartpoints_requested_total",
        "Requested restartpoints on a standby (17+).",
        l,
        int(b.restartpoints_req),
    );
    e.counter(
        "pganalytics_restartpoints_done_total",
        "Restartpoints performed on a standby (17+).",
        l,
        int(b.restartpoints_done),
    );
    e.counter(
        "pganalytics_checkpoint_write_time_seconds_total",
        "Time checkpoints spent writing files.",
        l,
        ms(b.checkpoint_write_time),
    );
    e.counter(
        "pganalytics_checkpoint_sync_time_seconds_total",
        "Time checkpoints spent syncing files.",
        l,
        ms(b.checkpoint_sync_time),
    );
    e.counter(
        "pganalytics_buffers_checkpoint_total",
        "Shared buffers written by checkpoints.",
        l,
        int(b.buffers_checkpoint),
    );
    e.counter(
        "pganalytics_slru_written_total",
        "SLRU buffers written by checkpoints (18+).",
        l,
        int(b.slru_written),
    );
    e.counter(
        "pganalytics_buffers_clean_total",
        "Shared buffers written by the background writer.",
        l,
        int(b.buffers_clean),
    );
    e.counter(
        "pganalytics_maxwritten_clean_total",
        "Times the background writer stopped a round at bgwriter_lru_maxpages.",
        l,
        int(b.maxwritten_clean),
    );
    e.counter("pganalytics_buffers_backend_total", "Shared buffers written by other processes than the checkpointer and background writer (17+: from pg_stat_io).", l, int(b.buffers_backend));
    e.counter(
        "pganalytics_buffers_backend_fsync_total",
        "fsync calls made by those processes themselves (17+: from pg_stat_io).",
        l,
        int(b.buffers_backend_fsync),
    );
    e.counter(
        "pganalytics_buffers_alloc_total",
        "Shared buffers allocated.",
        l,
        int(b.buffers_alloc),
    );
    e.gauge(
        "pganalytics_bgwriter_stats_reset_timestamp_seconds",
        "When pg_stat_bgwriter was last reset (Unix time).",
        l,
        epoch(b.stats_reset),
    );
    e.gauge(
        "pganalytics_checkpointer_stats_reset_timestamp_seconds",
        "When pg_stat_checkpointer was last reset (Unix time, 17+).",
        l,
        epoch(b.checkpointer_stats_reset),
    );

    // WAL archiver.
    let a = &v.archiver;
    e.counter(
        "pganalytics_archiver_archived_total",
        "WAL files archived successfully.",
        l,
        int(a.archived_count),
    );
    e.counter(
        "pganalytics_archiver_failed_total",
        "Failed attempts to archive a WAL file.",
        l,
        int(a.failed_count),
    );
    e.gauge(
        "pganalytics_archiver_last_archived_timestamp_seconds",
        "When the last WAL file was archived (Unix time).",
        l,
        epoch(a.last_archived_time),
    );
    e.gauge(
        "pganalytics_archiver_last_failed_timestamp_seconds",
        "When archiving last failed (Unix time).",
        l,
        epoch(a.last_failed_time),
    );
    e.gauge(
        "pganalytics_archiver_last_archive_age_seconds",
        "Seconds since the last WAL file was archived, at collection time.",
        l,
        age(now, a.last_archived_time),
    );
    e.gauge(
        "pganalytics_archiver_lag_segments",
        "Complete WAL segments written but not archived yet.",
        l,
        int(a.archive_lag_segments),
    );
    e.gauge(
        "pganalytics_archiver_lag_bytes",
        "Bytes of WAL written after the end of the last archived segment.",
        l,
        int(a.archive_lag_bytes),
    );
    e.gauge(
        "pganalytics_archiver_stats_reset_timestamp_seconds",
        "When pg_stat_archiver was last reset (Unix time).",
        l,
        epoch(a.stats_reset),
    );

    // Standbys streaming from this server.
    standbys(e, server, v);

    // This server as a standby.
    if let Some(r) = &v.wal_receiver {
        let status = r.status.as_deref().unwrap_or("");
        e.gauge(
            "pganalytics_wal_receiver_streaming",
            "1 when the WAL receiver of this standby is streaming.",
            l,
            Some(bool01(status == "streaming")),
        );
        e.gauge(
            "pganalytics_wal_receiver_replay_lag_bytes",
            "WAL received (flushed) on this standby but not replayed yet.",
            l,
            int(r.replay_lag_bytes),
        );
        e.gauge(
            "pganalytics_wal_receiver_last_message_age_seconds",
            "Seconds since the last message from the primary, at collection time.",
            l,
            age(now, r.last_msg_receipt_time),
        );
        e.gauge(
            "pganalytics_wal_receiver_last_replay_age_seconds",
            "Seconds since the last replayed transaction's commit time, at collection time.",
            l,
            age(now, r.last_replay_time),
        );
    }

    // Replication slots.
    for s in &v.slots {
        let slot_type = s.slot_type.clone().unwrap_or_default();
        let sl: Labels = &[
            ("server", server),
            ("slot_name", &s.slot_name),
            ("slot_type", &slot_type),
        ];
        e.gauge(
            "pganalytics_slot_retained_bytes",
            "WAL kept for the slot (current WAL position − restart_lsn).",
            sl,
            int(s.retained_bytes),
        );
        e.gauge(
            "pganalytics_slot_safe_wal_size_bytes",
            "WAL that can still be written before the slot is lost (max_slot_wal_keep_size).",
            sl,
            int(s.safe_wal_size),
        );
        e.gauge(
            "pganalytics_slot_active",
            "1 when a process is using the slot.",
            sl,
            s.active.map(bool01),
        );
        let wal_status = s.wal_status.clone().unwrap_or_default();
        let database = s.database.clone().unwrap_or_default();
        e.gauge(
            "pganalytics_slot_info",
            "A replication slot (value 1) with its WAL status (reserved, extended, unreserved, lost) and database.",
            &[("server", server), ("slot_name", &s.slot_name), ("slot_type", &slot_type), ("wal_status", &wal_status), ("database", &database)],
            Some(1.0),
        );
    }

    // pg_stat_wal (14+; 18 has no write/sync columns).
    if let Some(w) = &v.wal {
        e.counter(
            "pganalytics_wal_records_total",
            "WAL records generated.",
            l,
            int(w.wal_records),
        );
        e.counter(
            "pganalytics_wal_fpi_total",
            "Full-page images written to WAL.",
            l,
            int(w.wal_fpi),
        );
        e.counter(
            "pganalytics_wal_bytes_total",
            "Bytes of WAL generated.",
            l,
            int(w.wal_bytes),
        );
        e.counter(
            "pganalytics_wal_buffers_full_total",
            "Times WAL was written because the WAL buffers were full.",
            l,
            int(w.wal_buffers_full),
        );
        e.counter(
            "pganalytics_wal_write_total",
            "WAL write calls (14–17).",
            l,
            int(w.wal_write),
        );
        e.counter(
            "pganalytics_wal_sync_total",
            "WAL sync calls (14–17).",
            l,
            int(w.wal_sync),
        );
        e.counter(
            "pganalytics_wal_write_time_seconds_total",
            "Time spent writing WAL (14–17, track_wal_io_timing).",
            l,
            ms(w.wal_write_time),
        );
        e.counter(
            "pganalytics_wal_sync_time_seconds_total",
            "Time spent syncing WAL (14–17, track_wal_io_timing).",
            l,
            ms(w.wal_sync_time),
        );
    }

    // pg_stat_io (16+): rows that counted anything.
    for r in v.io.iter().flatten() {
        let il: Labels = &[
            ("server", server),
            ("backend_type", &r.backend_type),
            ("object", &r.object),
            ("context", &r.context),
        ];
        // Bytes: 18 reports them; 16–17 report op_bytes, the size of every operation.
        let bytes = |explicit: Option<i64>, ops: Option<i64>| {
            int(explicit).or_else(|| Some(ops? as f64 * r.op_bytes? as f64))
        };
        e.counter(
            "pganalytics_io_reads_total",
            "Read operations (pg_stat_io).",
            il,
            int(r.reads),
        );
        e.counter(
            "pganalytics_io_read_bytes_total",
            "Bytes read (pg_stat_io).",
            il,
            bytes(r.read_bytes, r.reads),
        );
        e.counter(
            "pganalytics_io_read_time_seconds_total",
            "Time spent reading (pg_stat_io, track_io_timing).",
            il,
            ms(r.read_time),
        );
        e.counter(
            "pganalytics_io_writes_total",
            "Write operations (pg_stat_io).",
            il,
            int(r.writes),
        );
        e.counter(
            "pganalytics_io_write_bytes_total",
            "Bytes written (pg_stat_io).",
            il,
            bytes(r.write_bytes, r.writes),
        );
        e.counter(
            "pganalytics_io_write_time_seconds_total",
            "Time spent writing (pg_stat_io, track_io_timing).",
            il,
            ms(r.write_time),
        );
        e.counter(
            "pganalytics_io_writebacks_total",
            "Writeback requests (pg_stat_io).",
            il,
            int(r.writebacks),
        );
        e.counter(
            "pganalytics_io_extends_total",
            "Relation extend operations (pg_stat_io).",
            il,
            int(r.extends),
        );
        e.counter(
            "pganalytics_io_extend_bytes_total",
            "Bytes added by extends (pg_stat_io).",
            il,
            bytes(r.extend_bytes, r.extends),
        );
        e.counter(
            "pganalytics_io_hits_total",
            "Buffer hits (pg_stat_io).",
            il,
            int(r.hits),
        );
        e.counter(
            "pganalytics_io_evictions_total",
            "Buffers evicted (pg_stat_io).",
            il,
            int(r.evictions),
        );
        e.counter(
            "pganalytics_io_reuses_total",
            "Ring buffers reused (pg_stat_io).",
            il,
            int(r.reuses),
        );
        e.counter(
            "pganalytics_io_fsyncs_total",
            "fsync calls (pg_stat_io).",
            il,
            int(r.fsyncs),
        );
        e.counter(
            "pganalytics_io_fsync_time_seconds_total",
            "Time spent in fsync (pg_stat_io, track_io_timing).",
            il,
            ms(r.fsync_time),
        );
    }
}

/// One series per standby, labelled by `application_name` and `client_addr` (empty for a unix
/// socket). Two standbys can share both (the default application_name `walreceiver` on one
/// host); the later ones then also get a `pid` label so that no two series collide.
fn standbys(e: &mut Exposition, server: &str, v: &SnapshotValues) {
    let mut seen: Vec<(String, String)> = Vec::new();
    for r in &v.replication {
        let app = r.application_name.clone().unwrap_or_default();
        let addr = r.client_addr.clone().unwrap_or_default();
        let key = (app.clone(), addr.clone());
        let pid = r.pid.to_string();
        let mut labels: Vec<(&str, &str)> = vec![
            ("server", server),
            ("application_name", &app),
            ("client_addr", &addr),
        ];
        if seen.contains(&key) {
            labels.push(("pid", &pid));
        } else {
            seen.push(key);
        }
        let sl: Labels = &labels;
        e.gauge(
            "pganalytics_replication_lag_bytes",
            "Bytes between this server's WAL position and the standby's replay position.",
            sl,
            int(r.lag_bytes),
        );
        e.gauge(
            "pganalytics_replication_write_lag_seconds",
            "Time until recent WAL was written on the standby (pg_stat_replication.write_lag).",
            sl,
            r.write_lag,
        );
        e.gauge(
            "pganalytics_replication_flush_lag_seconds",
            "Time until recent WAL was flushed on the standby (flush_lag).",
            sl,
            r.flush_lag,
        );
        e.gauge(
            "pganalytics_replication_replay_lag_seconds",
            "Time until recent WAL was replayed on the standby (replay_lag).",
            sl,
            r.replay_lag,
        );
        let state = r.state.clone().unwrap_or_default();
        let sync = r.sync_state.clone().unwrap_or_default();
        let mut info = labels.clone();
        info.push(("state", &state));
        info.push(("sync_state", &sync));
        e.gauge(
            "pganalytics_replication_standby_info",
            "A standby streaming from this server (value 1) with its state and sync_state.",
            &info,
            Some(1.0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ReplicationRow, WalValues};
    use crate::error::ErrorCode;

    fn values() -> SnapshotValues {
        let mut v = SnapshotValues {
            server_version_num: 170004,
            ..Default::default()
        };
        v.bgwriter.checkpoints_timed = Some(7);
        v.bgwriter.checkpoint_write_time = Some(1500.0);
        v.wal = Some(WalValues {
            wal_bytes: Some(123),
            ..Default::default()
        });
        v.replication = vec![
            ReplicationRow {
                pid: 10,
                application_name: Some("walreceiver".into()),
                lag_bytes: Some(5),
                ..Default::default()
            },
            ReplicationRow {
                pid: 11,
                application_name: Some("walreceiver".into()),
                lag_bytes: Some(6),
                ..Default::default()
            },
        ];
        v
    }

    #[test]
    fn nulls_are_omitted_counters_in_seconds_and_families_grouped() {
        let mut a = ServerState::new("a");
        a.succeeded(values(), Duration::from_millis(3));
        let mut b = ServerState::new("b\"x");
        b.failed(
            Error::new(ErrorCode::Unreachable, "cannot reach\nthe server").with_hint("start it"),
            Duration::from_millis(1),
        );
        let text = render(&[a, b]);
        assert!(
            text.contains("pganalytics_checkpoints_timed_total{server=\"a\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains("pganalytics_checkpoint_write_time_seconds_total{server=\"a\"} 1.5\n")
        );
        // NULL: no sample, and no header without samples.
        assert!(!text.contains("pganalytics_checkpoints_done_total"));
        assert!(!text.contains("pganalytics_wal_fpi_total"));
        assert!(text.contains("pganalytics_up{server=\"a\"} 1\n"));
        assert!(text.contains("pganalytics_up{server=\"b\\\"x\"} 0\n"));
        assert!(text.contains(
            "pganalytics_collection_error{server=\"b\\\"x\",code=\"unreachable\",reason=\"cannot reach\\nthe server\",hint=\"start it\"} 1"
        ), "{text}");
        assert_eq!(text.matches("# TYPE pganalytics_up gauge").count(), 1);
        // Colliding standbys get a pid label.
        assert!(text.contains("pganalytics_replication_lag_bytes{server=\"a\",application_name=\"walreceiver\",client_addr=\"\"} 5\n"));
        assert!(text.contains("pganalytics_replication_lag_bytes{server=\"a\",application_name=\"walreceiver\",client_addr=\"\",pid=\"11\"} 6\n"));
        // The failing server's values are not shown.
        assert!(!text.contains("server_version_num{server=\"b"));
    }
}
