//! `pganalytics backup …`: each subcommand parses its arguments, calls one `Api` function and
//! prints the result (text, or JSON with `--json`). `backup run` and `backup restore` draw a
//! live progress line on stderr when it is a terminal; `backup verify` exits 3 when the backup
//! is not intact, naming the first damaged object.

use crate::cli::{BackupCommand, BackupRunArgs};
use crate::output::{fmt_time, opt, print_table, yes_no, Output};
use pganalytics_core::api::{
    Api, BackupDetail, BackupId, BackupImportRequest, BackupImportResult, BackupKeyInfo,
    BackupKeyStatus, BackupKeygenRequest, BackupListRequest, BackupProblem, BackupPruneRequest,
    BackupPruneResult, BackupRestoreRequest, BackupRunRequest, BackupSummary, BackupVerification,
    BackupVerifyRequest, CompressOn, Empty, RestoreSummary,
};
use pganalytics_core::backup::engine::Progress;
use pganalytics_core::{Error, ErrorCode};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub async fn dispatch(api: &Api, command: BackupCommand, out: &Output) -> Result<(), Error> {
    match command {
        BackupCommand::Keygen { key_file, replace } => out.backup_key(
            &api.backup_keygen(BackupKeygenRequest {
                key_file: key_file.map(|f| absolute("--key-file", f)).transpose()?,
                replace: replace.then_some(true),
            })
            .await?,
        ),
        BackupCommand::Key => {
            let status = api.backup_key_status(Empty {}).await?;
            out.backup_key_status(&status);
            unopenable(&status)?;
        }
        BackupCommand::Run(args) => {
            let line = ProgressLine::new("backup");
            let result = api
                .backup_run_with(run_request(args), &line.progress())
                .await;
            line.finish();
            out.backup_done(&result?);
        }
        BackupCommand::List { server, all } => out.backup_list(
            &api.backup_list(BackupListRequest {
                server,
                include_deleted: all.then_some(true),
            })
            .await?,
        ),
        BackupCommand::Show { id } => out.backup_detail(&api.backup_show(BackupId { id }).await?),
        BackupCommand::Verify { id, restore_test } => {
            let line = ProgressLine::new("verify");
            let result = api
                .backup_verify_with(
                    BackupVerifyRequest {
                        id,
                        restore_test: restore_test.then_some(true),
                    },
                    &line.progress(),
                )
                .await;
            line.finish();
            let report = result?;
            out.backup_verification(&report);
            damaged(&report)?;
        }
        BackupCommand::Restore {
            id,
            target_dir,
            start,
            port,
        } => {
            let line = ProgressLine::new("restore");
            let result = api
                .backup_restore_with(
                    BackupRestoreRequest {
                        id,
                        target_dir: absolute("--target-dir", target_dir)?,
                        start: start.then_some(true),
                        port,
                    },
                    &line.progress(),
                )
                .await;
            line.finish();
            out.backup_restored(&result?);
        }
        BackupCommand::Import {
            storage,
            server,
            retention_days,
            public_key,
        } => {
            let result = api
                .backup_import(BackupImportRequest {
                    storage,
                    server,
                    retention_days,
                    public_key: public_key
                        .map(|f| absolute("--public-key", f))
                        .transpose()?,
                })
                .await?;
            out.backup_import(&result);
            refused(&result)?;
        }
        BackupCommand::Prune {
            server,
            keep_full,
            keep_days,
            dry_run,
        } => out.backups_pruned(
            &api.backup_prune(BackupPruneRequest {
                server,
                keep_full,
                keep_days,
                dry_run: Some(dry_run),
                only: None,
            })
            .await?,
        ),
    }
    Ok(())
}

fn run_request(a: BackupRunArgs) -> BackupRunRequest {
    BackupRunRequest {
        server: a.server,
        storage: a.storage,
        compress: a.compress,
        encrypt: a.encrypt.then_some(true),
        retention_days: a.retention_days,
        spread_checkpoint: a.spread_checkpoint.then_some(true),
        compress_on: a.compress_on.as_deref().map(|on| match on {
            "server" => CompressOn::Server,
            "client" => CompressOn::Client,
            _ => CompressOn::Auto,
        }),
    }
}

/// A path given on the command line, relative to the current folder (the core takes absolute
/// paths only: the daemon has no meaningful current folder).
fn absolute(option: &str, path: String) -> Result<String, Error> {
    std::path::absolute(&path)
        .map(|p| p.display().to_string())
        .map_err(|e| Error::invalid_input(format!("{option} `{path}`: {e}")))
}

/// Exit 3 when a catalogue or a verification record in the store could not be trusted.
fn refused(result: &BackupImportResult) -> Result<(), Error> {
    let Some(first) = result.refused.first() else {
        return Ok(());
    };
    Err(Error::new(
        ErrorCode::VerificationFailed,
        format!(
            "{} object{} in the store refused; the first: backup {}: {}: {}",
            result.refused.len(),
            if result.refused.len() == 1 { " was" } else { "s were" },
            first.backup_id,
            first.object,
            first.problem
        ),
    )
    .with_hint("nothing that does not verify with the public key is imported (a catalogue, or a verification record): check --public-key, or `backup verify` the backup on the installation that made it"))
}

/// Exit 3 when encrypted backups on record need a key that is not here.
fn unopenable(status: &BackupKeyStatus) -> Result<(), Error> {
    let others: i64 = status.need_other_keys.iter().map(|u| u.backups).sum();
    if others == 0 {
        return Ok(());
    }
    let keys: Vec<&str> = status
        .need_other_keys
        .iter()
        .map(|u| u.fingerprint.as_str())
        .collect();
    Err(Error::new(
        ErrorCode::VerificationFailed,
        format!(
            "{others} encrypted backup{} cannot be opened with the key here: {} key{} {}",
            if others == 1 { "" } else { "s" },
            if others == 1 { "it needs" } else { "they need" },
            if keys.len() == 1 { "" } else { "s" },
            keys.join(", ")
        ),
    )
    .with_hint(status.hint.clone().unwrap_or_else(|| {
        "keep every key that made a backup you may restore: put the old key file back, or a copy of its keyring entry".into()
    })))
}

pub fn damaged(report: &BackupVerification) -> Result<(), Error> {
    if report.intact {
        return Ok(());
    }
    let Some(first) = report.problems.first() else {
        return Err(Error::new(
            ErrorCode::VerificationFailed,
            format!("backup {} is not intact", report.backup_id),
        ));
    };
    let more = match report.problems.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    let message = format!(
        "backup {} is not intact: {}: {}{}{more}",
        report.backup_id,
        first.object,
        describe(&first.problem),
        if first.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", first.detail)
        },
    );
    let hint = match first.problem.as_str() {
        "missing" => {
            "the backup lacks an object it needs: put it back from a copy of the storage target \
             if there is one, or take a new backup with `pganalytics backup run`"
        }
        "authentication_failed" => {
            "the object was changed after it was written, or the backup key is not the one that \
             encrypted it (`pganalytics backup show ID` names that key's fingerprint)"
        }
        "catalogue_signature_invalid" => {
            "the catalogue is not signed by this installation's signing key: it was replaced, or \
             the key changed since the backup (`pganalytics audit status` shows the key)"
        }
        "catalogue_changed" => {
            "the stored catalogue differs from what the repository recorded: someone rewrote the \
             backup's objects; take a new backup and keep this one for inspection"
        }
        _ => {
            "the stored object was changed after the backup was written; do not restore from this \
             backup: take a new one with `pganalytics backup run` and keep this one for inspection"
        }
    };
    Err(Error::new(ErrorCode::VerificationFailed, message).with_hint(hint))
}

/// Words for the problem codes of [`BackupProblem`].
fn describe(problem: &str) -> &str {
    match problem {
        "missing" => "missing",
        "size_mismatch" => "size differs from the catalogue",
        "checksum_mismatch" => "content changed (SHA-256 differs from the catalogue)",
        "authentication_failed" => "does not decrypt (changed, or another key)",
        "undecodable" => "cannot be decompressed",
        "manifest_mismatch" => "differs from the server's backup_manifest",
        "catalogue_signature_invalid" => "catalogue signature invalid",
        "catalogue_changed" => "catalogue changed",
        other => other,
    }
}

/// The live progress line on stderr, drawn only when stderr is a terminal and at most five
/// times a second: bytes done, the server's estimate of the total, rate and time left.
struct ProgressLine {
    state: Option<Arc<Mutex<LineState>>>,
}

struct LineState {
    verb: &'static str,
    started: Instant,
    last_drawn: Option<Instant>,
}

const REDRAW: Duration = Duration::from_millis(200);

impl ProgressLine {
    fn new(verb: &'static str) -> ProgressLine {
        let state = std::io::stderr().is_terminal().then(|| {
            Arc::new(Mutex::new(LineState {
                verb,
                started: Instant::now(),
                last_drawn: None,
            }))
        });
        ProgressLine { state }
    }

    fn progress(&self) -> Progress {
        let Some(state) = self.state.clone() else {
            return Progress::none();
        };
        Progress::new(move |done, total| {
            let Ok(mut s) = state.lock() else { return };
            let now = Instant::now();
            if s.last_drawn.is_some_and(|t| now.duration_since(t) < REDRAW) {
                return;
            }
            s.last_drawn = Some(now);
            let line = progress_text(s.verb, done, total, now.duration_since(s.started));
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{line}\x1b[K");
            let _ = err.flush();
        })
    }

    /// Clear the line (the result follows on stdout, errors on stderr).
    fn finish(&self) {
        let Some(state) = &self.state else { return };
        let drawn = state.lock().map(|s| s.last_drawn.is_some()).unwrap_or(true);
        if drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

/// `backup  1.24 GB of ~3.40 GB (36 %)  85.3 MB/s  ETA 25s`; without an estimate, bytes and
/// rate only.
fn progress_text(verb: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = (secs >= 0.5).then(|| done as f64 / secs);
    let mut text = format!("{verb}  {}", bytes(done));
    if let Some(total) = total.filter(|t| *t > 0) {
        let pct = (done as f64 * 100.0 / total as f64).min(100.0);
        text.push_str(&format!(" of ~{} ({pct:.0} %)", bytes(total)));
    }
    if let Some(rate) = rate {
        text.push_str(&format!("  {:.1} MB/s", rate / 1e6));
        if let Some(total) = total.filter(|t| *t > 0) {
            if rate > 0.0 {
                let left = total.saturating_sub(done) as f64 / rate;
                text.push_str(&format!("  ETA {}", duration(left)));
            }
        }
    }
    text
}

/// Decimal units, like the rate (MB/s).
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

fn opt_bytes(n: Option<i64>) -> String {
    n.map(|n| bytes(n.max(0) as u64))
        .unwrap_or_else(|| "-".into())
}

/// `42s`, `3m05s`, `1h02m`.
fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn opt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(fmt_time).unwrap_or_else(|| "-".into())
}

/// Printing of the backup commands, with `Output`'s conventions (aligned text, or JSON).
impl Output {
    fn backup_import(&self, r: &BackupImportResult) {
        if self.json {
            return self.print_json(r);
        }
        println!(
            "imported {} backup(s); {} already on record; {} refused",
            r.imported.len(),
            r.already_recorded,
            r.refused.len()
        );
        if r.imported.is_empty() && r.already_recorded == 0 && r.refused.is_empty() {
            eprintln!(
                "hint: no backup catalogue in this target; check its URL and prefix (`pganalytics storage list`)"
            );
        }
        if !r.imported.is_empty() {
            self.backup_list(&r.imported);
        }
        for p in &r.refused {
            println!("refused {}: {}: {}", p.backup_id, p.object, p.problem);
        }
    }

    fn backup_key_status(&self, s: &BackupKeyStatus) {
        if self.json {
            return self.print_json(s);
        }
        match (&s.key, &s.problem) {
            (Some(k), _) => {
                println!("location:        {}", k.location);
                println!("fingerprint:     {}", k.fingerprint);
            }
            (None, problem) => {
                println!("key:             none usable");
                println!("problem:         {}", problem.as_deref().unwrap_or("-"));
            }
        }
        println!("opens:           {} encrypted backup(s)", s.opens);
        for u in &s.need_other_keys {
            println!(
                "needs key {}: {} backup(s), newest {}",
                u.fingerprint,
                u.backups,
                opt_time(u.newest)
            );
        }
    }

    fn backup_key(&self, k: &BackupKeyInfo) {
        if self.json {
            return self.print_json(k);
        }
        println!("backup key created");
        println!("location:        {}", k.location);
        println!("fingerprint:     {}", k.fingerprint);
    }

    /// `backup run`: the id alone on stdout (scripts read it), a summary on stderr.
    fn backup_done(&self, b: &BackupSummary) {
        if self.json {
            return self.print_json(b);
        }
        println!("{}", b.id);
        let ratio = b
            .compression_ratio
            .map(|r| format!(", ratio {r:.2} ({})", compression(b)))
            .unwrap_or_default();
        eprintln!(
            "backup {} of {} completed: {} read, {} stored{ratio}{}, in {}",
            b.name,
            b.server.as_deref().unwrap_or("-"),
            opt_bytes(b.source_size_bytes),
            opt_bytes(b.stored_size_bytes),
            if b.encrypted { ", encrypted" } else { "" },
            b.duration_seconds
                .map(duration)
                .unwrap_or_else(|| "-".into()),
        );
    }

    fn backup_list(&self, list: &[BackupSummary]) {
        if self.json {
            return self.print_json(list);
        }
        if list.is_empty() {
            println!(
                "no backups; take one with `pganalytics backup run --server NAME --storage NAME`"
            );
            return;
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|b| {
                vec![
                    b.id.to_string(),
                    b.server.clone().unwrap_or_else(|| "-".into()),
                    b.storage.clone().unwrap_or_else(|| "-".into()),
                    b.status.as_str().into(),
                    opt_time(b.completed_at.or(b.started_at)),
                    opt_bytes(b.source_size_bytes),
                    opt_bytes(b.stored_size_bytes),
                    b.compression.clone().unwrap_or_else(|| "-".into()),
                    yes_no(b.encrypted).into(),
                    yes_no(b.verified).into(),
                ]
            })
            .collect();
        print_table(
            &[
                "ID",
                "SERVER",
                "STORAGE",
                "STATUS",
                "TIME",
                "SIZE",
                "STORED",
                "COMPRESSION",
                "ENCRYPTED",
                "VERIFIED",
            ],
            &rows,
        );
    }

    fn backup_detail(&self, d: &BackupDetail) {
        if self.json {
            return self.print_json(d);
        }
        let b = &d.backup;
        println!("id:              {}", b.id);
        println!("name:            {}", b.name);
        println!("type:            {}", b.backup_type);
        println!("status:          {}", b.status.as_str());
        if let Some(reason) = &b.failure_reason {
            println!("failure:         {reason}");
        }
        println!("server:          {}", opt(&b.server));
        println!(
            "storage:         {} ({})",
            opt(&b.storage),
            opt(&b.destination)
        );
        println!("started:         {}", opt_time(b.started_at));
        println!(
            "completed:       {}{}",
            opt_time(b.completed_at),
            b.duration_seconds
                .map(|s| format!(" (took {})", duration(s)))
                .unwrap_or_default()
        );
        println!(
            "size:            {} read, {} stored{}",
            opt_bytes(b.source_size_bytes),
            opt_bytes(b.stored_size_bytes),
            b.compression_ratio
                .map(|r| format!(", ratio {r:.2}"))
                .unwrap_or_default()
        );
        println!("compression:     {}", compression(b));
        println!(
            "encrypted:       {}",
            if b.encrypted {
                format!("yes, key {}", opt(&d.key_fingerprint))
            } else {
                "no".into()
            }
        );
        println!("signed by:       {}", opt(&d.signed_by));
        println!("checksum:        {}", opt(&b.checksum));
        println!(
            "verified:        {}",
            match (b.verified, b.verified_at) {
                (true, Some(t)) => format!("yes, {}", fmt_time(t)),
                (true, None) => "yes".into(),
                (false, _) => "no".into(),
            }
        );
        if let Some(rto) = b.rto_seconds {
            println!("restore test:    {}", duration(f64::from(rto)));
        }
        println!(
            "lsn:             {} to {}, timeline {}",
            opt(&b.start_lsn),
            opt(&b.stop_lsn),
            opt(&b.timeline)
        );
        println!(
            "wal:             {} to {}",
            opt(&d.wal_start_segment),
            opt(&d.wal_stop_segment)
        );
        println!(
            "postgresql:      {}, system {}",
            b.server_version_num
                .map(pganalytics_core::server::format_version_num)
                .unwrap_or_else(|| "-".into()),
            opt(&b.system_identifier)
        );
        println!("retention:       {} days", b.retention_days);
        if !d.archives.is_empty() {
            println!();
            let rows: Vec<Vec<String>> = d
                .archives
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        opt(&a.tablespace_oid),
                        opt(&a.location),
                        bytes(a.raw_bytes),
                        bytes(a.stored_bytes),
                        a.objects.to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "ARCHIVE",
                    "TABLESPACE",
                    "LOCATION",
                    "SIZE",
                    "STORED",
                    "OBJECTS",
                ],
                &rows,
            );
        }
        if !d.restores.is_empty() {
            println!();
            let rows: Vec<Vec<String>> = d.restores.iter().map(restore_row).collect();
            print_table(
                &["RESTORE", "STARTED", "STATUS", "TARGET", "TOOK", "PORT"],
                &rows,
            );
        }
    }

    fn backup_verification(&self, v: &BackupVerification) {
        if self.json {
            return self.print_json(v);
        }
        println!("backup:          {}", v.backup_id);
        println!("intact:          {}", if v.intact { "yes" } else { "NO" });
        println!(
            "objects checked: {} ({}) in {:.3} s",
            v.objects_checked,
            bytes(v.bytes_checked),
            v.seconds
        );
        println!("manifest files:  {} checked", v.manifest_files_checked);
        if let Some(s) = v.restore_test_seconds {
            println!("restore test:    restored, started and read in {s:.1} s");
        }
        if !v.problems.is_empty() {
            println!();
            let rows: Vec<Vec<String>> = v.problems.iter().map(problem_row).collect();
            print_table(&["OBJECT", "PROBLEM", "DETAIL"], &rows);
        }
    }

    fn backup_restored(&self, r: &RestoreSummary) {
        if self.json {
            return self.print_json(r);
        }
        println!(
            "restored backup {} into {} ({} in {})",
            r.backup_id,
            opt(&r.target_dir),
            bytes(r.bytes_restored),
            r.duration_seconds
                .map(duration)
                .unwrap_or_else(|| "-".into())
        );
        for dir in &r.tablespace_dirs {
            println!("tablespace:      {dir}");
        }
        if let Some(port) = r.started_port {
            println!("started:         the restored server listens on port {port}");
        }
    }

    fn backups_pruned(&self, r: &BackupPruneResult) {
        if self.json {
            return self.print_json(r);
        }
        if r.removed.is_empty() {
            println!("no backup to remove ({} kept)", completed(r.kept));
            return;
        }
        println!(
            "{} {} ({} kept)",
            if r.dry_run { "would remove" } else { "removed" },
            count(r.removed.len(), "backup", "backups"),
            completed(r.kept)
        );
        let rows: Vec<Vec<String>> = r
            .removed
            .iter()
            .map(|p| {
                let mut row = vec![
                    p.id.to_string(),
                    p.status.as_str().into(),
                    opt_time(p.completed_at),
                    p.reason.clone(),
                ];
                if !r.dry_run {
                    row.push(p.objects_removed.to_string());
                }
                row
            })
            .collect();
        let mut header = vec!["ID", "STATUS", "COMPLETED", "REASON"];
        if !r.dry_run {
            header.push("OBJECTS REMOVED");
        }
        print_table(&header, &rows);
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn completed(n: usize) -> String {
    count(n, "completed backup", "completed backups")
}

fn restore_row(r: &RestoreSummary) -> Vec<String> {
    vec![
        r.id.to_string(),
        fmt_time(r.started_at),
        r.status.clone(),
        opt(&r.target_dir),
        r.duration_seconds
            .map(duration)
            .unwrap_or_else(|| "-".into()),
        opt(&r.started_port),
    ]
}

fn problem_row(p: &BackupProblem) -> Vec<String> {
    vec![
        p.object.clone(),
        describe(&p.problem).to_string(),
        p.detail.clone(),
    ]
}

/// `zstd:1 by the server`, `zstd:1 by pgAnalytics`, `none`.
fn compression(b: &BackupSummary) -> String {
    let by = match b.compressed_on {
        Some(CompressOn::Server) => " by the server",
        Some(CompressOn::Client) => " by pgAnalytics",
        _ => "",
    };
    format!("{}{by}", opt(&b.compression))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_bytes_estimate_rate_and_eta() {
        let text = progress_text(
            "backup",
            1_240_000_000,
            Some(3_400_000_000),
            Duration::from_secs(10),
        );
        assert_eq!(
            text,
            "backup  1.24 GB of ~3.40 GB (36 %)  124.0 MB/s  ETA 17s"
        );
        // No estimate: bytes and rate only; too early for a rate: bytes only.
        assert_eq!(
            progress_text("restore", 5_000_000, None, Duration::from_secs(2)),
            "restore  5.00 MB  2.5 MB/s"
        );
        assert_eq!(
            progress_text("backup", 512, Some(0), Duration::from_millis(100)),
            "backup  512 B"
        );
        // The server's estimate can be short of the truth: never past 100 %, no negative ETA.
        assert_eq!(
            progress_text("backup", 2_000_000, Some(1_000_000), Duration::from_secs(1)),
            "backup  2.00 MB of ~1.00 MB (100 %)  2.0 MB/s  ETA 0s"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0.2), "0s");
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(3720.0), "1h02m");
    }

    #[test]
    fn damage_names_the_first_object_and_exits_3() {
        let id = uuid::Uuid::nil();
        let mut report = BackupVerification {
            backup_id: id,
            intact: true,
            objects_checked: 3,
            bytes_checked: 100,
            manifest_files_checked: 0,
            problems: vec![],
            restore_test_seconds: None,
            seconds: 0.1,
        };
        assert!(damaged(&report).is_ok());
        report.intact = false;
        report.problems = vec![
            BackupProblem {
                object: "123/backups/x/data/base/00000001".into(),
                problem: "checksum_mismatch".into(),
                detail: "sha256 ab… expected cd…".into(),
            },
            BackupProblem {
                object: "123/backups/x/data/base/00000002".into(),
                problem: "missing".into(),
                detail: String::new(),
            },
        ];
        let err = damaged(&report).unwrap_err();
        assert_eq!(err.code.exit_status(), 3);
        assert!(
            err.message.contains("data/base/00000001: content changed"),
            "{}",
            err.message
        );
        assert!(err.message.contains("(and 1 more)"), "{}", err.message);
        assert!(err.hint.is_some());
    }
}
