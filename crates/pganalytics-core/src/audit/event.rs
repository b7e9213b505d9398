//! One audit event: what a caller hands in ([`NewEvent`] + [`Caller`]), how it is checked, and
//! the canonical form its hashes are computed over (the format is specified in
//! docs/AUDIT_LOGGING.md; changing anything here breaks every existing log's verification).

use crate::error::{Error, Result};
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Version of the canonical form, part of every hashed event.
pub const FORMAT_VERSION: u32 = 1;

/// Who acts, and from where. The actor's name, address and user agent are personal data:
/// they are covered by a salted digest so that erasure keeps the chain verifiable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub actor: Actor,
    /// `cli`, `desktop`, `daemon`, `api` or `system`.
    pub source: Source,
    pub ip_address: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    /// `os_user`, `api_token`, `db_role` or `system` (the `actors.kind` values).
    pub kind: &'static str,
    pub name: String,
}

impl Actor {
    /// The operating-system user running this process.
    pub fn os_user() -> Actor {
        let name = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| format!("uid:{}", nix::unistd::geteuid()));
        Actor {
            kind: "os_user",
            name,
        }
    }

    pub fn api_token(name: &str) -> Actor {
        Actor {
            kind: "api_token",
            name: name.to_string(),
        }
    }

    pub fn db_role(name: &str) -> Actor {
        Actor {
            kind: "db_role",
            name: name.to_string(),
        }
    }

    /// A person or system named by an event sent from outside (`audit log --actor`).
    pub fn external(name: &str) -> Actor {
        Actor {
            kind: "external",
            name: name.to_string(),
        }
    }

    /// Callers that could not be identified (a request with a wrong token).
    pub fn anonymous() -> Actor {
        Actor {
            kind: "system",
            name: "anonymous".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    #[default]
    Cli,
    Desktop,
    Daemon,
    Api,
    System,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cli => "cli",
            Source::Desktop => "desktop",
            Source::Daemon => "daemon",
            Source::Api => "api",
            Source::System => "system",
        }
    }
}

impl Caller {
    /// The OS user of this process, acting through `source`.
    pub fn local(source: Source) -> Caller {
        Caller {
            actor: Actor::os_user(),
            source,
            ip_address: None,
            user_agent: None,
        }
    }
}

pub use crate::api::AuditOutcome as Outcome;

/// What happened, as the code that did it describes it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Dotted name, e.g. `server.added`, `auth.token_rejected`.
    pub event_type: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    /// Verb: `create`, `update`, `delete`, `read`, `login`, `verify`, `erase`, …
    pub action: String,
    pub outcome: Outcome,
    /// Non-personal details (an error code, counts, settings).
    pub changes: Value,
    pub old_values: Option<Value>,
    pub new_values: Option<Value>,
    /// The person the event is about, when not the actor (erasure covers both).
    pub subject_id: Option<Uuid>,
    /// Personal details (erased with the subject).
    pub personal_details: Option<Value>,
}

impl NewEvent {
    pub fn new(event_type: &str, action: &str, resource_type: &str) -> NewEvent {
        NewEvent {
            event_type: event_type.to_string(),
            resource_type: resource_type.to_string(),
            resource_id: None,
            action: action.to_string(),
            outcome: Outcome::Success,
            changes: json!({}),
            old_values: None,
            new_values: None,
            subject_id: None,
            personal_details: None,
        }
    }

    pub fn resource(mut self, id: impl Into<String>) -> Self {
        self.resource_id = Some(id.into());
        self
    }

    pub fn changes(mut self, changes: Value) -> Self {
        self.changes = changes;
        self
    }

    pub fn old(mut self, v: Value) -> Self {
        self.old_values = Some(v);
        self
    }

    pub fn new_values(mut self, v: Value) -> Self {
        self.new_values = Some(v);
        self
    }

    /// Record how an operation ended: success, or failure with the error's code and message.
    pub fn outcome_of<T>(mut self, result: &Result<T>) -> Self {
        if let Err(e) = result {
            self.outcome = Outcome::Failure;
            if let Value::Object(map) = &mut self.changes {
                map.insert("error_code".into(), json!(e.code));
                map.insert("error".into(), json!(e.message));
            }
        }
        self
    }
}

/// An event ready for the chain: everything but its position and hashes.
#[derive(Debug, Clone)]
pub struct PreparedEvent {
    /// Who acted (not stored as such: the id below is; kept to re-resolve an erased actor).
    pub actor: Actor,
    pub event_id: Uuid,
    pub event_type: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub action: String,
    pub outcome: Outcome,
    pub source: Source,
    pub actor_id: Uuid,
    pub subject_id: Option<Uuid>,
    /// The JSON values as canonical (RFC 8785) text: hashed and stored as they are.
    pub changes: String,
    pub old_values: Option<String>,
    pub new_values: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub personal_details: Option<String>,
    pub personal_salt: [u8; 16],
    pub personal_digest: String,
    pub created_at: DateTime<Utc>,
}

/// Check what the database would refuse (so one bad event cannot fail a whole batch) and
/// compute the personal digest.
pub fn prepare(event: NewEvent, caller: &Caller, actor_id: Uuid) -> Result<PreparedEvent> {
    let field = |name: &str, value: &str, max: usize| -> Result<()> {
        if value.is_empty() || value.len() > max {
            return Err(Error::invalid_input(format!(
                "audit event {name} must be 1 to {max} characters"
            )));
        }
        check_text(name, value)
    };
    field("event type", &event.event_type, 100)?;
    field("resource type", &event.resource_type, 100)?;
    field("action", &event.action, 50)?;
    if let Some(id) = &event.resource_id {
        check_text("resource id", id)?;
    }
    if let Some(ua) = &caller.user_agent {
        check_text("user agent", ua)?;
    }
    if !event.changes.is_object() {
        return Err(
            Error::invalid_input("audit event details must be a JSON object")
                .with_hint("pass e.g. --details '{\"ticket\": \"CHG-1234\"}'"),
        );
    }
    // Canonicalised once, here: the writer hashes and stores this text as it is.
    let changes = check_json("details", &event.changes)?;
    let old_values = event
        .old_values
        .as_ref()
        .map(|v| check_json("old values", v))
        .transpose()?;
    let new_values = event
        .new_values
        .as_ref()
        .map(|v| check_json("new values", v))
        .transpose()?;
    let personal_details = event
        .personal_details
        .as_ref()
        .map(|v| check_json("personal details", v))
        .transpose()?;
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
    let ip_address = caller.ip_address.map(|ip| ip.to_string());
    let personal_digest = personal_digest(
        &salt,
        &caller.actor.name,
        ip_address.as_deref(),
        caller.user_agent.as_deref(),
        event.personal_details.as_ref(),
    );
    Ok(PreparedEvent {
        actor: caller.actor.clone(),
        event_id: Uuid::new_v4(),
        event_type: event.event_type,
        resource_type: event.resource_type,
        resource_id: event.resource_id,
        action: event.action,
        outcome: event.outcome,
        source: caller.source,
        actor_id,
        subject_id: event.subject_id,
        changes,
        old_values,
        new_values,
        ip_address,
        user_agent: caller.user_agent.clone(),
        personal_details,
        personal_salt: salt,
        personal_digest,
        // The repository keeps microseconds: hash what will be read back.
        created_at: Utc::now().trunc_subsecs(6),
    })
}

/// PostgreSQL text refuses NUL characters.
fn check_text(name: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::invalid_input(format!(
            "audit event {name} contains a NUL character"
        )));
    }
    Ok(())
}

/// JSON the repository stores as `jsonb` and hands back equal under canonicalisation: no NUL
/// in strings, and numbers that survive the round trip through their canonical text.
fn check_json(name: &str, value: &Value) -> Result<String> {
    fn walk(v: &Value) -> bool {
        match v {
            Value::String(s) => !s.contains('\0'),
            Value::Array(items) => items.iter().all(walk),
            Value::Object(map) => map.iter().all(|(k, v)| !k.contains('\0') && walk(v)),
            _ => true,
        }
    }
    if !walk(value) {
        return Err(Error::invalid_input(format!(
            "audit event {name} contains a NUL character"
        )));
    }
    let canonical = canonical_bytes(value)?;
    let reparsed: Value = serde_json::from_slice(&canonical)
        .map_err(|e| Error::invalid_input(format!("audit event {name}: {e}")))?;
    if canonical_bytes(&reparsed)? != canonical {
        return Err(Error::invalid_input(format!(
            "audit event {name} holds a number that cannot be stored exactly"
        ))
        .with_hint("pass large or very precise numbers as strings"));
    }
    String::from_utf8(canonical)
        .map_err(|e| Error::internal(format!("canonical JSON is not UTF-8: {e}")))
}

/// RFC 8785 (JCS) canonical text of a JSON value.
pub fn canonical_text(value: &Value) -> Result<String> {
    String::from_utf8(canonical_bytes(value)?)
        .map_err(|e| Error::internal(format!("canonical JSON is not UTF-8: {e}")))
}

/// RFC 8785 (JCS) canonical bytes of a JSON value.
pub fn canonical_bytes(value: &Value) -> Result<Vec<u8>> {
    serde_json_canonicalizer::to_vec(value)
        .map_err(|e| Error::invalid_input(format!("canonicalise JSON: {e}")))
}

/// SHA-256(salt || JCS({actor_name, ip_address, personal_details, user_agent})), hex.
pub fn personal_digest(
    salt: &[u8],
    actor_name: &str,
    ip_address: Option<&str>,
    user_agent: Option<&str>,
    personal_details: Option<&Value>,
) -> String {
    // Personal details were checked by `check_json`, so they canonicalise.
    let details = personal_details.map(|d| canonical_bytes(d).unwrap_or_default());
    super::canonical::personal_digest(
        &mut Vec::with_capacity(256),
        salt,
        actor_name,
        ip_address,
        user_agent,
        details.as_deref(),
    )
}

/// The fields an event's content hash covers, borrowed from wherever they were read.
#[derive(Debug, Clone, Copy)]
pub struct HashedFields<'a> {
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub resource_type: &'a str,
    pub resource_id: Option<&'a str>,
    pub action: &'a str,
    pub outcome: &'a str,
    pub source: &'a str,
    pub actor_id: Uuid,
    pub subject_id: Option<Uuid>,
    pub changes: &'a Value,
    pub old_values: Option<&'a Value>,
    pub new_values: Option<&'a Value>,
    pub personal_digest: &'a str,
    pub created_at: DateTime<Utc>,
    pub previous_hash: Option<&'a str>,
}

impl HashedFields<'_> {
    /// The canonical document (RFC 8785) whose SHA-256 is the content hash.
    pub fn canonical(&self) -> Result<Vec<u8>> {
        let event_id = self.event_id.to_string();
        let actor_id = self.actor_id.to_string();
        let subject_id = self.subject_id.map(|s| s.to_string());
        let created_at = format_time(self.created_at);
        let changes = canonical_text(self.changes)?;
        let old_values = self.old_values.map(canonical_text).transpose()?;
        let new_values = self.new_values.map(canonical_text).transpose()?;
        let mut out = Vec::with_capacity(512);
        super::canonical::CanonicalEvent {
            id: self.id,
            event_id: &event_id,
            event_type: self.event_type,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            action: self.action,
            outcome: self.outcome,
            source: self.source,
            actor_id: &actor_id,
            subject_id: subject_id.as_deref(),
            changes: &changes,
            old_values: old_values.as_deref(),
            new_values: new_values.as_deref(),
            personal_digest: self.personal_digest,
            created_at: &created_at,
            previous_hash: self.previous_hash,
        }
        .write(&mut out);
        Ok(out)
    }

    /// Hex SHA-256 of the canonical document.
    pub fn content_hash(&self) -> Result<String> {
        Ok(hex::encode(Sha256::digest(self.canonical()?)))
    }
}

/// RFC 3339 in UTC with exactly six fractional digits, as hashed.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl PreparedEvent {
    /// The content hash at position `id` after `previous_hash` (the JSON is already canonical).
    pub fn hashed(&self, id: i64, previous_hash: Option<&str>) -> String {
        let event_id = self.event_id.to_string();
        let actor_id = self.actor_id.to_string();
        let subject_id = self.subject_id.map(|s| s.to_string());
        let created_at = format_time(self.created_at);
        super::canonical::CanonicalEvent {
            id,
            event_id: &event_id,
            event_type: &self.event_type,
            resource_type: &self.resource_type,
            resource_id: self.resource_id.as_deref(),
            action: &self.action,
            outcome: self.outcome.as_str(),
            source: self.source.as_str(),
            actor_id: &actor_id,
            subject_id: subject_id.as_deref(),
            changes: &self.changes,
            old_values: self.old_values.as_deref(),
            new_values: self.new_values.as_deref(),
            personal_digest: &self.personal_digest,
            created_at: &created_at,
            previous_hash,
        }
        .content_hash(&mut Vec::with_capacity(512))
    }
}
