//! Storage URLs: `file:///abs/path`, `s3://bucket/prefix`, `gcs://bucket/prefix`,
//! `azblob://container/prefix`. Parsed by hand (the `url` crate lower-cases nothing we need
//! and would accept `s3:bucket`); errors never repeat a URL that carried credentials.

use crate::api::{StorageKind, StorageOptions};
use crate::error::{Error, Result};

/// A parsed, validated storage URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageUrl {
    pub kind: StorageKind,
    /// Bucket (S3, GCS) or container (Azure); empty for `file`.
    pub bucket: String,
    /// For `file`: the absolute folder (`/srv/backups`). For object stores: the prefix inside
    /// the bucket without leading or trailing `/` (may be empty).
    pub path: String,
}

const FORMS: &str = "use file:///absolute/folder, s3://bucket/prefix, gcs://bucket/prefix or azblob://container/prefix";

impl StorageUrl {
    pub fn parse(text: &str) -> Result<StorageUrl> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(
                Error::invalid_input(format!("`{text}` is not a storage URL")).with_hint(FORMS),
            );
        };
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "file" => StorageKind::File,
            "s3" => StorageKind::S3,
            "gcs" | "gs" => StorageKind::Gcs,
            "azblob" => StorageKind::Azblob,
            "http" | "https" => {
                return Err(Error::invalid_input(format!(
                    "`{text}` is a service address, not a storage URL"
                ))
                .with_hint(
                    "name the bucket in the URL (e.g. s3://bucket/prefix) and pass the address with --endpoint",
                ))
            }
            other => {
                return Err(Error::invalid_input(format!(
                    "storage URLs of scheme `{other}` are not supported"
                ))
                .with_hint(FORMS))
            }
        };
        if rest.contains(['?', '#']) {
            return Err(Error::invalid_input(format!(
                "the storage URL `{}` has a query or fragment",
                redact_userinfo(text)
            ))
            .with_hint(
                "pass settings as options (--endpoint, --region, --account), not in the URL",
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(Error::invalid_input(
                "the storage URL contains credentials (user:secret@…); they are never stored",
            )
            .with_hint(
                "remove them from the URL; give credentials through the environment (AWS_ACCESS_KEY_ID, AZURE_STORAGE_KEY, GOOGLE_APPLICATION_CREDENTIALS …) or --secret-from-env",
            ));
        }
        match kind {
            StorageKind::File => {
                if !(authority.is_empty() || authority.eq_ignore_ascii_case("localhost")) {
                    return Err(Error::invalid_input(format!(
                        "`{text}` names a host; file URLs point at a local folder"
                    ))
                    .with_hint(
                        "use three slashes: file:///srv/backups (mount NFS shares locally first)",
                    ));
                }
                if !path.starts_with('/') {
                    return Err(
                        Error::invalid_input(format!("`{text}` has no absolute folder"))
                            .with_hint("use file:///absolute/folder (three slashes)"),
                    );
                }
                let segments = segments(path, text)?;
                Ok(StorageUrl {
                    kind,
                    bucket: String::new(),
                    path: format!("/{}", segments.join("/")),
                })
            }
            _ => {
                validate_bucket(kind, authority, text)?;
                let segments = segments(path, text)?;
                Ok(StorageUrl {
                    kind,
                    bucket: authority.to_string(),
                    path: segments.join("/"),
                })
            }
        }
    }

    /// The normalised form stored in the repository.
    pub fn to_url(&self) -> String {
        let scheme = self.kind.as_str();
        match self.kind {
            StorageKind::File => format!("file://{}", self.path),
            _ if self.path.is_empty() => format!("{scheme}://{}", self.bucket),
            _ => format!("{scheme}://{}/{}", self.bucket, self.path),
        }
    }
}

/// Path segments, refusing `.`, `..` and empty ones (except a trailing `/`).
fn segments<'a>(path: &'a str, text: &str) -> Result<Vec<&'a str>> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for s in trimmed.split('/') {
        if s.is_empty() || s == "." || s == ".." {
            return Err(Error::invalid_input(format!(
                "the path of `{text}` has an empty, `.` or `..` segment"
            ))
            .with_hint("write the prefix plainly, e.g. s3://bucket/pganalytics/prod"));
        }
        if s.chars().any(|c| c.is_control() || c == '\\') {
            return Err(Error::invalid_input(format!(
                "the path of `{}` contains control characters or `\\`",
                text.escape_debug()
            )));
        }
        out.push(s);
    }
    Ok(out)
}

fn validate_bucket(kind: StorageKind, name: &str, text: &str) -> Result<()> {
    let what = if kind == StorageKind::Azblob {
        "container"
    } else {
        "bucket"
    };
    if name.is_empty() {
        return Err(Error::invalid_input(format!("`{text}` names no {what}"))
            .with_hint(format!("write it as {}://{what}/prefix", kind.as_str())));
    }
    let (max, extra): (usize, &[char]) = match kind {
        StorageKind::S3 => (63, &['-', '.']),
        StorageKind::Gcs => (222, &['-', '.', '_']),
        _ => (63, &['-']),
    };
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(&c));
    let ends_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let extra_rule = kind != StorageKind::Azblob || !name.contains("--");
    if name.len() < 3 || name.len() > max || !chars_ok || !ends_ok || !extra_rule {
        let allowed = match kind {
            StorageKind::S3 => "3–63 lower-case letters, digits, `-` and `.`",
            StorageKind::Gcs => "3–222 lower-case letters, digits, `-`, `_` and `.`",
            _ => "3–63 lower-case letters, digits and single `-`",
        };
        return Err(Error::invalid_input(format!(
            "`{name}` is not a valid {} {what} name",
            kind.as_str()
        ))
        .with_hint(format!(
            "{what} names have {allowed}, starting and ending with a letter or digit"
        )));
    }
    Ok(())
}

/// `scheme://user:secret@host/…?sig=…` → `scheme://***@host/…?…`: what a message may show.
fn redact_userinfo(text: &str) -> String {
    let text = match text.find('?') {
        Some(q) => format!("{}?…", &text[..q]),
        None => text.to_string(),
    };
    match (text.find("://"), text.find('@')) {
        (Some(s), Some(a)) if a > s => format!("{}***{}", &text[..s + 3], &text[a..]),
        _ => text,
    }
}

/// Check the options against the kind: only the options a kind uses, endpoints that are
/// URLs without credentials, a region where AWS needs one.
pub fn validate_options(kind: StorageKind, options: &StorageOptions) -> Result<()> {
    let unused = |what: &str| {
        Err(Error::invalid_input(format!(
            "{what} does not apply to {} targets",
            kind.as_str()
        ))
        .with_hint(match kind {
            StorageKind::File => "file targets take no options",
            StorageKind::S3 => "s3 targets take --endpoint, --region and --anonymous",
            StorageKind::Gcs => "gcs targets take --endpoint and --anonymous",
            StorageKind::Azblob => "azblob targets take --endpoint, --account and --anonymous",
        }))
    };
    if kind == StorageKind::File {
        if options.endpoint.is_some() {
            return unused("--endpoint");
        }
        if options.anonymous.is_some() {
            return unused("--anonymous");
        }
    }
    if options.region.is_some() && kind != StorageKind::S3 {
        return unused("--region");
    }
    if options.account.is_some() && kind != StorageKind::Azblob {
        return unused("--account");
    }
    if let Some(endpoint) = &options.endpoint {
        let parsed = url::Url::parse(endpoint).map_err(|_| {
            Error::invalid_input(format!(
                "the endpoint `{}` is not a URL",
                redact_userinfo(endpoint)
            ))
            .with_hint("write it as http://host:port or https://host")
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Error::invalid_input(format!(
                "the endpoint `{}` is not an http(s) address",
                redact_userinfo(endpoint)
            ))
            .with_hint("write it as http://host:port or https://host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Error::invalid_input(
                "the endpoint contains credentials (user:secret@…); they are never stored",
            )
            .with_hint("give credentials through the environment or --secret-from-env"));
        }
        if parsed.query().is_some() {
            return Err(Error::invalid_input(format!(
                "the endpoint `{}` has a query",
                redact_userinfo(endpoint)
            ))
            .with_hint(
                "a SAS token or other secret belongs in the environment, not the endpoint",
            ));
        }
    }
    if let Some(region) = &options.region {
        let ok = !region.is_empty()
            && region.len() <= 64
            && region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(
                Error::invalid_input(format!("`{region}` is not a region name"))
                    .with_hint("e.g. --region eu-west-1"),
            );
        }
    }
    if kind == StorageKind::S3 && options.endpoint.is_none() && options.region.is_none() {
        return Err(
            Error::invalid_input("an s3 target on AWS needs its region").with_hint(
                "pass --region (e.g. eu-west-1), or --endpoint for another S3-compatible store",
            ),
        );
    }
    if let Some(account) = &options.account {
        let ok = (3..=24).contains(&account.len())
            && account
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !ok {
            return Err(Error::invalid_input(format!(
                "`{account}` is not an Azure storage account name"
            ))
            .with_hint("account names have 3–24 lower-case letters and digits"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let u = StorageUrl::parse("s3://my-bucket/pga/prod/").unwrap();
        assert_eq!(
            (u.kind, u.bucket.as_str(), u.path.as_str()),
            (StorageKind::S3, "my-bucket", "pga/prod")
        );
        assert_eq!(u.to_url(), "s3://my-bucket/pga/prod");
        let u = StorageUrl::parse("file:///srv//backups/").unwrap_err();
        assert_eq!(u.code, crate::ErrorCode::InvalidInput);
        let u = StorageUrl::parse("file:///srv/backups/").unwrap();
        assert_eq!(u.to_url(), "file:///srv/backups");
        let u = StorageUrl::parse("gs://b_1").unwrap();
        assert_eq!((u.kind, u.path.as_str()), (StorageKind::Gcs, ""));
        assert_eq!(u.to_url(), "gcs://b_1");
    }

    #[test]
    fn never_repeats_credentials() {
        let e = StorageUrl::parse("s3://AKIA:hunter2@bucket/x").unwrap_err();
        assert!(!e.message.contains("hunter2"));
        let e = StorageUrl::parse("s3://AKIA:hunter2@bucket/x?y").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }
}
