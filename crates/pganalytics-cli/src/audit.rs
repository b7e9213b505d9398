//! `pganalytics audit …`: each subcommand parses its arguments, calls one `Api` function and
//! prints the result. `audit verify` exits 3 when the log is not intact; the hidden
//! `audit load` is the writer the kill -9 test interrupts.

use crate::cli::{AuditCommand, AuditLogArgs, AuditLogsArgs, AuditRetentionCommand, Outcome};
use crate::output::Output;
use chrono::{DateTime, Utc};
use pganalytics_core::api::{
    Api, AuditActivityRequest, AuditEraseRequest, AuditEventId, AuditExportKeyRequest,
    AuditKeygenRequest, AuditLogRequest, AuditLogsRequest, AuditOutcome, AuditProblem,
    AuditRetentionApplyRequest, AuditRetentionSetRequest, AuditVerification, AuditVerifyRequest,
    Empty,
};
use pganalytics_core::audit::NewEvent;
use pganalytics_core::{Error, ErrorCode};

pub async fn dispatch(api: &Api, command: AuditCommand, out: &Output) -> Result<(), Error> {
    match command {
        AuditCommand::Log(args) => {
            out.audit_logged(&api.audit_log_event(log_request(args)?).await?)
        }
        AuditCommand::Logs(args) => out.audit_page(&api.audit_logs(logs_request(args)?).await?),
        AuditCommand::Show { id } => out.audit_event(&api.audit_show(AuditEventId { id }).await?),
        AuditCommand::Activity { actor, window } => {
            let now = Utc::now();
            let req = AuditActivityRequest {
                actor,
                since: parse_time_opt(window.since.as_deref(), now)?,
                until: parse_time_opt(window.until.as_deref(), now)?,
            };
            let actor = req.actor.clone();
            out.audit_activity(&actor, &api.audit_activity(req).await?)
        }
        AuditCommand::Verify(args) => {
            let report = api
                .audit_verify(AuditVerifyRequest {
                    from: args.from,
                    to: args.to,
                    public_key: args.public_key,
                    checkpoints: args.checkpoints,
                })
                .await?;
            out.audit_verification(&report);
            damaged(&report)?;
        }
        AuditCommand::Prove { id } => out.audit_proof(&api.audit_prove(AuditEventId { id }).await?),
        AuditCommand::Keygen(args) => out.audit_key(
            &api.audit_keygen(AuditKeygenRequest {
                algorithm: Some(args.algorithm),
                key_file: args.key_file,
                checkpoints: args.checkpoints,
            })
            .await?,
        ),
        AuditCommand::ExportPublicKey { out: path } => out.audit_public_key(
            &api.audit_export_public_key(AuditExportKeyRequest { out: path })
                .await?,
        ),
        AuditCommand::Checkpoint => out.audit_checkpoint(&api.audit_checkpoint(Empty {}).await?),
        AuditCommand::Status => out.audit_status(&api.audit_status(Empty {}).await?),
        AuditCommand::EraseSubject { actor } => {
            out.audit_erased(&api.audit_erase_subject(AuditEraseRequest { actor }).await?)
        }
        AuditCommand::Retention(cmd) => match cmd {
            AuditRetentionCommand::Set {
                days,
                archive_after_days,
                allow_deletion,
                framework,
            } => out.audit_retention_policy(Some(
                &api.audit_retention_set(AuditRetentionSetRequest {
                    retention_days: days,
                    archive_after_days,
                    deletion_allowed: Some(allow_deletion),
                    compliance_framework: framework,
                })
                .await?,
            )),
            AuditRetentionCommand::Show => {
                out.audit_retention_policy(api.audit_status(Empty {}).await?.retention.as_ref())
            }
            AuditRetentionCommand::Apply { dry_run } => out.audit_retention_applied(
                &api.audit_retention_apply(AuditRetentionApplyRequest {
                    dry_run: Some(dry_run),
                })
                .await?,
            ),
        },
        AuditCommand::Load { writers, events } => load(api, writers, events).await?,
    }
    Ok(())
}

/// `audit verify` found damage: the report is printed; the error (exit 3) names the first bad
/// event on stderr.
pub fn damaged(report: &AuditVerification) -> Result<(), Error> {
    if report.intact {
        return Ok(());
    }
    let problem = report.problem.map_or("not intact", |p| p.describe());
    let message = match report.first_bad_id {
        Some(id) => format!("the audit log is not intact: event {id}: {problem}"),
        None => format!("the audit log is not intact: {problem}"),
    };
    let hint = match report.problem {
        Some(AuditProblem::SignatureInvalid) => {
            "the checkpoints are not signed by this public key: check --public-key and --checkpoints, \
             or someone replaced the checkpoints"
        }
        Some(AuditProblem::CheckpointsMissing) => {
            "point --checkpoints at the folder the log signs into (`pganalytics audit status` shows it); \
             a copy that lags behind the database cannot vouch for the newest events"
        }
        _ => {
            "the log was changed outside pgAnalytics; `pganalytics audit show ID` shows the event as \
             stored, the checkpoint above is what it was checked against"
        }
    };
    Err(Error::new(ErrorCode::VerificationFailed, message).with_hint(hint))
}

fn log_request(a: AuditLogArgs) -> Result<AuditLogRequest, Error> {
    Ok(AuditLogRequest {
        actor: a.actor,
        action: a.action,
        resource_type: a.resource_type,
        resource_id: a.resource_id,
        event_type: a.event_type,
        outcome: Some(match a.outcome {
            Outcome::Success => AuditOutcome::Success,
            Outcome::Failure => AuditOutcome::Failure,
            Outcome::Denied => AuditOutcome::Denied,
        }),
        details: parse_json("--details", a.details.as_deref())?,
        old_values: parse_json("--old", a.old.as_deref())?,
        new_values: parse_json("--new", a.new.as_deref())?,
        personal_details: parse_json("--personal", a.personal.as_deref())?,
    })
}

fn parse_json(option: &str, text: Option<&str>) -> Result<Option<serde_json::Value>, Error> {
    text.map(|t| {
        serde_json::from_str(t).map_err(|e| {
            Error::invalid_input(format!("{option} is not valid JSON: {e}")).with_hint(format!(
                r#"quote it for the shell, e.g. {option} '{{"ticket": "CHG-1234"}}'"#
            ))
        })
    })
    .transpose()
}

fn logs_request(a: AuditLogsArgs) -> Result<AuditLogsRequest, Error> {
    let now = Utc::now();
    Ok(AuditLogsRequest {
        actor: a.actor,
        action: a.action,
        resource_type: a.resource_type,
        event_type: a.event_type,
        since: parse_time_opt(a.window.since.as_deref(), now)?,
        until: parse_time_opt(a.window.until.as_deref(), now)?,
        limit: Some(a.limit),
        offset: Some(a.offset),
    })
}

/// A point in time: RFC 3339, or a duration back from `now` (`2h`, `7d`, `1h30m`).
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let back = pganalytics_core::metrics::parse_duration(text).map_err(|_| {
        Error::invalid_input(format!("`{text}` is neither a time nor a duration")).with_hint(
            "give an RFC 3339 time (2026-11-29T08:00:00Z) or a duration back from now (30m, 2h, 7d)",
        )
    })?;
    chrono::Duration::from_std(back)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| Error::invalid_input(format!("`{text}` reaches too far back")))
}

pub fn parse_time_opt(
    text: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Error> {
    text.map(|t| parse_time(t, now)).transpose()
}

/// `audit load`: `events` events from `writers` concurrent tasks, each waiting until its event
/// is durable and then printing `durable ID` (flushed at once, so whoever reads the output
/// knows the event was acknowledged before the process could be killed).
async fn load(api: &Api, writers: usize, events: u64) -> Result<(), Error> {
    if writers == 0 {
        return Err(Error::invalid_input("--writers must be at least 1"));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..writers as u64 {
        let api = api.clone();
        let share = events / writers as u64 + u64::from(writer < events % writers as u64);
        tasks.spawn(async move {
            for n in 0..share {
                let event = NewEvent::new("dev.load", "create", "load_test")
                    .resource(format!("{writer}/{n}"))
                    .changes(serde_json::json!({ "writer": writer, "n": n }));
                let (id, _) = api.audit_log().log_durable(api.caller(), event).await?;
                print_durable(id);
            }
            Ok::<(), Error>(())
        });
    }
    let mut failed = None;
    while let Some(joined) = tasks.join_next().await {
        let result =
            joined.unwrap_or_else(|e| Err(Error::internal(format!("writer task failed: {e}"))));
        if let Err(e) = result {
            failed.get_or_insert(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

fn print_durable(id: i64) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    // A reader that went away ends the process through SIGPIPE (see main).
    let _ = writeln!(stdout, "durable {id}");
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_durations_back_from_now() {
        let now: DateTime<Utc> = "2026-11-29T12:00:00Z".parse().unwrap();
        assert_eq!(
            parse_time("2h", now).unwrap(),
            "2026-11-29T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            parse_time("7d", now).unwrap(),
            "2026-11-22T12:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            parse_time("2026-11-29T09:30:00+01:00", now).unwrap(),
            "2026-11-29T08:30:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let err = parse_time("yesterday", now).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.hint.unwrap().contains("RFC 3339"));
    }

    #[test]
    fn malformed_json_names_the_option() {
        let err = parse_json("--details", Some("{bad")).unwrap_err();
        assert!(
            err.message.starts_with("--details is not valid JSON"),
            "{}",
            err.message
        );
        assert_eq!(parse_json("--old", None).unwrap(), None);
        assert_eq!(
            parse_json("--new", Some("[1]")).unwrap(),
            Some(serde_json::json!([1]))
        );
    }
}
