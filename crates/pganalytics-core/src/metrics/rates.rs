//! Deltas and rates of cumulative counters between snapshots.
//!
//! A pair of consecutive snapshots yields a valid increase only when the counter's own source
//! was not reset in between and the counter did not go back. The rules, per counter:
//!
//! - the source's `stats_reset` changed, and the new reset time lies between the two
//!   snapshots: the counter restarted from 0 then, so its whole value is the increase over the
//!   time since the reset (a partial interval, still exact);
//! - `stats_reset` changed otherwise (clock trouble, a restored cluster): the pair is skipped;
//! - the value went down without a reset (a crash lost the statistics file, a restart from a
//!   backup): skipped, never a negative rate;
//! - a clean restart keeps the statistics (13–18 write them at shutdown), so a pair across a
//!   restart with an unchanged `stats_reset` counts normally;
//! - a different major version between snapshots (an upgrade) is skipped: views changed meaning.
//!
//! Rates over a window add the valid increases and divide by the seconds they cover, so one
//! reset inside the window loses one interval, not the window.

use crate::api::{MetricRate, SnapshotValues};
use chrono::{DateTime, Utc};

type Getter = fn(&SnapshotValues) -> Option<f64>;
type ResetOf = fn(&SnapshotValues) -> Option<DateTime<Utc>>;

/// A cumulative counter: its name, how to read it, and which reset time governs it.
pub struct Counter {
    pub name: &'static str,
    pub get: Getter,
    pub reset: ResetOf,
}

fn checkpointer_reset(v: &SnapshotValues) -> Option<DateTime<Utc>> {
    // 17+ has its own view; before, the checkpoint counters live in pg_stat_bgwriter.
    v.bgwriter
        .checkpointer_stats_reset
        .or(v.bgwriter.stats_reset)
}
fn bgwriter_reset(v: &SnapshotValues) -> Option<DateTime<Utc>> {
    v.bgwriter.stats_reset
}
fn backend_reset(v: &SnapshotValues) -> Option<DateTime<Utc>> {
    // 17+: pg_stat_io; before, pg_stat_bgwriter.
    v.bgwriter.io_stats_reset.or(v.bgwriter.stats_reset)
}
fn archiver_reset(v: &SnapshotValues) -> Option<DateTime<Utc>> {
    v.archiver.stats_reset
}
fn wal_reset(v: &SnapshotValues) -> Option<DateTime<Utc>> {
    v.wal.as_ref().and_then(|w| w.stats_reset)
}

fn f(v: Option<i64>) -> Option<f64> {
    v.map(|n| n as f64)
}

macro_rules! counter {
    ($name:literal, $get:expr, $reset:expr) => {
        Counter {
            name: $name,
            get: $get,
            reset: $reset,
        }
    };
}

/// Every counter the report rates, in display order.
pub const COUNTERS: &[Counter] = &[
    counter!(
        "checkpoints_timed",
        |v| f(v.bgwriter.checkpoints_timed),
        checkpointer_reset
    ),
    counter!(
        "checkpoints_req",
        |v| f(v.bgwriter.checkpoints_req),
        checkpointer_reset
    ),
    counter!(
        "checkpoints_done",
        |v| f(v.bgwriter.checkpoints_done),
        checkpointer_reset
    ),
    counter!(
        "checkpoint_write_time",
        |v| v.bgwriter.checkpoint_write_time,
        checkpointer_reset
    ),
    counter!(
        "checkpoint_sync_time",
        |v| v.bgwriter.checkpoint_sync_time,
        checkpointer_reset
    ),
    counter!(
        "buffers_checkpoint",
        |v| f(v.bgwriter.buffers_checkpoint),
        checkpointer_reset
    ),
    counter!(
        "buffers_clean",
        |v| f(v.bgwriter.buffers_clean),
        bgwriter_reset
    ),
    counter!(
        "maxwritten_clean",
        |v| f(v.bgwriter.maxwritten_clean),
        bgwriter_reset
    ),
    counter!(
        "buffers_backend",
        |v| f(v.bgwriter.buffers_backend),
        backend_reset
    ),
    counter!(
        "buffers_backend_fsync",
        |v| f(v.bgwriter.buffers_backend_fsync),
        backend_reset
    ),
    counter!(
        "buffers_alloc",
        |v| f(v.bgwriter.buffers_alloc),
        bgwriter_reset
    ),
    counter!(
        "archived_count",
        |v| f(v.archiver.archived_count),
        archiver_reset
    ),
    counter!(
        "failed_count",
        |v| f(v.archiver.failed_count),
        archiver_reset
    ),
    counter!(
        "wal_records",
        |v| v.wal.as_ref().and_then(|w| f(w.wal_records)),
        wal_reset
    ),
    counter!(
        "wal_fpi",
        |v| v.wal.as_ref().and_then(|w| f(w.wal_fpi)),
        wal_reset
    ),
    counter!(
        "wal_bytes",
        |v| v.wal.as_ref().and_then(|w| f(w.wal_bytes)),
        wal_reset
    ),
    counter!(
        "wal_buffers_full",
        |v| v.wal.as_ref().and_then(|w| f(w.wal_buffers_full)),
        wal_reset
    ),
];

pub fn counter(name: &str) -> Option<&'static Counter> {
    COUNTERS.iter().find(|c| c.name == name)
}

/// The valid increase of `c` from `prev` to `cur` and the seconds it covers, or why there is
/// none.
pub fn pair(
    c: &Counter,
    prev: &SnapshotValues,
    cur: &SnapshotValues,
) -> Result<(f64, f64), String> {
    let seconds = |from: DateTime<Utc>| {
        (cur.collected_at - from)
            .num_microseconds()
            .map(|us| us as f64 / 1e6)
    };
    let dt = seconds(prev.collected_at).unwrap_or(0.0);
    if dt <= 0.0 {
        return Err("snapshots not in time order".into());
    }
    if prev.server_version_num / 10000 != cur.server_version_num / 10000 {
        return Err("major version changed between snapshots".into());
    }
    let (Some(a), Some(b)) = ((c.get)(prev), (c.get)(cur)) else {
        return Err("not reported by this server version".into());
    };
    let (ra, rb) = ((c.reset)(prev), (c.reset)(cur));
    if ra != rb {
        return match rb {
            Some(r) if r > prev.collected_at && r <= cur.collected_at && b >= 0.0 => {
                match seconds(r) {
                    Some(since_reset) if since_reset > 0.0 => Ok((b, since_reset)),
                    _ => Err(format!("statistics reset at {r}")),
                }
            }
            _ => Err("statistics reset between snapshots".into()),
        };
    }
    if b < a {
        return Err(if prev.postmaster_start_time != cur.postmaster_start_time {
            "server restarted and its statistics were lost".into()
        } else {
            "counter went back without a reset".into()
        });
    }
    Ok((b - a, dt))
}

/// Rates of every counter over consecutive `points` (oldest first).
pub fn over(points: &[SnapshotValues]) -> Vec<MetricRate> {
    COUNTERS
        .iter()
        .filter(|c| points.last().is_some_and(|p| (c.get)(p).is_some()))
        .map(|c| {
            let mut delta = 0.0;
            let mut covered = 0.0;
            let mut valid = 0;
            let mut skipped = Vec::new();
            for w in points.windows(2) {
                match pair(c, &w[0], &w[1]) {
                    Ok((d, s)) => {
                        delta += d;
                        covered += s;
                        valid += 1;
                    }
                    Err(why) => skipped.push(format!(
                        "{} → {}: {why}",
                        w[0].collected_at.format("%F %T"),
                        w[1].collected_at.format("%F %T")
                    )),
                }
            }
            MetricRate {
                metric: c.name.to_string(),
                delta: (valid > 0).then_some(delta),
                per_second: (valid > 0 && covered > 0.0).then(|| delta / covered),
                covered_seconds: covered,
                skipped,
            }
        })
        .collect()
}

/// Files archived per second from `prev` to `cur`, `None` when the pair is not valid.
pub fn archive_rate(prev: &SnapshotValues, cur: &SnapshotValues) -> Option<f64> {
    let c = counter("archived_count")?;
    pair(c, prev, cur).ok().map(|(d, s)| d / s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64, archived: i64, reset: i64, start: i64) -> SnapshotValues {
        let mut v = SnapshotValues {
            server_version_num: 160000,
            collected_at: Utc.timestamp_opt(secs, 0).unwrap(),
            postmaster_start_time: Some(Utc.timestamp_opt(start, 0).unwrap()),
            ..Default::default()
        };
        v.archiver.archived_count = Some(archived);
        v.archiver.stats_reset = Some(Utc.timestamp_opt(reset, 0).unwrap());
        v
    }

    #[test]
    fn ordinary_pair_gives_the_rate() {
        assert_eq!(
            archive_rate(&at(100, 10, 0, 0), &at(110, 30, 0, 0)),
            Some(2.0)
        );
    }

    #[test]
    fn a_reset_between_snapshots_counts_from_the_reset() {
        // Reset at t=105, then 5 files by t=110: 1 file/s, not (5-10)/10.
        assert_eq!(
            archive_rate(&at(100, 10, 0, 0), &at(110, 5, 105, 0)),
            Some(1.0)
        );
        // A reset time outside the interval cannot be trusted.
        assert_eq!(archive_rate(&at(100, 10, 0, 0), &at(110, 5, 50, 0)), None);
    }

    #[test]
    fn counters_that_go_back_are_skipped_never_negative() {
        assert_eq!(archive_rate(&at(100, 10, 0, 0), &at(110, 3, 0, 0)), None);
        let c = counter("archived_count").unwrap();
        let why = pair(c, &at(100, 10, 0, 0), &at(110, 3, 0, 50)).unwrap_err();
        assert!(why.contains("restarted"), "{why}");
        // A clean restart keeps the statistics: the increase counts.
        assert_eq!(
            archive_rate(&at(100, 10, 0, 0), &at(110, 20, 0, 105)),
            Some(1.0)
        );
    }

    #[test]
    fn window_rates_skip_only_the_bad_pair() {
        let points = [
            at(0, 0, 0, 0),
            at(10, 10, 0, 0),
            at(20, 2, 0, 0),
            at(30, 12, 0, 0),
        ];
        let r = over(&points);
        let archived = r.iter().find(|r| r.metric == "archived_count").unwrap();
        assert_eq!(archived.delta, Some(20.0));
        assert_eq!(archived.per_second, Some(1.0));
        assert_eq!(archived.skipped.len(), 1);
        assert!(r.iter().all(|r| r.per_second.is_none_or(|p| p >= 0.0)));
    }
}
