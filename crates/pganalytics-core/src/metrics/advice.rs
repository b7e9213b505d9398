//! Advice a DBA would act on, from the newest snapshot and the rates over the window.
//!
//! - Requested checkpoints far outnumber timed ones: WAL fills `max_wal_size` before
//!   `checkpoint_timeout`; raise `max_wal_size` (requested also counts manual CHECKPOINTs and
//!   base backups, which the finding says).
//! - Backends write a large share of the buffers themselves: the background writer does not
//!   keep ahead; raise `bgwriter_lru_maxpages` / `bgwriter_lru_multiplier` or lower
//!   `bgwriter_delay`. Backend fsyncs mean the checkpointer's request queue overflowed.
//! - The archiver fails: name the failing file and since when, and the WAL piling up.
//! - A replication slot lost or about to lose its WAL, or holds much of it while inactive.

use crate::api::{Advice, AdviceSeverity, MetricRate, SnapshotValues};

/// Fewer events than this in the window are noise, not a pattern.
const MIN_CHECKPOINTS: f64 = 3.0;
/// Backends writing more than this share of all written buffers is a problem.
const BACKEND_SHARE: f64 = 0.10;
const MIN_BUFFERS: f64 = 1000.0;
/// An inactive slot holding more than this much WAL is worth a warning.
const SLOT_RETAINED_WARN: i64 = 1 << 30;

fn delta(rates: &[MetricRate], name: &str) -> f64 {
    rates
        .iter()
        .find(|r| r.metric == name)
        .and_then(|r| r.delta)
        .unwrap_or(0.0)
}

fn setting<'a>(v: &'a SnapshotValues, name: &str) -> &'a str {
    v.settings.get(name).map(String::as_str).unwrap_or("?")
}

pub fn advise(
    latest: &SnapshotValues,
    window: &[(i64, SnapshotValues)],
    rates: &[MetricRate],
) -> Vec<Advice> {
    let mut out = Vec::new();
    checkpoints(latest, rates, &mut out);
    bgwriter(latest, rates, &mut out);
    archiver(latest, window, &mut out);
    slots(latest, &mut out);
    out
}

fn checkpoints(v: &SnapshotValues, rates: &[MetricRate], out: &mut Vec<Advice>) {
    let req = delta(rates, "checkpoints_req");
    let timed = delta(rates, "checkpoints_timed");
    if req >= MIN_CHECKPOINTS && req > timed {
        out.push(Advice {
            severity: AdviceSeverity::Warning,
            topic: "checkpoints".into(),
            finding: format!(
                "{req:.0} requested vs {timed:.0} timed checkpoints in the window: WAL reaches max_wal_size ({}) before checkpoint_timeout ({}) (manual CHECKPOINTs and base backups also count as requested)",
                setting(v, "max_wal_size"),
                setting(v, "checkpoint_timeout")
            ),
            action: format!(
                "raise max_wal_size (now {}; e.g. double it, a reload is enough) so checkpoints happen on checkpoint_timeout and write less often",
                setting(v, "max_wal_size")
            ),
        });
    }
}

fn bgwriter(v: &SnapshotValues, rates: &[MetricRate], out: &mut Vec<Advice>) {
    let backend = delta(rates, "buffers_backend");
    let total = backend + delta(rates, "buffers_clean") + delta(rates, "buffers_checkpoint");
    if backend >= MIN_BUFFERS && total > 0.0 && backend / total > BACKEND_SHARE {
        let maxwritten = delta(rates, "maxwritten_clean");
        out.push(Advice {
            severity: AdviceSeverity::Warning,
            topic: "bgwriter".into(),
            finding: format!(
                "backends wrote {backend:.0} of {total:.0} buffers ({:.0} %) themselves; the background writer stopped {maxwritten:.0} times at bgwriter_lru_maxpages",
                100.0 * backend / total
            ),
            action: format!(
                "let the background writer clean more: raise bgwriter_lru_maxpages (now {}){}, raise bgwriter_lru_multiplier (now {}) or lower bgwriter_delay (now {})",
                setting(v, "bgwriter_lru_maxpages"),
                if maxwritten > 0.0 { " first, it is the limit hit" } else { "" },
                setting(v, "bgwriter_lru_multiplier"),
                setting(v, "bgwriter_delay")
            ),
        });
    }
    let fsyncs = delta(rates, "buffers_backend_fsync");
    if fsyncs > 0.0 {
        out.push(Advice {
            severity: AdviceSeverity::Warning,
            topic: "bgwriter".into(),
            finding: format!("backends had to fsync {fsyncs:.0} times themselves: the checkpointer's request queue was full"),
            action: "check that the checkpointer is not stalled by slow storage (checkpoint_sync_time), and spread checkpoints (checkpoint_completion_target 0.9)".into(),
        });
    }
}

fn archiver(v: &SnapshotValues, window: &[(i64, SnapshotValues)], out: &mut Vec<Advice>) {
    let a = &v.archiver;
    let failing = match (a.last_failed_time, a.last_archived_time) {
        (Some(f), Some(s)) => f > s,
        (Some(_), None) => true,
        _ => false,
    };
    if !failing {
        return;
    }
    let file = a.last_failed_wal.clone().unwrap_or_else(|| "?".into());
    // Since when: the first failure of this very file seen in the window, else the newest.
    let first_seen = window
        .iter()
        .map(|(_, p)| &p.archiver)
        .find(|p| p.last_failed_wal.as_deref() == Some(file.as_str()))
        .and_then(|p| p.last_failed_time)
        .or(a.last_failed_time);
    let since = first_seen
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "?".into());
    let last_ok = a
        .last_archived_time
        .map(|t| {
            format!(
                "last success {} ({})",
                t.format("%Y-%m-%d %H:%M:%S UTC"),
                a.last_archived_wal.as_deref().unwrap_or("?")
            )
        })
        .unwrap_or_else(|| "nothing archived since the statistics were reset".into());
    let lag = a
        .archive_lag_segments
        .map(|n| format!("; {n} complete segments wait in pg_wal"))
        .unwrap_or_default();
    out.push(Advice {
        severity: AdviceSeverity::Critical,
        topic: "archiver".into(),
        finding: format!(
            "archive_command fails for {file} since {since} ({} failures in total; {last_ok}){lag}",
            a.failed_count.unwrap_or(0)
        ),
        action: "read the server log for the archive_command error and fix it (target reachable, space, permissions); until then WAL accumulates in pg_wal and point-in-time recovery stops at the last archived file".into(),
    });
}

fn slots(v: &SnapshotValues, out: &mut Vec<Advice>) {
    for s in &v.slots {
        let status = s.wal_status.as_deref().unwrap_or("");
        if status == "lost" || status == "unreserved" {
            out.push(Advice {
                severity: AdviceSeverity::Critical,
                topic: "replication_slots".into(),
                finding: format!("slot {} has wal_status `{status}`: the WAL it needs is (about to be) removed", s.slot_name),
                action: "rebuild its consumer (standby or logical subscriber) from a new base backup, or drop the slot if it is abandoned".into(),
            });
        } else if s.active == Some(false) && s.retained_bytes.unwrap_or(0) > SLOT_RETAINED_WARN {
            out.push(Advice {
                severity: AdviceSeverity::Warning,
                topic: "replication_slots".into(),
                finding: format!(
                    "inactive slot {} retains {} MB of WAL",
                    s.slot_name,
                    s.retained_bytes.unwrap_or(0) >> 20
                ),
                action: "reconnect its consumer or drop the slot (`SELECT pg_drop_replication_slot(...)`); set max_slot_wal_keep_size to cap what a slot can hold".into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SlotRow;
    use chrono::{TimeZone, Utc};

    fn rate(metric: &str, delta: f64) -> MetricRate {
        MetricRate {
            metric: metric.into(),
            delta: Some(delta),
            per_second: Some(delta / 3600.0),
            covered_seconds: 3600.0,
            skipped: Vec::new(),
        }
    }

    fn values() -> SnapshotValues {
        let mut v = SnapshotValues::default();
        for (k, val) in [
            ("max_wal_size", "1GB"),
            ("checkpoint_timeout", "5min"),
            ("bgwriter_lru_maxpages", "100"),
        ] {
            v.settings.insert(k.into(), val.into());
        }
        v
    }

    #[test]
    fn requested_checkpoints_outnumbering_timed_ones_ask_for_max_wal_size() {
        let v = values();
        let advice = advise(
            &v,
            &[],
            &[
                rate("checkpoints_req", 12.0),
                rate("checkpoints_timed", 2.0),
            ],
        );
        assert_eq!(advice.len(), 1);
        assert!(
            advice[0].action.contains("max_wal_size (now 1GB"),
            "{advice:?}"
        );
        // A couple of manual CHECKPOINTs are not a pattern.
        let quiet = advise(
            &v,
            &[],
            &[rate("checkpoints_req", 2.0), rate("checkpoints_timed", 0.0)],
        );
        assert!(quiet.is_empty());
    }

    #[test]
    fn backends_writing_buffers_ask_for_bgwriter_settings() {
        let v = values();
        let rates = [
            rate("buffers_backend", 5000.0),
            rate("buffers_clean", 1000.0),
            rate("buffers_checkpoint", 4000.0),
            rate("maxwritten_clean", 30.0),
        ];
        let advice = advise(&v, &[], &rates);
        assert_eq!(advice.len(), 1, "{advice:?}");
        assert_eq!(advice[0].topic, "bgwriter");
        assert!(advice[0].finding.contains("50 %"), "{advice:?}");
        assert!(advice[0]
            .action
            .contains("bgwriter_lru_maxpages (now 100) first"));
    }

    #[test]
    fn failing_archiver_names_the_file_and_since_when() {
        let t = |s| Utc.timestamp_opt(s, 0).unwrap();
        let mut first = values();
        first.archiver.last_failed_wal = Some("000000010000000000000007".into());
        first.archiver.last_failed_time = Some(t(1_000));
        first.archiver.last_archived_time = Some(t(500));
        let mut latest = first.clone();
        latest.archiver.last_failed_time = Some(t(2_000));
        latest.archiver.failed_count = Some(9);
        latest.archiver.archive_lag_segments = Some(4);
        let window = [(1, first), (2, latest.clone())];
        let advice = advise(&latest, &window, &[]);
        assert_eq!(advice.len(), 1);
        assert_eq!(advice[0].severity, AdviceSeverity::Critical);
        let f = &advice[0].finding;
        assert!(f.contains("000000010000000000000007"), "{f}");
        assert!(
            f.contains("since 1970-01-01 00:16:40 UTC"),
            "first failure seen: {f}"
        );
        assert!(f.contains("4 complete segments wait"), "{f}");
        // Archiving that succeeded after the last failure is fine.
        latest.archiver.last_archived_time = Some(t(3_000));
        assert!(advise(&latest, &[], &[]).is_empty());
    }

    #[test]
    fn lost_and_hoarding_slots_are_flagged() {
        let mut v = values();
        v.slots = vec![
            SlotRow {
                slot_name: "gone".into(),
                wal_status: Some("lost".into()),
                ..Default::default()
            },
            SlotRow {
                slot_name: "idle".into(),
                active: Some(false),
                retained_bytes: Some(5 << 30),
                ..Default::default()
            },
            SlotRow {
                slot_name: "fine".into(),
                active: Some(true),
                retained_bytes: Some(5 << 30),
                ..Default::default()
            },
        ];
        let advice = advise(&v, &[], &[]);
        let names: Vec<&str> = advice.iter().map(|a| a.severity_name()).collect();
        assert_eq!(names, ["critical", "warning"]);
        assert!(advice[1].finding.contains("5120 MB"));
    }

    impl Advice {
        fn severity_name(&self) -> &'static str {
            match self.severity {
                AdviceSeverity::Info => "info",
                AdviceSeverity::Warning => "warning",
                AdviceSeverity::Critical => "critical",
            }
        }
    }
}
