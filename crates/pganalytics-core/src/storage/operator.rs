//! Building an [`opendal::Operator`] for a target, writing objects the way each store needs,
//! and turning opendal's errors into typed errors with hints (never with a secret).

use super::credentials::{self, Credentials, Source};
use super::url::StorageUrl;
use crate::api::{StorageKind, StorageOptions};
use crate::error::{Error, ErrorCode, Result};
use opendal::{services, Operator};
use std::sync::Once;
use std::time::Duration;

/// Size of the pieces of a multipart / block upload (S3 parts, Azure blocks, GCS resumable
/// pieces).
pub const CHUNK_SIZE: usize = 8 * 1024 * 1024;
/// Pieces uploaded at once.
pub const CONCURRENT_PARTS: usize = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for one request (a probe step, one part).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONTENT_TYPE: &str = "application/octet-stream";

/// Install, once per process, rustls' ring provider (the one sqlx uses) and the HTTP client
/// opendal sends every request with.
fn init_http() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest_opendal::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build();
        match client {
            Ok(client) => opendal::HttpTransporter::install_default(
                opendal_http_transport_reqwest::ReqwestTransport::new(client),
            ),
            Err(e) => tracing::error!("building the storage HTTP client failed: {e}"),
        }
    });
}

/// An opened storage target: the operator (rooted at the URL's prefix) and what is needed to
/// report its errors.
pub struct Target {
    pub op: Operator,
    pub kind: StorageKind,
    pub url: StorageUrl,
    pub source: Source,
    secrets: Vec<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.url.to_url())
    }
}

/// Build the operator. `credentials` is what [`super::resolve_credentials`] found.
pub fn build(
    url: &StorageUrl,
    options: &StorageOptions,
    credentials: Option<&Credentials>,
    source: Source,
) -> Result<Target> {
    init_http();
    let anonymous = options.anonymous.unwrap_or(false);
    if url.kind == StorageKind::File {
        // opendal would create a missing root: an unmounted NFS share must not silently
        // become a local folder.
        match std::fs::metadata(&url.path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(
                    Error::invalid_input(format!("{} is not a folder", url.path))
                        .with_hint("point the file URL at a folder"),
                )
            }
            Err(e) => return Err(Error::not_found(format!(
                "the folder {} cannot be used: {e}",
                url.path
            ))
            .with_hint(
                "create the folder (or mount the NFS share) first; pgAnalytics does not create it",
            )),
        }
    }
    if url.kind != StorageKind::File && credentials.is_none() && !anonymous {
        return Err(Error::new(
            ErrorCode::AuthenticationFailed,
            format!("no credentials for {}", url.to_url()),
        )
        .with_hint(credentials::none_hint(url.kind)));
    }
    let root = format!("/{}", url.path.trim_start_matches('/'));
    let built = match url.kind {
        StorageKind::File => Operator::new(services::Fs::default().root(&url.path)),
        StorageKind::S3 => {
            let mut b = services::S3::default()
                .bucket(&url.bucket)
                .root(&root)
                .region(options.region.as_deref().unwrap_or("us-east-1"))
                .disable_config_load()
                .disable_ec2_metadata();
            if let Some(endpoint) = &options.endpoint {
                b = b.endpoint(endpoint);
            }
            if let Some(Credentials::S3 {
                access_key_id,
                secret_access_key,
                session_token,
            }) = credentials
            {
                b = b
                    .access_key_id(access_key_id)
                    .secret_access_key(secret_access_key);
                if let Some(token) = session_token {
                    b = b.session_token(token);
                }
            } else if anonymous {
                b = b.skip_signature();
            }
            Operator::new(b)
        }
        StorageKind::Gcs => {
            let mut b = services::Gcs::default()
                .bucket(&url.bucket)
                .root(&root)
                .endpoint(
                    options
                        .endpoint
                        .as_deref()
                        .unwrap_or("https://storage.googleapis.com"),
                )
                .disable_config_load()
                .disable_vm_metadata();
            if let Some(Credentials::Gcs { service_account }) = credentials {
                use base64::Engine;
                b = b.credential(
                    &base64::engine::general_purpose::STANDARD.encode(service_account.as_bytes()),
                );
            } else if anonymous {
                b = b.skip_signature();
            }
            Operator::new(b)
        }
        StorageKind::Azblob => {
            let (cred_account, key, sas) = match credentials {
                Some(Credentials::Azblob {
                    account,
                    key,
                    sas_token,
                }) => (account.clone(), key.clone(), sas_token.clone()),
                _ => (None, None, None),
            };
            let account = options.account.clone().or(cred_account);
            let endpoint = match (&options.endpoint, &account) {
                (Some(e), _) => e.clone(),
                (None, Some(a)) => format!("https://{a}.blob.core.windows.net"),
                (None, None) => {
                    return Err(Error::invalid_input(format!(
                        "{} names no storage account",
                        url.to_url()
                    ))
                    .with_hint("pass --account, or set AZURE_STORAGE_ACCOUNT"))
                }
            };
            let mut b = services::Azblob::default()
                .container(&url.bucket)
                .root(&root)
                .endpoint(&endpoint);
            if let Some(a) = &account {
                b = b.account_name(a);
            }
            match (&key, &sas) {
                (Some(k), _) => {
                    if account.is_none() {
                        return Err(Error::new(
                            ErrorCode::AuthenticationFailed,
                            format!("{} has an account key but no account name", url.to_url()),
                        )
                        .with_hint("pass --account, or set AZURE_STORAGE_ACCOUNT"));
                    }
                    b = b.account_key(k);
                }
                (None, Some(s)) => b = b.sas_token(s),
                (None, None) => b = b.skip_signature(),
            }
            Operator::new(b)
        }
    };
    let op = built.map_err(|e| {
        Error::invalid_input(format!(
            "cannot configure {}: {}",
            url.to_url(),
            sanitize(&e.to_string(), &[])
        ))
    })?;
    Ok(Target {
        op,
        kind: url.kind,
        url: url.clone(),
        source,
        secrets: credentials.map(|c| c.secret_values()).unwrap_or_default(),
    })
}

impl Target {
    fn capability(&self) -> opendal::Capability {
        self.op.info().capability()
    }

    /// Write a whole (small) object once: a content type (the GCS emulator needs one) and
    /// `if_not_exists` where the store supports it (objects are never overwritten).
    pub async fn write_once(&self, key: &str, bytes: Vec<u8>) -> opendal::Result<()> {
        let cap = self.capability();
        let mut w = self.op.write_with(key, bytes);
        if cap.write_with_content_type {
            w = w.content_type(CONTENT_TYPE);
        }
        if cap.write_with_if_not_exists {
            w = w.if_not_exists(true);
        }
        w.await.map(|_| ())
    }

    /// Store one backup object, never overwriting: a local folder gets a direct-I/O write
    /// ([`super::direct`]), a small object one request, a large one a streaming upload in
    /// parts. Gives the buffer back when the write did not consume it (a local folder's).
    pub async fn store_object(
        &self,
        key: &str,
        bytes: Vec<u8>,
    ) -> opendal::Result<Option<Vec<u8>>> {
        if self.kind == StorageKind::File {
            let path = std::path::Path::new(&self.url.path).join(key);
            return tokio::task::spawn_blocking(move || {
                super::direct::write_new(&path, &bytes).map(|()| Some(bytes))
            })
            .await
            .map_err(|e| opendal::Error::new(opendal::ErrorKind::Unexpected, e.to_string()))?
            .map_err(io_error);
        }
        if bytes.len() <= CHUNK_SIZE {
            return self.write_once(key, bytes).await.map(|()| None);
        }
        let mut w = self.writer(key).await?;
        match w.write(bytes).await {
            Ok(()) => w.close().await.map(|_| None),
            Err(e) => {
                let _ = w.abort().await;
                Err(e)
            }
        }
    }

    /// A small object read whole; `None` when it does not exist.
    pub async fn read_if_exists(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.op.read(key).await {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error("read", key, &e)),
        }
    }

    /// A streaming writer for a large object: 8 MiB pieces, 4 at once (S3 multipart, Azure
    /// blocks — Azure needs `chunk` or it makes one block per write call —, GCS resumable
    /// uploads, which `if_not_exists` selects and the emulator supports). On failure call
    /// `abort()`: a failed `close()` leaves the unfinished upload behind.
    pub async fn writer(&self, key: &str) -> opendal::Result<opendal::Writer> {
        let cap = self.capability();
        let mut w = self.op.writer_with(key);
        if self.kind != StorageKind::File {
            w = w.chunk(CHUNK_SIZE).concurrent(CONCURRENT_PARTS);
        }
        if cap.write_with_content_type {
            w = w.content_type(CONTENT_TYPE);
        }
        if cap.write_with_if_not_exists {
            w = w.if_not_exists(true);
        }
        w.await
    }

    /// What the target is called in messages.
    pub fn describe(&self) -> String {
        self.url.to_url()
    }

    /// Turn an opendal error of `step` on `key` into a typed error with a hint.
    pub fn error(&self, step: &str, key: &str, e: &opendal::Error) -> Error {
        classify(&self.url, step, key, e, &self.secrets)
    }
}

/// A local write's error, as opendal reports the same failure.
fn io_error(e: std::io::Error) -> opendal::Error {
    use opendal::ErrorKind as K;
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => K::NotFound,
        std::io::ErrorKind::PermissionDenied => K::PermissionDenied,
        std::io::ErrorKind::AlreadyExists => K::ConditionNotMatch,
        _ => K::Unexpected,
    };
    opendal::Error::new(kind, e.to_string())
}

/// Text of an error with secrets and URL queries (SAS tokens) removed, at most 400 chars.
pub fn sanitize(text: &str, secrets: &[String]) -> String {
    let text = credentials::redact(text, secrets);
    let mut out: Vec<String> = Vec::new();
    for token in text.split(' ') {
        match (token.find("://"), token.find('?')) {
            (Some(s), Some(q)) if q > s => out.push(format!("{}?…", &token[..q])),
            _ => out.push(token.to_string()),
        }
    }
    let mut joined = out.join(" ");
    if joined.len() > 400 {
        let mut end = 400;
        while !joined.is_char_boundary(end) {
            end -= 1;
        }
        joined.truncate(end);
        joined.push('…');
    }
    joined
}

/// The innermost cause (`tcp connect error: Connection refused (os error 111)`).
fn root_cause(e: &opendal::Error) -> String {
    let mut last = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

fn chain(e: &opendal::Error) -> String {
    let mut text = format!("{e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Text between `open` and `close` after the first `open`.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(text[start..end].trim())
}

/// The service's own answer, when the error carries one: `HTTP 403 Code: message`.
fn service_answer(full: &str) -> Option<String> {
    let status = between(full, "status: ", ",")?;
    let code = between(full, "<Code>", "</Code>")
        .or_else(|| between(full, "\"x-ms-error-code\": \"", "\""))
        .or_else(|| between(full, "code: \"", "\""));
    let message = between(full, "<Message>", "</Message>")
        .or_else(|| between(full, "\"message\": \"", "\""))
        .or_else(|| between(full, "\\\"message\\\": \\\"", "\\\""))
        .or_else(|| between(full, "message: \"", "\""));
    let mut out = format!("HTTP {status}");
    if let Some(c) = code {
        out.push(' ');
        out.push_str(c);
    }
    if let Some(m) = message {
        out.push_str(": ");
        out.push_str(m);
    }
    Some(out)
}

fn classify(
    url: &StorageUrl,
    step: &str,
    key: &str,
    e: &opendal::Error,
    secrets: &[String],
) -> Error {
    use opendal::ErrorKind as K;
    let what = url.to_url();
    let full = chain(e);
    let answer = match url.kind {
        // A local write's error is the system's own ("No space left on device (os error
        // 28)"), after opendal's "Unexpected (permanent) at  => ".
        StorageKind::File => full.split_once(" => ").map(|(_, m)| m.to_string()),
        _ => service_answer(&full),
    };
    let detail = sanitize(&answer.unwrap_or_else(|| full.clone()), secrets);
    let lower = full.to_ascii_lowercase();
    let container = if url.kind == StorageKind::Azblob {
        "container"
    } else {
        "bucket"
    };
    let transport = lower.contains("send http request")
        || lower.contains("connection refused")
        || lower.contains("dns error")
        || lower.contains("error sending request")
        || lower.contains("tcp connect")
        || lower.contains("timed out");
    // S3 answers NoSuchBucket (opendal: ConfigInvalid), Azure ContainerNotFound, GCS 404.
    let bucket_missing = url.kind != StorageKind::File
        && (lower.contains("nosuchbucket")
            || lower.contains("containernotfound")
            || lower.contains("bucket does not exist")
            || (e.kind() == K::NotFound && step != "read"));
    match e.kind() {
        K::NotFound if url.kind == StorageKind::File => Error::not_found(format!(
            "{step} `{key}` in {what} failed: a folder is missing ({detail})"
        ))
        .with_hint("create the folder (or mount the NFS share) and check its permissions"),
        _ if bucket_missing => Error::not_found(format!(
            "{step} `{key}` in {what} failed: the {container} `{}` does not exist ({detail})",
            url.bucket
        ))
        .with_hint(format!(
            "create the {container} first (pgAnalytics never creates it), or correct the URL"
        )),
        K::PermissionDenied => {
            let wrong_key = [
                "signaturedoesnotmatch",
                "invalidaccesskeyid",
                "invalidclienttokenid",
                "authenticationfailed",
                "failed to authenticate",
                "signature",
                "invalid_grant",
                "unauthenticated",
                "401",
                "403 forbidden: server failed to authenticate",
            ]
            .iter()
            .any(|m| lower.contains(m));
            if wrong_key && url.kind != StorageKind::File {
                Error::new(
                    ErrorCode::AuthenticationFailed,
                    format!("{what} refused the credentials while trying to {step} `{key}` ({detail})"),
                )
                .with_hint(format!(
                    "check the key: {}",
                    credentials::none_hint(url.kind)
                ))
            } else {
                Error::new(
                    ErrorCode::PermissionDenied,
                    format!("access denied to {step} `{key}` in {what} ({detail})"),
                )
                .with_hint(match url.kind {
                    StorageKind::File => "let the account running pgAnalytics create, read and delete files in the folder",
                    StorageKind::S3 => "grant s3:PutObject, s3:GetObject, s3:ListBucket and s3:DeleteObject on the bucket and prefix",
                    StorageKind::Gcs => "grant the service account roles/storage.objectAdmin on the bucket",
                    StorageKind::Azblob => "grant the `Storage Blob Data Contributor` role on the container, or use the account key",
                })
            }
        }
        _ if url.kind == StorageKind::File
            && (lower.contains("no space left") || lower.contains("quota exceeded")) =>
        {
            Error::new(
                ErrorCode::DataDirUnusable,
                format!(
                    "{step} `{key}` in {what} failed: the file system of {} is full ({detail})",
                    url.path
                ),
            )
            .with_hint("free space there (`pganalytics backup prune` removes expired backups) or use another target, then try again")
        }
        _ if url.kind == StorageKind::File => Error::new(
            ErrorCode::DataDirUnusable,
            format!("{step} `{key}` in {what} failed ({detail})"),
        )
        .with_hint("check the folder's file system: that it is mounted read-write, has free space, and reports no errors (dmesg)"),
        K::ConfigInvalid => Error::invalid_input(format!(
            "{what} is not configured correctly ({detail})"
        ))
        .with_hint("check the URL and the --endpoint, --region and --account options"),
        _ if transport => Error::new(
            ErrorCode::Unreachable,
            format!(
                "cannot reach the storage service of {what} to {step} `{key}` ({})",
                sanitize(&root_cause(e), secrets)
            ),
        )
        .with_hint("check the endpoint (host, port, http/https), that the service runs, and firewalls or proxies"),
        K::RateLimited => Error::new(
            ErrorCode::Unreachable,
            format!("{what} throttled the request to {step} `{key}` ({detail})"),
        )
        .with_hint("try again later"),
        _ => Error::new(
            ErrorCode::Unreachable,
            format!("{step} `{key}` in {what} failed ({detail})"),
        )
        .with_hint("check the endpoint and that the service speaks this storage kind's protocol"),
    }
}
