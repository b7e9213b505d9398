//! Checkpoints: signed statements "the log `log` had `size` events, with Merkle root `root`
//! and chain head `head`, at `time`". Each is written outside the database first (a folder the
//! user names: another disk, an NFS mount, a synced folder), then recorded in
//! `audit_log_verification`. Verification trusts only the external copies and the public key.
//!
//! Layout of the folder, per log: `<log_id>/<size:020>.<kind>.json` (the checkpoint), and
//! beside it `.note` (the exact signed bytes) and `.sig` (the raw signature) so that `openssl`
//! can check it, and `.leaves` (the 32-byte content hashes of the events it adds since the
//! previous checkpoint, which the signed root authenticates).

use super::keys::{Algorithm, SigningKey, VerifyingKey};
use super::merkle::{Frontier, Hash};
use crate::error::{Error, ErrorCode, Result};
use anyhow::Context;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use uuid::Uuid;

const NOTE_HEADER: &str = "pganalytics audit checkpoint v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A periodic or flush checkpoint.
    Checkpoint,
    /// Seals events up to `size` before retention deletes them.
    Seal,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Checkpoint => "checkpoint",
            Kind::Seal => "seal",
        }
    }
}

/// The signed part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub log_id: Uuid,
    pub kind: Kind,
    pub size: u64,
    pub root: Hash,
    /// Content hash of event `size` (hex); `None` for an empty log.
    pub head: Option<String>,
    pub time: DateTime<Utc>,
}

impl Statement {
    /// The exact bytes that are signed: seven lines, each ending in `\n`.
    pub fn note(&self) -> String {
        format!(
            "{NOTE_HEADER}\nlog: {}\nkind: {}\nsize: {}\nroot: {}\nhead: {}\ntime: {}\n",
            self.log_id,
            self.kind.as_str(),
            self.size,
            hex::encode(self.root),
            self.head.as_deref().unwrap_or("-"),
            super::event::format_time(self.time),
        )
    }

    pub fn parse(note: &str) -> Result<Statement> {
        let bad = |what: &str| {
            Error::new(
                ErrorCode::VerificationFailed,
                format!("malformed checkpoint note: {what}"),
            )
        };
        let mut lines = note
            .strip_suffix('\n')
            .ok_or_else(|| bad("no final newline"))?
            .split('\n');
        if lines.next() != Some(NOTE_HEADER) {
            return Err(bad("unknown header"));
        }
        let mut field = |key: &str| -> Result<String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(key))
                .and_then(|l| l.strip_prefix(": "))
                .map(str::to_string)
                .ok_or_else(|| bad(key))
        };
        let log_id = field("log")?.parse().map_err(|_| bad("log"))?;
        let kind = match field("kind")?.as_str() {
            "checkpoint" => Kind::Checkpoint,
            "seal" => Kind::Seal,
            _ => return Err(bad("kind")),
        };
        let size = field("size")?.parse().map_err(|_| bad("size"))?;
        let root = parse_hash(&field("root")?).ok_or_else(|| bad("root"))?;
        let head = match field("head")?.as_str() {
            "-" => None,
            h if parse_hash(h).is_some() => Some(h.to_string()),
            _ => return Err(bad("head")),
        };
        let time = DateTime::parse_from_rfc3339(&field("time")?)
            .map_err(|_| bad("time"))?
            .with_timezone(&Utc);
        if lines.next().is_some() {
            return Err(bad("extra lines"));
        }
        let statement = Statement {
            log_id,
            kind,
            size,
            root,
            head,
            time,
        };
        // Only the canonical rendering is accepted, so a note has one meaning.
        if statement.note() != note {
            return Err(bad("not in canonical form"));
        }
        Ok(statement)
    }
}

pub fn parse_hash(hex_text: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

/// A signed statement plus what lets verification resume from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The signed note, verbatim.
    pub note: String,
    /// Base64 of the signature over `note`.
    pub signature: String,
    pub algorithm: Algorithm,
    /// `sha256:` + hex SHA-256 of the signer's public key (SPKI DER).
    pub key_fingerprint: String,
    /// Size of the previous checkpoint (its `.leaves` start after it).
    pub previous_size: u64,
    /// Compact Merkle state at `size` (hex, largest subtree first): lets the tree continue
    /// after retention removed the events; authenticated by recomputing `root` from it.
    pub frontier: Vec<String>,
}

impl Checkpoint {
    pub fn sign(
        statement: &Statement,
        previous_size: u64,
        frontier: &Frontier,
        key: &SigningKey,
    ) -> Result<Checkpoint> {
        let note = statement.note();
        let signature = key
            .sign(note.as_bytes())
            .map_err(|e| Error::internal(format!("sign the audit checkpoint: {e}")))?;
        Ok(Checkpoint {
            note,
            signature: base64::engine::general_purpose::STANDARD.encode(signature),
            algorithm: key.algorithm(),
            key_fingerprint: key.verifying_key().fingerprint(),
            previous_size,
            frontier: frontier.nodes().iter().map(hex::encode).collect(),
        })
    }

    /// The statement, once the signature has been checked against `key`.
    pub fn verified(&self, key: &VerifyingKey) -> std::result::Result<Statement, String> {
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .map_err(|_| "the signature is not base64".to_string())?;
        if !key.verify(self.note.as_bytes(), &signature) {
            return Err(if self.key_fingerprint != key.fingerprint() {
                format!(
                    "signed by key {}, not by the given public key {}",
                    self.key_fingerprint,
                    key.fingerprint()
                )
            } else {
                "the signature does not match the note".to_string()
            });
        }
        let statement = Statement::parse(&self.note).map_err(|e| e.message)?;
        let frontier = self.frontier()?;
        if frontier.size() != statement.size || frontier.root() != statement.root {
            return Err("its frontier does not lead to the signed root".to_string());
        }
        Ok(statement)
    }

    /// The unsigned statement (for listing; never trusted without [`Checkpoint::verified`]).
    pub fn statement(&self) -> Result<Statement> {
        Statement::parse(&self.note)
    }

    pub fn frontier(&self) -> std::result::Result<Frontier, String> {
        let statement = Statement::parse(&self.note).map_err(|e| e.message)?;
        let nodes = self
            .frontier
            .iter()
            .map(|h| parse_hash(h).ok_or_else(|| "malformed frontier hash".to_string()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Frontier::from_parts(statement.size, nodes).map_err(|e| e.to_string())
    }
}

/// The folder holding one log's external checkpoints.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(root: &Path, log_id: Uuid) -> Store {
        Store {
            dir: root.join(log_id.to_string()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn base(&self, size: u64, kind: Kind) -> PathBuf {
        self.dir.join(format!("{size:020}.{}", kind.as_str()))
    }

    /// Write the leaves, the note, the signature and finally the checkpoint itself, each
    /// synced; a checkpoint file exists only when everything it points at is on disk.
    pub fn write(
        &self,
        checkpoint: &Checkpoint,
        statement: &Statement,
        leaves: &[Hash],
    ) -> Result<PathBuf> {
        self.write_files(checkpoint, statement, leaves).map_err(|e| {
            Error::new(
                ErrorCode::DataDirUnusable,
                format!("write the audit checkpoint to {}: {e:#}", self.dir.display()),
            )
            .with_hint("check that the checkpoint folder exists, is writable and has free space (`pganalytics audit status` shows it)")
        })
    }

    fn write_files(
        &self,
        checkpoint: &Checkpoint,
        statement: &Statement,
        leaves: &[Hash],
    ) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("create {}", self.dir.display()))?;
        let base = self.base(statement.size, statement.kind);
        let signature = base64::engine::general_purpose::STANDARD.decode(&checkpoint.signature)?;
        write_synced(
            &base.with_extension(format!("{}.leaves", statement.kind.as_str())),
            &leaves.concat(),
        )?;
        write_synced(
            &base.with_extension(format!("{}.note", statement.kind.as_str())),
            checkpoint.note.as_bytes(),
        )?;
        write_synced(
            &base.with_extension(format!("{}.sig", statement.kind.as_str())),
            &signature,
        )?;
        let json_path = base.with_extension(format!("{}.json", statement.kind.as_str()));
        let json = serde_json::to_vec_pretty(checkpoint)?;
        crate::data_dir::write_atomically(&json_path, &json)?;
        sync_dir(&self.dir)?;
        Ok(json_path)
    }

    /// Every checkpoint in the folder, by size (a seal after a checkpoint of the same size: its
    /// event hashes may start where that checkpoint ends).
    /// Unreadable files are reported, not skipped: a damaged store must not look shorter.
    pub fn list(&self) -> Result<Vec<Checkpoint>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::new(
                    ErrorCode::DataDirUnusable,
                    format!("read the audit checkpoints in {}: {e}", self.dir.display()),
                ))
            }
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read(&path)?;
            let checkpoint: Checkpoint = serde_json::from_slice(&text).map_err(|e| {
                Error::new(
                    ErrorCode::VerificationFailed,
                    format!("the external checkpoint {} is damaged: {e}", path.display()),
                )
            })?;
            out.push(checkpoint);
        }
        out.sort_by_key(|c| {
            let s = c.statement().ok();
            (
                s.as_ref().map_or(0, |s| s.size),
                s.is_some_and(|s| s.kind == Kind::Seal),
            )
        });
        Ok(out)
    }

    /// The newest checkpoint with size ≤ `size` (a seal before a checkpoint of the same size
    /// loses), found by file name.
    pub fn newest_at_most(&self, size: u64) -> Result<Option<Checkpoint>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::new(
                    ErrorCode::DataDirUnusable,
                    format!("read the audit checkpoints in {}: {e}", self.dir.display()),
                ))
            }
        };
        let mut best: Option<((u64, bool), PathBuf)> = None;
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            let Some((n, kind)) = stem.split_once('.') else {
                continue;
            };
            let (Ok(n), seal) = (n.parse::<u64>(), kind == "seal") else {
                continue;
            };
            if n <= size && best.as_ref().is_none_or(|(k, _)| (n, seal) > *k) {
                best = Some(((n, seal), path));
            }
        }
        let Some((_, path)) = best else {
            return Ok(None);
        };
        let text = std::fs::read(&path)?;
        serde_json::from_slice(&text).map(Some).map_err(|e| {
            Error::new(
                ErrorCode::VerificationFailed,
                format!("the external checkpoint {} is damaged: {e}", path.display()),
            )
        })
    }

    /// The content hashes a checkpoint adds (events `previous_size + 1 ..= size`).
    pub fn leaves(&self, statement: &Statement, previous_size: u64) -> Result<Vec<Hash>> {
        let path = self
            .base(statement.size, statement.kind)
            .with_extension(format!("{}.leaves", statement.kind.as_str()));
        let bytes = std::fs::read(&path).map_err(|e| {
            Error::new(
                ErrorCode::VerificationFailed,
                format!(
                    "the external checkpoint's event hashes {} cannot be read: {e}",
                    path.display()
                ),
            )
        })?;
        let expected = statement.size.saturating_sub(previous_size) as usize;
        if bytes.len() != expected * 32 {
            return Err(Error::new(
                ErrorCode::VerificationFailed,
                format!(
                    "the external checkpoint's event hashes {} hold {} bytes, expected {}",
                    path.display(),
                    bytes.len(),
                    expected * 32
                ),
            ));
        }
        Ok(bytes
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("write {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("sync {}", path.display()))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("sync {}", dir.display()))
}
