//! API tokens for the daemon. A token is 32 random bytes shown once; the repository keeps only
//! its SHA-256, so a stolen repository dump grants nothing.

use crate::api::{CreatedToken, TokenSummary};
use crate::error::{Error, ErrorCode, Result};
use crate::repository::Repository;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

const PREFIX: &str = "pga_";

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub async fn create(repo: &Repository, name: &str) -> Result<CreatedToken> {
    crate::server::validate_name(name, "token")?;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{PREFIX}{}", hex::encode(bytes));
    let mut tx = repo.pool().begin().await?;
    let actor_id = crate::audit::upsert_actor(&mut *tx, "api_token", name).await?;
    let row = sqlx::query(
        "INSERT INTO api_tokens (name, token_sha256, actor_id) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING RETURNING created_at",
    )
    .bind(name)
    .bind(hash(&token))
    .bind(actor_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(Error::new(
            ErrorCode::AlreadyExists,
            format!("a token named `{name}` already exists"),
        )
        .with_hint("choose another name"));
    };
    tx.commit().await?;
    Ok(CreatedToken {
        name: name.to_string(),
        token,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn list(repo: &Repository) -> Result<Vec<TokenSummary>> {
    let rows = sqlx::query(
        "SELECT name, created_at, last_used_at FROM api_tokens WHERE revoked_at IS NULL ORDER BY name",
    )
    .fetch_all(repo.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TokenSummary {
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
                last_used_at: r.try_get("last_used_at")?,
            })
        })
        .collect()
}

/// The token's name when it is valid; `Unauthorized` otherwise.
pub async fn authenticate(repo: &Repository, token: &str) -> Result<String> {
    let unauthorized = || {
        Error::new(ErrorCode::Unauthorized, "missing or invalid API token").with_hint(
            "send `Authorization: Bearer <token>`; create one with `pganalytics token create NAME`",
        )
    };
    if !token.starts_with(PREFIX) {
        return Err(unauthorized());
    }
    let row = sqlx::query(
        "UPDATE api_tokens SET last_used_at = now()
         WHERE token_sha256 = $1 AND revoked_at IS NULL RETURNING name",
    )
    .bind(hash(token))
    .fetch_optional(repo.pool())
    .await?;
    match row {
        Some(row) => Ok(row.try_get("name")?),
        None => Err(unauthorized()),
    }
}
