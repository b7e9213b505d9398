//! From stored snapshots to the numbers a chart plots. No drawing here, so the data behind
//! each chart can be tested directly (never negative, gaps where a pair is invalid).
//!
//! Cumulative counters go through [`rates::pair`], the same rule `metrics show` and the
//! stored archive rate use: a pair of snapshots across a statistics reset counts from the
//! reset when the reset time lies between them, and is otherwise left out — as is a counter
//! that went back (crash) or a major-version change. A left-out pair is a **gap** in the line,
//! never a zero or a negative spike. Gauges (replication lag) need no such rule.

use crate::api::SnapshotValues;
use crate::metrics::rates;
use chrono::{DateTime, Utc};

/// More points than this per series are merged (consecutive intervals summed, lag maxima
/// kept): a panel 560 px wide cannot show more, and a day at 15 s would be 5,760 points per
/// series in every SVG.
pub const MAX_POINTS: usize = 180;

/// One plotted value covering `from..to` (unix seconds); a gauge has `from == to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub from: f64,
    pub to: f64,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// RGB.
    pub color: (u8, u8, u8),
    /// Runs of consecutive valid samples; between two runs the chart shows a gap.
    pub segments: Vec<Vec<Sample>>,
}

impl Series {
    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.segments.iter().flatten()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// Events per interval (checkpoints): one bar per series and interval.
    Bars,
    Lines,
}

/// Everything needed to draw one chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    /// Stable identifier (`checkpoints`, `buffers`, `archiver`, `lag_bytes`, `lag_time`).
    pub id: &'static str,
    pub title: String,
    /// Y-axis description with its unit.
    pub y_desc: String,
    pub kind: ChartKind,
    pub series: Vec<Series>,
    /// X range, unix seconds.
    pub x_range: (f64, f64),
    /// Set when there is nothing to plot: what the chart shows instead, and why.
    pub empty_message: Option<String>,
}

// A palette that stays distinguishable for common colour-vision deficiencies (Okabe–Ito-like),
// with red kept for failures only.
pub const BLUE: (u8, u8, u8) = (0x1f, 0x6f, 0xb5);
pub const ORANGE: (u8, u8, u8) = (0xe0, 0x7b, 0x10);
pub const GREEN: (u8, u8, u8) = (0x1d, 0x8a, 0x5a);
pub const PURPLE: (u8, u8, u8) = (0x7b, 0x4f, 0xb0);
pub const TEAL: (u8, u8, u8) = (0x17, 0x9c, 0xb0);
pub const BROWN: (u8, u8, u8) = (0x8c, 0x5a, 0x2b);
pub const RED: (u8, u8, u8) = (0xc6, 0x28, 0x28);
const STANDBY_COLORS: [(u8, u8, u8); 6] = [BLUE, ORANGE, GREEN, PURPLE, TEAL, BROWN];

fn secs(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// How many consecutive intervals one plotted point covers.
fn group_size(intervals: usize) -> usize {
    intervals.div_ceil(MAX_POINTS).max(1)
}

/// How a counter's valid increases become a plotted value.
#[derive(Clone, Copy)]
enum Per {
    /// The increase over the interval (events per interval).
    Interval,
    /// The increase per second times this factor (60: per minute).
    Time(f64),
}

fn counter_series(
    name: &str,
    color: (u8, u8, u8),
    metric: &str,
    points: &[SnapshotValues],
    per: Per,
) -> Series {
    // Unknown names are a bug the unit tests catch; in a running app an empty series (the
    // chart says "no data") beats a panic.
    let Some(counter) = rates::counter(metric) else {
        return Series {
            name: name.to_string(),
            color,
            segments: Vec::new(),
        };
    };
    let mut segments: Vec<Vec<Sample>> = Vec::new();
    let mut current: Vec<Sample> = Vec::new();
    let intervals = points.len().saturating_sub(1);
    let group = group_size(intervals);
    let mut start = 0;
    while start < intervals {
        let end = (start + group).min(intervals);
        let mut delta = 0.0;
        let mut covered = 0.0;
        let mut valid = false;
        for i in start..end {
            if let Ok((d, s)) = rates::pair(counter, &points[i], &points[i + 1]) {
                delta += d;
                covered += s;
                valid = true;
            }
        }
        if valid && covered > 0.0 {
            let value = match per {
                Per::Interval => delta,
                Per::Time(factor) => delta / covered * factor,
            };
            current.push(Sample {
                from: secs(points[start].collected_at),
                to: secs(points[end].collected_at),
                value,
            });
        } else if !current.is_empty() {
            segments.push(std::mem::take(&mut current));
        }
        start = end;
    }
    if !current.is_empty() {
        segments.push(current);
    }
    Series {
        name: name.to_string(),
        color,
        segments,
    }
}

/// A gauge per snapshot (`None`: absent there → gap); groups keep their maximum, because a
/// lag peak is what a DBA looks for.
fn gauge_series(
    name: &str,
    color: (u8, u8, u8),
    points: &[SnapshotValues],
    value: impl Fn(&SnapshotValues) -> Option<f64>,
) -> Series {
    let mut segments: Vec<Vec<Sample>> = Vec::new();
    let mut current: Vec<Sample> = Vec::new();
    for chunk in points.chunks(group_size(points.len())) {
        let max = chunk
            .iter()
            .filter_map(&value)
            .filter(|v| v.is_finite())
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        match (max, chunk.last()) {
            (Some(v), Some(last)) => {
                let t = secs(last.collected_at);
                current.push(Sample {
                    from: t,
                    to: t,
                    value: v.max(0.0),
                });
            }
            _ => {
                if !current.is_empty() {
                    segments.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    Series {
        name: name.to_string(),
        color,
        segments,
    }
}

/// What the first snapshots mean for a chart built from counters.
fn counters_empty_message(points: &[SnapshotValues], series: &[Series]) -> Option<String> {
    if series.iter().any(|s| !s.segments.is_empty()) {
        return None;
    }
    Some(match points.len() {
        0 => "No data yet: no snapshot of this server in the window".to_string(),
        1 => "No data yet: rates need a second snapshot".to_string(),
        _ => "No valid interval in the window (statistics reset or restart between every pair of snapshots)"
            .to_string(),
    })
}

/// Name of a standby in the charts' legends: its `application_name` (what
/// `synchronous_standby_names` uses), else its address, else the walsender's pid.
fn standby_name(r: &crate::api::ReplicationRow) -> String {
    r.application_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .or_else(|| r.client_addr.clone())
        .unwrap_or_else(|| format!("pid {}", r.pid))
}

/// Standby names in order of first appearance.
fn standbys(points: &[SnapshotValues]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in points {
        for r in &p.replication {
            let n = standby_name(r);
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names
}

/// A unit for bytes chosen from the largest value (binary units, as PostgreSQL's own
/// `pg_size_pretty` counts).
fn bytes_unit(max: f64) -> (&'static str, f64) {
    const UNITS: [(&str, f64); 4] = [
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("KiB", 1024.0),
        ("bytes", 1.0),
    ];
    UNITS
        .iter()
        .find(|(_, f)| max >= *f)
        .copied()
        .unwrap_or(("bytes", 1.0))
}

fn scale(series: &mut [Series], factor: f64) {
    for s in series {
        for seg in &mut s.segments {
            for p in seg {
                p.value /= factor;
            }
        }
    }
}

fn max_value(series: &[Series]) -> f64 {
    series
        .iter()
        .flat_map(|s| s.samples())
        .map(|p| p.value)
        .fold(0.0, f64::max)
}

/// Every chart of the Engine charts panel from the snapshots of one window (oldest first).
/// `window` is the requested window, used for the X range when there are too few snapshots.
pub fn build(points: &[SnapshotValues], window: (DateTime<Utc>, DateTime<Utc>)) -> Vec<ChartData> {
    let x_range = match (points.first(), points.last()) {
        (Some(a), Some(b)) if points.len() >= 2 => {
            // From the first snapshot to the newest: the first intervals fill the chart
            // rather than sit at the edge of a mostly empty hour.
            let (a, b) = (secs(a.collected_at), secs(b.collected_at));
            (a.min(b - 10.0), b)
        }
        _ => (secs(window.0), secs(window.1)),
    };
    let mut out = Vec::new();

    // Checkpoints: events, so counts per interval, scheduled next to requested.
    let series = vec![
        counter_series(
            "scheduled (checkpoint_timeout)",
            BLUE,
            "checkpoints_timed",
            points,
            Per::Interval,
        ),
        counter_series(
            "requested (max_wal_size, manual)",
            ORANGE,
            "checkpoints_req",
            points,
            Per::Interval,
        ),
    ];
    out.push(ChartData {
        id: "checkpoints",
        title: "Checkpoints: scheduled vs requested".into(),
        y_desc: "checkpoints per interval".into(),
        kind: ChartKind::Bars,
        empty_message: counters_empty_message(points, &series),
        series,
        x_range,
    });

    // Buffers: rates, the four flows a bgwriter tuning looks at.
    let series = vec![
        counter_series("allocated", BLUE, "buffers_alloc", points, Per::Time(1.0)),
        counter_series(
            "cleaned (bgwriter)",
            GREEN,
            "buffers_clean",
            points,
            Per::Time(1.0),
        ),
        counter_series(
            "checkpoint",
            PURPLE,
            "buffers_checkpoint",
            points,
            Per::Time(1.0),
        ),
        counter_series("backend", ORANGE, "buffers_backend", points, Per::Time(1.0)),
    ];
    out.push(ChartData {
        id: "buffers",
        title: "Buffers allocated and written".into(),
        y_desc: "buffers / s".into(),
        kind: ChartKind::Lines,
        empty_message: counters_empty_message(points, &series),
        series,
        x_range,
    });

    // Archiver: per minute (a healthy server archives well under one file per second).
    let series = vec![
        counter_series("archived", GREEN, "archived_count", points, Per::Time(60.0)),
        counter_series(
            "failed attempts",
            RED,
            "failed_count",
            points,
            Per::Time(60.0),
        ),
    ];
    out.push(ChartData {
        id: "archiver",
        title: "WAL archiving: rate and failures".into(),
        y_desc: "WAL files / min".into(),
        kind: ChartKind::Lines,
        empty_message: counters_empty_message(points, &series),
        series,
        x_range,
    });

    // Replication lag per standby, in bytes and in time.
    let names = standbys(points);
    let on_standby = points.last().is_some_and(|p| p.in_recovery);
    let per_standby = |value: fn(&crate::api::ReplicationRow) -> Option<f64>| -> Vec<Series> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                gauge_series(
                    name,
                    STANDBY_COLORS[i % STANDBY_COLORS.len()],
                    points,
                    |p| {
                        p.replication
                            .iter()
                            .filter(|r| &standby_name(r) == name)
                            .filter_map(value)
                            .reduce(f64::max)
                    },
                )
            })
            .collect()
    };
    let no_standby = if points.is_empty() {
        "No data yet: no snapshot of this server in the window"
    } else {
        "No standby streamed from this server in the window"
    };

    let mut series = per_standby(|r| r.lag_bytes.map(|b| b as f64));
    if on_standby {
        // A standby has no walsenders of its own: chart what it received but has not replayed.
        series.push(gauge_series(
            "this standby: received, not yet replayed",
            BLUE,
            points,
            |p| {
                p.wal_receiver
                    .as_ref()
                    .and_then(|w| w.replay_lag_bytes)
                    .map(|b| b as f64)
            },
        ));
    }
    let (unit, factor) = bytes_unit(max_value(&series));
    scale(&mut series, factor);
    let empty = series.iter().all(|s| s.segments.is_empty());
    out.push(ChartData {
        id: "lag_bytes",
        title: "Replication lag per standby (bytes)".into(),
        y_desc: format!("behind the primary ({unit})"),
        kind: ChartKind::Lines,
        empty_message: empty.then(|| no_standby.to_string()),
        series,
        x_range,
    });

    // Time lag: PostgreSQL clears replay_lag once a standby has caught up and no WAL is
    // written, so NULL for a connected standby means "caught up", plotted as 0.
    let mut series = per_standby(|r| Some(r.replay_lag.unwrap_or(0.0)));
    let max = max_value(&series);
    let (unit, factor) = if max >= 120.0 {
        ("min", 60.0)
    } else {
        ("s", 1.0)
    };
    scale(&mut series, factor);
    let empty = series.iter().all(|s| s.segments.is_empty());
    out.push(ChartData {
        id: "lag_time",
        title: "Replication replay lag per standby (time)".into(),
        y_desc: format!("replay lag ({unit})"),
        kind: ChartKind::Lines,
        empty_message: empty.then(|| {
            if on_standby {
                "This server is a standby: its replay lag in time is charted on its primary"
                    .to_string()
            } else {
                no_standby.to_string()
            }
        }),
        series,
        x_range,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ReplicationRow;
    use chrono::TimeZone;

    fn at(secs: i64, timed: i64, req: i64, reset: i64) -> SnapshotValues {
        let mut v = SnapshotValues {
            server_version_num: 160000,
            collected_at: Utc.timestamp_opt(secs, 0).unwrap(),
            ..Default::default()
        };
        v.bgwriter.checkpoints_timed = Some(timed);
        v.bgwriter.checkpoints_req = Some(req);
        v.bgwriter.buffers_alloc = Some(timed * 100);
        v.bgwriter.stats_reset = Some(Utc.timestamp_opt(reset, 0).unwrap());
        v
    }

    fn window() -> (DateTime<Utc>, DateTime<Utc>) {
        (
            Utc.timestamp_opt(0, 0).unwrap(),
            Utc.timestamp_opt(3600, 0).unwrap(),
        )
    }

    fn chart<'a>(charts: &'a [ChartData], id: &str) -> &'a ChartData {
        charts.iter().find(|c| c.id == id).unwrap()
    }

    #[test]
    fn every_counter_name_exists() {
        let mut a = at(0, 0, 0, 0);
        let mut b = at(10, 1, 1, 0);
        for (v, n) in [(&mut a, 0), (&mut b, 1)] {
            v.bgwriter.buffers_clean = Some(n);
            v.bgwriter.buffers_checkpoint = Some(n);
            v.bgwriter.buffers_backend = Some(n);
            v.archiver.archived_count = Some(n);
            v.archiver.failed_count = Some(n);
        }
        let charts = build(&[a, b], window());
        assert_eq!(charts.len(), 5);
        for c in &charts[..3] {
            for s in &c.series {
                assert_eq!(s.samples().count(), 1, "{} / {}", c.id, s.name);
            }
        }
    }

    #[test]
    fn a_counter_that_goes_back_is_a_gap_never_negative() {
        // 10 → 20 → 3 (went back without a reset: skipped) → 5.
        let points = [
            at(0, 10, 0, 0),
            at(10, 20, 0, 0),
            at(20, 3, 0, 0),
            at(30, 5, 0, 0),
        ];
        let charts = build(&points, window());
        let s = &chart(&charts, "checkpoints").series[0];
        assert_eq!(s.segments.len(), 2, "{s:?}");
        let values: Vec<f64> = s.samples().map(|p| p.value).collect();
        assert_eq!(values, [10.0, 2.0]);
        // A reset inside the interval counts from the reset.
        let points = [at(0, 10, 0, 0), at(10, 4, 0, 5)];
        let charts = build(&points, window());
        let s = &chart(&charts, "buffers").series[0];
        assert_eq!(s.samples().next().unwrap().value, 400.0 / 5.0);
    }

    #[test]
    fn first_snapshots_say_why_there_is_nothing() {
        let charts = build(&[], window());
        assert!(charts.iter().all(|c| c.empty_message.is_some()));
        let charts = build(&[at(0, 1, 1, 0)], window());
        let msg = chart(&charts, "checkpoints").empty_message.clone().unwrap();
        assert!(msg.contains("second snapshot"), "{msg}");
    }

    #[test]
    fn many_snapshots_are_merged_to_a_bounded_number_of_points() {
        let points: Vec<_> = (0..2000).map(|i| at(i * 15, i, i / 10, 0)).collect();
        let charts = build(&points, window());
        let s = &chart(&charts, "checkpoints").series[0];
        assert!(s.samples().count() <= MAX_POINTS);
        let total: f64 = s.samples().map(|p| p.value).sum();
        assert_eq!(total, 1999.0, "merging keeps the sum of the increases");
    }

    #[test]
    fn lag_per_standby_with_units() {
        let mut a = at(0, 0, 0, 0);
        let mut b = at(10, 0, 0, 0);
        let row = |name: &str, bytes: i64, lag: Option<f64>| ReplicationRow {
            application_name: Some(name.into()),
            lag_bytes: Some(bytes),
            replay_lag: lag,
            ..Default::default()
        };
        a.replication = vec![row("s1", 3 << 20, Some(1.5)), row("s2", 0, None)];
        b.replication = vec![row("s1", 5 << 20, None)];
        let charts = build(&[a, b], window());
        let bytes = chart(&charts, "lag_bytes");
        assert_eq!(bytes.y_desc, "behind the primary (MiB)");
        assert_eq!(bytes.series.len(), 2);
        let s1: Vec<f64> = bytes.series[0].samples().map(|p| p.value).collect();
        assert_eq!(s1, [3.0, 5.0]);
        let time = chart(&charts, "lag_time");
        let s1: Vec<f64> = time.series[0].samples().map(|p| p.value).collect();
        assert_eq!(
            s1,
            [1.5, 0.0],
            "NULL lag of a connected standby is caught up"
        );
        assert_eq!(time.series[1].samples().count(), 1, "s2 left: a gap after");
    }
}
