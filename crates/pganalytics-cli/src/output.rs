//! Printing results: aligned text for people, JSON (`--json`) for programs. Errors go to
//! stderr as `error: …` plus `hint: …`, or as a JSON object with `--json`.

use pganalytics_core::api::{
    AdviceSeverity, CreatedToken, MetricsReport, PruneResult, RepoStatus, RepositoryKind,
    ServerCheck, ServerSummary, SnapshotResult, SnapshotValues, TokenSummary,
};
use pganalytics_core::Error;
use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    fn print_json<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: serialize output: {e}"),
        }
    }

    pub fn error(&self, err: &Error) {
        if self.json {
            let text = serde_json::to_string(&serde_json::json!({ "error": err }))
                .unwrap_or_else(|_| format!("{{\"error\":{{\"message\":{:?}}}}}", err.message));
            eprintln!("{text}");
        } else {
            eprintln!("error: {}", err.message);
            if let Some(hint) = &err.hint {
                eprintln!("hint: {hint}");
            }
        }
    }

    pub fn message(&self, text: &str) {
        if self.json {
            self.print_json(&serde_json::json!({ "message": text }));
        } else {
            println!("{text}");
        }
    }

    /// Files written: one path a line, or a JSON list.
    pub fn paths(&self, paths: &[String]) {
        if self.json {
            return self.print_json(&paths);
        }
        for p in paths {
            println!("{p}");
        }
    }

    pub fn server_added(&self, s: &ServerSummary) {
        if self.json {
            return self.print_json(s);
        }
        println!("added server {} ({})", s.name, s.dsn);
        if s.password_in_keyring {
            println!("its password is stored in the OS keyring");
        }
    }

    pub fn server_removed(&self, s: &ServerSummary) {
        if self.json {
            return self.print_json(s);
        }
        println!("removed server {}", s.name);
    }

    pub fn servers(&self, list: &[ServerSummary]) {
        if self.json {
            return self.print_json(&list);
        }
        if list.is_empty() {
            println!("no servers registered; add one with `pganalytics server add NAME --dsn URI`");
            return;
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    s.dsn.clone(),
                    if s.password_in_keyring {
                        "keyring"
                    } else {
                        "-"
                    }
                    .to_string(),
                    s.created_at.format("%Y-%m-%d %H:%M").to_string(),
                ]
            })
            .collect();
        print_table(&["NAME", "DSN", "PASSWORD", "ADDED"], &rows);
    }

    pub fn server_check(&self, c: &ServerCheck) {
        if self.json {
            return self.print_json(c);
        }
        println!("server:          {}", c.name);
        println!("version:         {}", c.version);
        println!("version number:  {}", c.server_version_num);
        println!(
            "connected as:    {}{}",
            c.current_user,
            if c.is_superuser { " (superuser)" } else { "" }
        );
        println!(
            "reads statistics (pg_monitor): {}",
            yes_no(c.can_read_stats)
        );
        println!("can replicate (REPLICATION):   {}", yes_no(c.can_replicate));
        println!("in recovery (standby):         {}", yes_no(c.in_recovery));
        println!();
        let rows: Vec<Vec<String>> = c
            .settings
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    s.value
                        .clone()
                        .unwrap_or_else(|| "(not in this version)".into()),
                ]
            })
            .collect();
        print_table(&["SETTING", "VALUE"], &rows);
        println!();
        let rows: Vec<Vec<String>> = c
            .features
            .iter()
            .map(|f| {
                vec![
                    f.feature.clone(),
                    if f.ready { "ready" } else { "not ready" }.into(),
                    f.detail.clone(),
                ]
            })
            .collect();
        print_table(&["FEATURE", "STATUS", "DETAIL"], &rows);
    }

    pub fn repo_status(&self, r: &RepoStatus) {
        if self.json {
            return self.print_json(r);
        }
        let kind = match r.kind {
            RepositoryKind::Embedded => "embedded",
            RepositoryKind::External => "external",
        };
        println!("kind:        {kind}");
        println!("location:    {}", r.location);
        println!("data dir:    {}", r.data_dir);
        println!(
            "server:      PostgreSQL {} ({})",
            r.server_version, r.server_version_num
        );
        println!("migrations:  {} applied", r.migrations.len());
        for m in &r.migrations {
            println!(
                "  {} {} ({})",
                m.version,
                m.description,
                m.installed_on.format("%Y-%m-%d %H:%M:%S")
            );
        }
    }

    pub fn token_created(&self, t: &CreatedToken) {
        if self.json {
            return self.print_json(t);
        }
        println!("{}", t.token);
        eprintln!("token `{}` created; it is shown only this once", t.name);
    }

    pub fn tokens(&self, list: &[TokenSummary]) {
        if self.json {
            return self.print_json(&list);
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    t.created_at.format("%Y-%m-%d %H:%M").to_string(),
                    t.last_used_at
                        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "never".into()),
                ]
            })
            .collect();
        print_table(&["NAME", "CREATED", "LAST USED"], &rows);
    }
}

/// Engine metrics.
impl Output {
    /// `metrics snapshot`: the snap_id alone (scripts read it), or every value with `--json`.
    pub fn metrics_snapshot(&self, r: &SnapshotResult) {
        if self.json {
            return self.print_json(r);
        }
        println!("{}", r.snap_id);
    }

    /// One line per snapshot while collecting (JSON lines with `--json`).
    pub fn collected(&self, r: &SnapshotResult) {
        if self.json {
            let line = serde_json::json!({ "server": r.server, "snap_id": r.snap_id, "collected_at": r.values.collected_at });
            println!("{line}");
            return;
        }
        println!(
            "{} {} snap_id {}",
            r.values.collected_at.format("%Y-%m-%d %H:%M:%S"),
            r.server,
            r.snap_id
        );
    }

    /// A failed snapshot while collecting: reported, and collection goes on.
    pub fn collect_failed(&self, server: &str, err: &Error) {
        if self.json {
            let line = serde_json::json!({ "server": server, "error": err });
            eprintln!("{line}");
            return;
        }
        eprintln!("error: {server}: {}", err.message);
        if let Some(hint) = &err.hint {
            eprintln!("hint: {hint}");
        }
    }

    pub fn pruned(&self, r: &PruneResult) {
        if self.json {
            return self.print_json(r);
        }
        println!(
            "deleted {} snapshots taken before {}",
            r.deleted_snapshots,
            r.cutoff.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }

    pub fn metrics_report(&self, r: &MetricsReport) {
        if self.json {
            return self.print_json(r);
        }
        println!("server:      {}", r.server);
        let st = &r.status;
        match (&st.last_error, st.last_success_at) {
            (Some(e), _) => {
                println!(
                    "collection:  FAILING ({} attempts in a row): {}",
                    st.consecutive_failures, e.message
                );
                if let Some(h) = &e.hint {
                    println!("             hint: {h}");
                }
            }
            (None, Some(t)) => println!("collection:  ok, last snapshot {}", fmt_time(t)),
            (None, None) => println!("collection:  no snapshot yet"),
        }
        let (Some(v), Some(id)) = (&r.latest, r.latest_snap_id) else {
            println!(
                "\nno snapshot of this server yet: `pganalytics metrics snapshot --server {}`",
                r.server
            );
            return;
        };
        println!(
            "snapshot:    {id} at {} (PostgreSQL {}, {})",
            fmt_time(v.collected_at),
            pganalytics_core::server::format_version_num(v.server_version_num),
            if v.in_recovery { "standby" } else { "primary" }
        );
        println!(
            "window:      since {} ({} snapshots)",
            fmt_time(r.since),
            r.snapshots_in_window
        );
        println!();
        print_counters(v, r);
        print_archiver(v);
        print_replication(v);
        if !r.advice.is_empty() {
            println!();
            println!("ADVICE");
            for a in &r.advice {
                let sev = match a.severity {
                    AdviceSeverity::Info => "info",
                    AdviceSeverity::Warning => "warning",
                    AdviceSeverity::Critical => "CRITICAL",
                };
                println!("[{sev}] {}: {}", a.topic, a.finding);
                println!("    → {}", a.action);
            }
        }
    }
}

fn fmt_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "-".into())
}

/// Cumulative values with their rate over the window (`-`: none in this version or no valid
/// pair of snapshots).
fn print_counters(v: &SnapshotValues, r: &MetricsReport) {
    let b = &v.bgwriter;
    let mut values: Vec<(&str, String)> = vec![
        ("checkpoints_timed", opt(&b.checkpoints_timed)),
        ("checkpoints_req", opt(&b.checkpoints_req)),
        ("checkpoints_done", opt(&b.checkpoints_done)),
        ("checkpoint_write_time", opt(&b.checkpoint_write_time)),
        ("checkpoint_sync_time", opt(&b.checkpoint_sync_time)),
        ("buffers_checkpoint", opt(&b.buffers_checkpoint)),
        ("buffers_clean", opt(&b.buffers_clean)),
        ("maxwritten_clean", opt(&b.maxwritten_clean)),
        ("buffers_backend", opt(&b.buffers_backend)),
        ("buffers_backend_fsync", opt(&b.buffers_backend_fsync)),
        ("buffers_alloc", opt(&b.buffers_alloc)),
        ("archived_count", opt(&v.archiver.archived_count)),
        ("failed_count", opt(&v.archiver.failed_count)),
    ];
    if let Some(w) = &v.wal {
        values.push(("wal_records", opt(&w.wal_records)));
        values.push(("wal_fpi", opt(&w.wal_fpi)));
        values.push(("wal_bytes", opt(&w.wal_bytes)));
        values.push(("wal_buffers_full", opt(&w.wal_buffers_full)));
    }
    let rows: Vec<Vec<String>> = values
        .into_iter()
        .map(|(name, value)| {
            let rate = r.rates.iter().find(|x| x.metric == name);
            let per_s = rate
                .and_then(|x| x.per_second)
                .map(|p| format!("{p:.3}"))
                .unwrap_or_else(|| "-".into());
            let delta = rate
                .and_then(|x| x.delta)
                .map(|d| format!("{d:.0}"))
                .unwrap_or_else(|| "-".into());
            vec![name.to_string(), value, delta, per_s]
        })
        .collect();
    print_table(&["METRIC", "VALUE", "IN WINDOW", "PER SECOND"], &rows);
    let skipped: usize = r.rates.iter().map(|x| x.skipped.len()).max().unwrap_or(0);
    if skipped > 0 {
        println!("({skipped} pairs of snapshots left out of rates: statistics reset or restart)");
    }
}

fn print_archiver(v: &SnapshotValues) {
    let a = &v.archiver;
    println!();
    if v.settings.get("archive_mode").map(String::as_str) == Some("off") {
        println!("archiver:    archive_mode is off");
        return;
    }
    println!(
        "archiver:    last archived {} at {}; last failed {} at {}",
        a.last_archived_wal.as_deref().unwrap_or("-"),
        a.last_archived_time
            .map(fmt_time)
            .unwrap_or_else(|| "-".into()),
        a.last_failed_wal.as_deref().unwrap_or("-"),
        a.last_failed_time
            .map(fmt_time)
            .unwrap_or_else(|| "-".into()),
    );
    println!(
        "             lag {} segments ({} bytes), rate {} files/s",
        opt(&a.archive_lag_segments),
        opt(&a.archive_lag_bytes),
        a.archive_rate
            .map(|r| format!("{r:.3}"))
            .unwrap_or_else(|| "-".into())
    );
}

fn print_replication(v: &SnapshotValues) {
    if !v.replication.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = v
            .replication
            .iter()
            .map(|s| {
                vec![
                    s.application_name.clone().unwrap_or_default(),
                    s.client_addr.clone().unwrap_or_else(|| "(socket)".into()),
                    opt(&s.state),
                    opt(&s.sync_state),
                    opt(&s.wal_replay_lsn),
                    opt(&s.lag_bytes),
                    s.replay_lag
                        .map(|x| format!("{x:.3}s"))
                        .unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        print_table(
            &[
                "STANDBY",
                "ADDRESS",
                "STATE",
                "SYNC",
                "REPLAY LSN",
                "LAG BYTES",
                "REPLAY LAG",
            ],
            &rows,
        );
    }
    if let Some(w) = &v.wal_receiver {
        println!();
        println!(
            "wal receiver: {} from {}:{}, flushed {}, replayed {} ({} bytes behind)",
            opt(&w.status),
            opt(&w.sender_host),
            opt(&w.sender_port),
            opt(&w.flushed_lsn),
            opt(&w.replay_lsn),
            opt(&w.replay_lag_bytes)
        );
    }
    if !v.slots.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = v
            .slots
            .iter()
            .map(|s| {
                vec![
                    s.slot_name.clone(),
                    opt(&s.slot_type),
                    s.active.map(yes_no).unwrap_or("-").to_string(),
                    opt(&s.wal_status),
                    opt(&s.retained_bytes),
                ]
            })
            .collect();
        print_table(
            &["SLOT", "TYPE", "ACTIVE", "WAL STATUS", "RETAINED BYTES"],
            &rows,
        );
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
