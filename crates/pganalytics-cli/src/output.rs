//! Printing results: aligned text for people, JSON (`--json`) for programs. Errors go to
//! stderr as `error: …` plus `hint: …`, or as a JSON object with `--json`.

use pganalytics_core::api::{
    CreatedToken, RepoStatus, RepositoryKind, ServerCheck, ServerSummary, TokenSummary,
};
use pganalytics_core::Error;
use serde::Serialize;

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
