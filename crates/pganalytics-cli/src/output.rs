//! Printing results: aligned text for people, JSON (`--json`) for programs. Errors go to
//! stderr as `error: …` plus `hint: …`, or as a JSON object with `--json`.

use pganalytics_core::api::{
    AdviceSeverity, AuditCheckpointInfo, AuditErased, AuditEvent, AuditKeyInfo, AuditLogged,
    AuditPage, AuditProof, AuditRetentionPolicy, AuditRetentionResult, AuditStatus,
    AuditVerification, CreatedToken, MetricsReport, PruneResult, RepoStatus, RepositoryKind,
    ServerCheck, ServerSummary, SnapshotResult, SnapshotValues, StorageCheck, StorageTarget,
    TokenSummary,
};
use pganalytics_core::Error;
use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    pub(crate) fn print_json<T: Serialize + ?Sized>(&self, value: &T) {
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

    pub fn storage_added(&self, t: &StorageTarget) {
        if self.json {
            return self.print_json(t);
        }
        println!("added storage target {} ({})", t.name, t.url);
        if t.secret_in_keyring {
            println!("its credentials are stored in the OS keyring");
        }
    }

    pub fn storage_removed(&self, t: &StorageTarget) {
        if self.json {
            return self.print_json(t);
        }
        println!(
            "removed storage target {} (its objects stay at {})",
            t.name, t.url
        );
    }

    pub fn storage_targets(&self, list: &[StorageTarget]) {
        if self.json {
            return self.print_json(&list);
        }
        if list.is_empty() {
            println!(
                "no storage targets registered; add one with `pganalytics storage add NAME --url URL`"
            );
            return;
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|t| {
                let mut options = Vec::new();
                if let Some(e) = &t.options.endpoint {
                    options.push(format!("endpoint={e}"));
                }
                if let Some(r) = &t.options.region {
                    options.push(format!("region={r}"));
                }
                if let Some(a) = &t.options.account {
                    options.push(format!("account={a}"));
                }
                if t.options.anonymous == Some(true) {
                    options.push("anonymous".into());
                }
                vec![
                    t.name.clone(),
                    t.kind.as_str().into(),
                    t.url.clone(),
                    if options.is_empty() {
                        "-".into()
                    } else {
                        options.join(" ")
                    },
                    if t.secret_in_keyring {
                        "keyring"
                    } else if t.kind.as_str() == "file" || t.options.anonymous == Some(true) {
                        "-"
                    } else {
                        "environment"
                    }
                    .into(),
                    t.created_at.format("%Y-%m-%d %H:%M").to_string(),
                ]
            })
            .collect();
        print_table(
            &["NAME", "KIND", "URL", "OPTIONS", "CREDENTIALS", "ADDED"],
            &rows,
        );
    }

    pub fn storage_check(&self, c: &StorageCheck) {
        if self.json {
            return self.print_json(c);
        }
        println!("storage target:  {} ({})", c.name, c.url);
        println!("credentials:     {}", c.credentials);
        println!("probe object:    {}", c.probe);
        let rows: Vec<Vec<String>> = c
            .steps
            .iter()
            .map(|s| vec![s.step.clone(), "ok".into(), format!("{} ms", s.millis)])
            .collect();
        print_table(&["STEP", "RESULT", "TIME"], &rows);
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

/// The audit log.
impl Output {
    /// `audit log`: the new event's id alone (scripts read it).
    pub fn audit_logged(&self, r: &AuditLogged) {
        if self.json {
            return self.print_json(r);
        }
        println!("{}", r.id);
    }

    pub fn audit_page(&self, page: &AuditPage) {
        if self.json {
            return self.print_json(page);
        }
        if page.events.is_empty() {
            println!("no audit events match ({} in total)", page.total);
            return;
        }
        print_events(&page.events);
        let first = page.offset + 1;
        let last = page.offset + page.events.len() as i64;
        if first > 1 || last < page.total {
            let next = if last < page.total {
                format!("; next page: --offset {last}")
            } else {
                String::new()
            };
            println!(
                "(events {first}–{last} of {}, newest first{next})",
                page.total
            );
        }
    }

    pub fn audit_activity(&self, actor: &str, events: &[AuditEvent]) {
        if self.json {
            return self.print_json(&events);
        }
        if events.is_empty() {
            println!("no events of `{actor}` in this window");
            return;
        }
        print_events(events);
    }

    pub fn audit_event(&self, e: &AuditEvent) {
        if self.json {
            return self.print_json(e);
        }
        println!("id:              {}", e.id);
        println!("event id:        {}", e.event_id);
        println!("time:            {}", fmt_time(e.created_at));
        println!("event:           {}", e.event_type);
        println!("action:          {}", e.action);
        println!("outcome:         {}", e.outcome.as_str());
        println!("resource:        {}", resource(e));
        println!("source:          {}", e.source);
        println!(
            "actor:           {} ({}, {})",
            if e.actor_name.is_empty() {
                "-"
            } else {
                &e.actor_name
            },
            e.actor_kind,
            e.actor_id
        );
        if let Some(s) = e.subject_id {
            println!("subject:         {s}");
        }
        println!("ip address:      {}", opt(&e.ip_address));
        println!("user agent:      {}", opt(&e.user_agent));
        println!("details:         {}", e.changes);
        println!("before:          {}", json_or_dash(&e.old_values));
        println!("after:           {}", json_or_dash(&e.new_values));
        if e.personal_details.is_some() {
            println!("personal:        {}", json_or_dash(&e.personal_details));
        }
        if e.personal_erased {
            println!("personal data:   erased (GDPR); the event still verifies");
        }
        println!("content hash:    {}", e.content_hash);
        println!("previous hash:   {}", opt(&e.previous_hash));
    }

    pub fn audit_verification(&self, r: &AuditVerification) {
        if self.json {
            return self.print_json(r);
        }
        if r.intact {
            println!("intact:          yes");
        } else {
            println!("intact:          NO");
            let problem = r.problem.map_or("-", |p| p.describe());
            match r.first_bad_id {
                Some(id) => println!("first bad event: {id}: {problem}"),
                None => println!("problem:         {problem}"),
            }
            if let Some(d) = &r.detail {
                println!("detail:          {d}");
            }
        }
        if r.events_checked > 0 || r.checked_to > 0 {
            println!(
                "checked:         events {}..{}",
                r.checked_from, r.checked_to
            );
        }
        println!(
            "events checked:  {} in {:.3} s ({:.0} events/s)",
            r.events_checked, r.seconds, r.events_per_second
        );
        match &r.checkpoint {
            Some(c) => {
                println!(
                    "checkpoint:      {} events, root {}",
                    c.tree_size, c.root_hash
                );
                println!(
                    "                 signed {} with {} key {}",
                    fmt_time(c.signed_at),
                    c.algorithm,
                    c.key_fingerprint
                );
            }
            None => println!("checkpoint:      none"),
        }
        if r.unsealed_events > 0 {
            println!(
                "unsealed:        {} newest events (chain checked only)",
                r.unsealed_events
            );
        }
        for w in &r.warnings {
            println!("warning: {w}");
        }
    }

    pub fn audit_proof(&self, p: &AuditProof) {
        if self.json {
            return self.print_json(p);
        }
        println!("event:           {}", p.id);
        println!("content hash:    {}", p.content_hash);
        println!("leaf index:      {}", p.leaf_index);
        println!("tree size:       {}", p.tree_size);
        println!("root:            {}", p.root_hash);
        println!("verified:        {}", yes_no(p.verified));
        print_checkpoint_lines(&p.checkpoint);
        println!("audit path ({} hashes, bottom up):", p.proof.len());
        for h in &p.proof {
            println!("  {h}");
        }
    }

    pub fn audit_key(&self, k: &AuditKeyInfo) {
        if self.json {
            return self.print_json(k);
        }
        println!("signing key created");
        println!("algorithm:       {}", k.algorithm);
        println!("fingerprint:     {}", k.fingerprint);
        println!("private key:     {}", k.private_key);
        println!("public key:      {}", k.public_key_path);
        println!("checkpoints:     {}", k.checkpoints);
    }

    pub fn audit_public_key(&self, k: &AuditKeyInfo) {
        if self.json {
            return self.print_json(k);
        }
        println!(
            "wrote the {} public key {} to {}",
            k.algorithm, k.fingerprint, k.public_key_path
        );
    }

    pub fn audit_checkpoint(&self, c: &Option<AuditCheckpointInfo>) {
        if self.json {
            return self.print_json(c);
        }
        match c {
            Some(c) => print_checkpoint_lines(c),
            None => println!("the newest checkpoint already covers every event"),
        }
    }

    pub fn audit_status(&self, s: &AuditStatus) {
        if self.json {
            return self.print_json(s);
        }
        println!("log id:          {}", s.log_id);
        println!(
            "events:          {} (last id {})",
            s.events,
            opt(&s.last_id)
        );
        println!(
            "signing key:     {}",
            s.signing_key
                .as_deref()
                .unwrap_or("none (run `pganalytics audit keygen`)")
        );
        println!("checkpoints:     {}", s.checkpoints);
        match &s.newest_checkpoint {
            Some(c) => println!(
                "newest:          {} of {} events, signed {} ({})",
                c.kind,
                c.tree_size,
                fmt_time(c.signed_at),
                c.key_fingerprint
            ),
            None => println!("newest:          no checkpoint yet"),
        }
        println!("unsealed events: {}", s.unsealed_events);
        match &s.retention {
            Some(r) => println!("retention:       {}", retention_summary(r)),
            None => println!("retention:       no policy (events are kept)"),
        }
        println!(
            "repository role: {}",
            if s.restricted_role {
                "pganalytics_app (no UPDATE or DELETE on the log)"
            } else {
                "not restricted: the connection's role may be able to change the log"
            }
        );
    }

    pub fn audit_erased(&self, r: &AuditErased) {
        if self.json {
            return self.print_json(r);
        }
        println!(
            "erased the personal data of actor {} from {} events",
            r.actor_id, r.events_erased
        );
    }

    pub fn audit_retention_policy(&self, p: Option<&AuditRetentionPolicy>) {
        if self.json {
            return self.print_json(&p);
        }
        match p {
            Some(p) => {
                println!("{}", retention_summary(p));
                println!("set {}", fmt_time(p.created_at));
            }
            None => println!(
                "no audit retention policy: events are kept forever; set one with `pganalytics audit retention set --days N`"
            ),
        }
    }

    pub fn audit_retention_applied(&self, r: &AuditRetentionResult) {
        if self.json {
            return self.print_json(r);
        }
        match (r.through_id, r.dry_run) {
            (None, _) => println!("no audit event is older than the retention period"),
            (Some(id), true) => println!(
                "would remove {} events (ids up to {id}) after sealing them",
                r.removed
            ),
            (Some(id), false) => {
                println!("removed {} events (ids up to {id})", r.removed);
                if let Some(seal) = &r.seal {
                    println!(
                        "sealed by a signed {} of {} events, root {}",
                        seal.kind, seal.tree_size, seal.root_hash
                    );
                }
            }
        }
    }
}

fn print_events(events: &[AuditEvent]) {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                if e.actor_name.is_empty() {
                    e.actor_id.to_string()
                } else {
                    e.actor_name.clone()
                },
                e.action.clone(),
                e.event_type.clone(),
                resource(e),
                e.outcome.as_str().to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "ID", "TIME", "ACTOR", "ACTION", "EVENT", "RESOURCE", "OUTCOME",
        ],
        &rows,
    );
}

fn resource(e: &AuditEvent) -> String {
    match &e.resource_id {
        Some(id) => format!("{}/{id}", e.resource_type),
        None => e.resource_type.clone(),
    }
}

fn json_or_dash(v: &Option<serde_json::Value>) -> String {
    v.as_ref()
        .map(|v| v.to_string())
        .unwrap_or_else(|| "-".into())
}

fn print_checkpoint_lines(c: &AuditCheckpointInfo) {
    println!("checkpoint:      {} of {} events", c.kind, c.tree_size);
    println!("  root:          {}", c.root_hash);
    println!("  signed:        {}", fmt_time(c.signed_at));
    println!("  key:           {} {}", c.algorithm, c.key_fingerprint);
}

fn retention_summary(p: &AuditRetentionPolicy) -> String {
    let mut s = format!("keep {} days", p.retention_days);
    if let Some(a) = p.archive_after_days {
        s.push_str(&format!(", archive after {a} days"));
    }
    s.push_str(if p.deletion_allowed {
        ", deletion allowed"
    } else {
        ", deletion not allowed"
    });
    if let Some(f) = &p.compliance_framework {
        s.push_str(&format!(" ({f})"));
    }
    s
}

pub(crate) fn fmt_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub(crate) fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
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

pub(crate) fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Columns aligned to their widest cell; the last column is not padded.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let w = widths.get(i).copied().unwrap_or(0);
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
