//! The key that signs the audit log's checkpoints: RSA-2048 (PKCS#1 v1.5 with SHA-256, what
//! `openssl dgst -sha256 -sign` makes) or Ed25519 (pure Ed25519 over the message). All the
//! cryptography is RustCrypto's (`rsa`, `ed25519-dalek`, `sha2`); keys are exchanged as
//! PKCS#8 / SPKI PEM, so `openssl` can check every signature on its own.
//!
//! The private key lives in the OS keyring or in a file of mode 0600, never in the repository
//! database. Errors and `Debug` output name the algorithm and the public fingerprint, never key
//! material.

use crate::error::{Error, ErrorCode, Result};
use anyhow::Context as _;
use rand::rngs::OsRng;
use rsa::pkcs8::der::pem::LineEnding;
use rsa::pkcs8::{
    Document, EncodePrivateKey, EncodePublicKey, PrivateKeyInfo, SecretDocument,
    SubjectPublicKeyInfoRef,
};
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use zeroize::Zeroizing;

/// Modulus size of RSA keys: a signature is 256 bytes (344 characters of base64).
const RSA_BITS: usize = 2048;
/// A PEM private key is a few kilobytes; refuse to read anything much larger.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;
const KEYGEN_HINT: &str = "create one with `pganalytics audit keygen`";

/// The signature algorithm of a checkpoint key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// RSA, 2048-bit modulus, PKCS#1 v1.5 signatures over SHA-256.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// Ed25519 (RFC 8032, pure).
    Ed25519,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Rsa2048 => "rsa-2048",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Algorithm> {
        match s {
            "rsa-2048" => Ok(Algorithm::Rsa2048),
            "ed25519" => Ok(Algorithm::Ed25519),
            other => Err(
                Error::invalid_input(format!("`{other}` is not a signing algorithm"))
                    .with_hint("use `rsa-2048` or `ed25519`"),
            ),
        }
    }
}

fn invalid(message: impl Into<String>) -> anyhow::Error {
    Error::invalid_input(message).into()
}

/// A private checkpoint signing key.
pub struct SigningKey {
    secret: Secret,
    public: VerifyingKey,
}

enum Secret {
    Rsa(rsa::pkcs1v15::SigningKey<Sha256>),
    Ed25519(ed25519_dalek::SigningKey),
}

impl SigningKey {
    /// A new random key (RSA: 2048 bits, e = 65537), from the OS random source.
    pub fn generate(algorithm: Algorithm) -> anyhow::Result<SigningKey> {
        let secret = match algorithm {
            Algorithm::Rsa2048 => Secret::Rsa(rsa::pkcs1v15::SigningKey::new(
                rsa::RsaPrivateKey::new(&mut OsRng, RSA_BITS)
                    .context("generating an RSA key failed")?,
            )),
            Algorithm::Ed25519 => Secret::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng)),
        };
        SigningKey::from_secret(secret)
    }

    fn from_secret(secret: Secret) -> anyhow::Result<SigningKey> {
        let public = match &secret {
            Secret::Rsa(key) => Public::Rsa(key.as_ref().to_public_key()),
            Secret::Ed25519(key) => Public::Ed25519(key.verifying_key()),
        };
        Ok(SigningKey {
            secret,
            public: VerifyingKey::from_public(public)?,
        })
    }

    /// An unencrypted PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`), RSA-2048 or
    /// Ed25519, as written by [`SigningKey::to_pkcs8_pem`] or `openssl genpkey`.
    pub fn from_pkcs8_pem(pem: &str) -> anyhow::Result<SigningKey> {
        let (label, der) = SecretDocument::from_pem(pem.trim())
            .map_err(|e| invalid(format!("the signing key is not a valid PEM document ({e})")))?;
        match label {
            "PRIVATE KEY" => {}
            "RSA PRIVATE KEY" => {
                return Err(Error::invalid_input(
                    "the signing key is a PKCS#1 RSA key; PKCS#8 is expected",
                )
                .with_hint("convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`")
                .into())
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(Error::invalid_input(
                    "the signing key is encrypted; an unencrypted PKCS#8 key is expected (it is protected by the keyring or the file's mode)",
                )
                .with_hint("decrypt it with `openssl pkcs8 -in KEY -out KEY.pk8` (no -topk8)")
                .into())
            }
            other => {
                return Err(invalid(format!(
                    "the PEM document is a `{other}`, not a `PRIVATE KEY`"
                )))
            }
        }
        let info = PrivateKeyInfo::try_from(der.as_bytes())
            .map_err(|e| invalid(format!("the signing key is not valid PKCS#8 ({e})")))?;
        let oid = info.algorithm.oid;
        let secret = if oid == rsa::pkcs1::ALGORITHM_OID {
            let key = rsa::RsaPrivateKey::try_from(info)
                .map_err(|e| invalid(format!("the RSA signing key is not valid ({e})")))?;
            check_rsa_size(key.n().bits())?;
            Secret::Rsa(rsa::pkcs1v15::SigningKey::new(key))
        } else if oid == ed25519_dalek::pkcs8::ALGORITHM_OID {
            Secret::Ed25519(
                ed25519_dalek::SigningKey::try_from(info)
                    .map_err(|e| invalid(format!("the Ed25519 signing key is not valid ({e})")))?,
            )
        } else {
            return Err(unsupported_oid(&oid));
        };
        SigningKey::from_secret(secret)
    }

    /// The key as an unencrypted PKCS#8 PEM document, wiped from memory when dropped.
    pub fn to_pkcs8_pem(&self) -> anyhow::Result<Zeroizing<String>> {
        match &self.secret {
            Secret::Rsa(key) => key.to_pkcs8_pem(LineEnding::LF),
            Secret::Ed25519(key) => key.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|e| anyhow::anyhow!("encoding the signing key as PKCS#8 failed ({e})"))
    }

    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.public.clone()
    }

    /// The signature of `message`: RSA PKCS#1 v1.5 over SHA-256 (256 bytes, deterministic;
    /// blinded against timing attacks), or Ed25519 (64 bytes).
    pub fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        match &self.secret {
            Secret::Rsa(key) => Ok(key
                .try_sign_with_rng(&mut OsRng, message)
                .map_err(|e| anyhow::anyhow!("RSA signing failed ({e})"))?
                .to_vec()),
            Secret::Ed25519(key) => Ok(ed25519_dalek::Signer::sign(key, message)
                .to_bytes()
                .to_vec()),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm().name())
            .field("fingerprint", &self.public.fingerprint)
            .finish_non_exhaustive()
    }
}

fn check_rsa_size(bits: usize) -> anyhow::Result<()> {
    if bits != RSA_BITS {
        return Err(Error::invalid_input(format!(
            "the RSA key has {bits} bits; checkpoint keys are RSA-{RSA_BITS} or Ed25519"
        ))
        .with_hint("generate one with `pganalytics audit keygen` (or `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`)")
        .into());
    }
    Ok(())
}

fn unsupported_oid(oid: &impl fmt::Display) -> anyhow::Error {
    Error::invalid_input(format!(
        "the key's algorithm (OID {oid}) is not supported; checkpoint keys are RSA-{RSA_BITS} or Ed25519"
    ))
    .into()
}

/// A public checkpoint key: checks signatures, names the key by its fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    key: Public,
    /// "sha256:" + hex of the SPKI DER.
    fingerprint: String,
}

#[derive(Clone, PartialEq, Eq)]
enum Public {
    Rsa(rsa::RsaPublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl VerifyingKey {
    fn from_public(key: Public) -> anyhow::Result<VerifyingKey> {
        let der = match &key {
            Public::Rsa(k) => k.to_public_key_der(),
            Public::Ed25519(k) => k.to_public_key_der(),
        }
        .map_err(|e| anyhow::anyhow!("encoding the public key failed ({e})"))?;
        let fingerprint = format!("sha256:{}", hex::encode(Sha256::digest(der.as_bytes())));
        Ok(VerifyingKey { key, fingerprint })
    }

    /// A SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), RSA-2048 or Ed25519.
    pub fn from_public_key_pem(pem: &str) -> anyhow::Result<VerifyingKey> {
        let (label, der) = Document::from_pem(pem.trim())
            .map_err(|e| invalid(format!("the public key is not a valid PEM document ({e})")))?;
        if label != "PUBLIC KEY" {
            return Err(Error::invalid_input(format!(
                "the PEM document is a `{label}`, not a `PUBLIC KEY`"
            ))
            .with_hint("export the public key with `openssl pkey -in KEY -pubout`")
            .into());
        }
        let spki = SubjectPublicKeyInfoRef::try_from(der.as_bytes()).map_err(|e| {
            invalid(format!(
                "the public key is not a valid SubjectPublicKeyInfo ({e})"
            ))
        })?;
        let oid = spki.algorithm.oid;
        let key = if oid == rsa::pkcs1::ALGORITHM_OID {
            let key = rsa::RsaPublicKey::try_from(spki)
                .map_err(|e| invalid(format!("the RSA public key is not valid ({e})")))?;
            check_rsa_size(key.n().bits())?;
            Public::Rsa(key)
        } else if oid == ed25519_dalek::pkcs8::ALGORITHM_OID {
            Public::Ed25519(
                ed25519_dalek::VerifyingKey::try_from(spki)
                    .map_err(|e| invalid(format!("the Ed25519 public key is not valid ({e})")))?,
            )
        } else {
            return Err(unsupported_oid(&oid));
        };
        VerifyingKey::from_public(key)
    }

    pub fn to_public_key_pem(&self) -> anyhow::Result<String> {
        match &self.key {
            Public::Rsa(k) => k.to_public_key_pem(LineEnding::LF),
            Public::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .map_err(|e| anyhow::anyhow!("encoding the public key as PEM failed ({e})"))
    }

    pub fn algorithm(&self) -> Algorithm {
        match &self.key {
            Public::Rsa(_) => Algorithm::Rsa2048,
            Public::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// `sha256:` + lowercase hex SHA-256 of the SubjectPublicKeyInfo DER (what
    /// `openssl pkey -pubin -outform DER | sha256sum` prints).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// Whether `signature` is this key's signature of `message`. Ed25519 verification is
    /// strict (RFC 8032 canonical encodings, no small-order keys).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            Public::Rsa(k) => {
                signature.len() == k.size()
                    && k.verify(
                        rsa::Pkcs1v15Sign::new::<Sha256>(),
                        &Sha256::digest(message),
                        signature,
                    )
                    .is_ok()
            }
            Public::Ed25519(k) => match ed25519_dalek::Signature::from_slice(signature) {
                Ok(sig) => k.verify_strict(message, &sig).is_ok(),
                Err(_) => false,
            },
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm().name())
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// Where the private key lives. Never the repository database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// An entry of the OS keyring (see [`crate::secrets`]).
    Keyring { account: String },
    /// A PEM file of mode 0600.
    File(PathBuf),
}

impl fmt::Display for KeyLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyLocation::Keyring { account } => write!(f, "keyring entry `{account}`"),
            KeyLocation::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// Save a new key. Refuses to replace an existing key (a file or a keyring entry): losing a
/// signing key must be a deliberate act.
pub async fn store(location: &KeyLocation, key: &SigningKey) -> Result<()> {
    let pem = key.to_pkcs8_pem()?;
    match location {
        KeyLocation::Keyring { account } => {
            let keyring = |e: Error| {
                if e.code != ErrorCode::KeyringUnavailable {
                    return e;
                }
                Error::new(
                    ErrorCode::KeyringUnavailable,
                    "no OS keyring can hold the audit signing key",
                )
                .with_hint(
                    "keep the key in a file instead: `pganalytics audit keygen --key-file FILE` (mode 0600, \
                     ideally on storage the database's administrators cannot read); or start a keyring \
                     service (GNOME Keyring, KWallet, KeePassXC)",
                )
            };
            if crate::secrets::get(account)
                .await
                .map_err(keyring)?
                .is_some()
            {
                return Err(Error::new(
                    ErrorCode::AlreadyExists,
                    format!("the {location} already holds a key; refusing to replace it"),
                )
                .with_hint("choose another keyring entry, or delete this one first if it is no longer needed"));
            }
            crate::secrets::set(account, &pem).await.map_err(keyring)
        }
        KeyLocation::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || write_new_key_file(&path, pem.as_bytes()))
                .await
                .map_err(|e| Error::internal(format!("key file task failed: {e}")))?
        }
    }
}

/// Read the key saved at `location`.
pub async fn load(location: &KeyLocation) -> Result<SigningKey> {
    let pem = match location {
        KeyLocation::Keyring { account } => match crate::secrets::get(account).await? {
            Some(pem) => Zeroizing::new(pem),
            None => {
                return Err(
                    Error::not_found(format!("no audit signing key in the {location}"))
                        .with_hint(KEYGEN_HINT),
                )
            }
        },
        KeyLocation::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || read_key_file(&path))
                .await
                .map_err(|e| Error::internal(format!("key file task failed: {e}")))??
        }
    };
    SigningKey::from_pkcs8_pem(&pem)
        .with_context(|| format!("the audit signing key in the {location} is unusable"))
        .map_err(Error::from)
}

fn io_error(action: &str, path: &Path, err: &std::io::Error) -> Error {
    let message = format!("cannot {action} {}: {err}", path.display());
    match err.kind() {
        std::io::ErrorKind::NotFound => Error::new(ErrorCode::DataDirUnusable, message)
            .with_hint("create the folder first (mode 0700), or choose another path"),
        std::io::ErrorKind::PermissionDenied => Error::new(ErrorCode::DataDirUnusable, message)
            .with_hint("choose a folder this account can write to"),
        _ => Error::internal(message),
    }
}

pub(crate) fn write_new_key_file(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!(
                    "{} already exists; refusing to overwrite a key file",
                    path.display()
                ),
            )
            .with_hint(
                "choose another path, or move the old key away first if it is no longer needed",
            ))
        }
        Err(e) => return Err(io_error("create the key file", path, &e)),
    };
    let written = file
        // The umask can only have removed bits; make the mode exactly 0600 anyway.
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(io_error("write the key file", path, &e));
    }
    // Make the new directory entry durable too (best effort: not every file system allows it).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

pub(crate) fn read_key_file(path: &Path) -> Result<Zeroizing<String>> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(
                Error::not_found(format!("no audit signing key at {}", path.display()))
                    .with_hint(KEYGEN_HINT),
            )
        }
        Err(e) => return Err(io_error("read the key file", path, &e)),
    };
    // Checked on the open file, not the path: no window for a swap in between.
    let meta = file
        .metadata()
        .map_err(|e| io_error("inspect the key file", path, &e))?;
    if !meta.is_file() {
        return Err(Error::invalid_input(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::new(
            ErrorCode::DataDirUnusable,
            format!(
                "the key file {} is accessible to other accounts (mode {mode:o}); refusing to use a private key others may have read",
                path.display()
            ),
        )
        .with_hint(format!("chmod 600 {}", path.display())));
    }
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(Error::invalid_input(format!(
            "{} is {} bytes, too large for a PEM private key",
            path.display(),
            meta.len()
        )));
    }
    let mut pem = Zeroizing::new(String::with_capacity(meta.len() as usize + 1));
    file.read_to_string(&mut pem).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => {
            Error::invalid_input(format!("{} is not a text (PEM) file", path.display()))
        }
        _ => io_error("read the key file", path, &e),
    })?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    use std::sync::OnceLock;

    const MESSAGE: &[u8] = b"pganalytics checkpoint v1\nsize 42\nroot 00ff\n";

    /// RSA key generation is slow in debug builds: one key for the whole test binary.
    fn rsa_key() -> &'static SigningKey {
        static KEY: OnceLock<SigningKey> = OnceLock::new();
        KEY.get_or_init(|| SigningKey::generate(Algorithm::Rsa2048).unwrap())
    }

    fn ed_key() -> SigningKey {
        SigningKey::generate(Algorithm::Ed25519).unwrap()
    }

    fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
        Command::new("/usr/bin/openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run /usr/bin/openssl")
    }

    /// A key made by `openssl genpkey` (PKCS#8 PEM).
    fn openssl_key(dir: &Path, name: &str, args: &[&str]) -> String {
        let mut all = vec!["genpkey", "-out", name];
        all.extend_from_slice(args);
        let out = openssl(&all, dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    fn flip_bit(bytes: &[u8], bit: usize) -> Vec<u8> {
        let mut out = bytes.to_vec();
        out[bit / 8] ^= 1 << (bit % 8);
        out
    }

    /// The base64 lines of a PEM document.
    fn pem_body(pem: &str) -> Vec<&str> {
        pem.lines()
            .filter(|l| !l.starts_with("-----") && !l.is_empty())
            .collect()
    }

    fn code(err: anyhow::Error) -> ErrorCode {
        Error::from(err).code
    }

    #[test]
    fn algorithm_names() {
        for (alg, name) in [
            (Algorithm::Rsa2048, "rsa-2048"),
            (Algorithm::Ed25519, "ed25519"),
        ] {
            assert_eq!(alg.to_string(), name);
            assert_eq!(name.parse::<Algorithm>().unwrap(), alg);
            assert_eq!(serde_json::to_string(&alg).unwrap(), format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<Algorithm>(&format!("\"{name}\"")).unwrap(),
                alg
            );
        }
        let err = "rsa2048".parse::<Algorithm>().unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(serde_json::from_str::<Algorithm>("\"rsa2048\"").is_err());
    }

    #[test]
    fn sign_and_verify_both_algorithms() {
        let ed = ed_key();
        let other_ed = ed_key();
        let rsa = rsa_key();
        for (key, other, len) in [(rsa, &other_ed, 256), (&ed, rsa, 64), (&ed, &other_ed, 64)] {
            let vk = key.verifying_key();
            let sig = key.sign(MESSAGE).unwrap();
            let ctx = format!("{key:?}");
            assert_eq!(sig.len(), len, "{ctx}");
            assert!(vk.verify(MESSAGE, &sig), "{ctx}");
            // Both schemes are deterministic.
            assert_eq!(key.sign(MESSAGE).unwrap(), sig, "{ctx}");
            assert!(
                !other.verifying_key().verify(MESSAGE, &sig),
                "{ctx}: another key"
            );
            for bit in [0, 7, MESSAGE.len() * 8 - 1] {
                assert!(
                    !vk.verify(&flip_bit(MESSAGE, bit), &sig),
                    "{ctx}: message bit {bit}"
                );
            }
            for bit in [0, 9, sig.len() * 4, sig.len() * 8 - 1] {
                assert!(
                    !vk.verify(MESSAGE, &flip_bit(&sig, bit)),
                    "{ctx}: signature bit {bit}"
                );
            }
            assert!(
                !vk.verify(MESSAGE, &sig[..sig.len() - 1]),
                "{ctx}: truncated"
            );
            assert!(
                !vk.verify(MESSAGE, &[sig.clone(), vec![0]].concat()),
                "{ctx}: extended"
            );
            assert!(!vk.verify(MESSAGE, &[]), "{ctx}: empty");
            assert!(!vk.verify(b"", &sig), "{ctx}: empty message");
        }
        // Another RSA key (made by openssl, which is fast).
        let dir = tempfile::tempdir().unwrap();
        let pem = openssl_key(
            dir.path(),
            "k.pem",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        );
        let other_rsa = SigningKey::from_pkcs8_pem(&pem).unwrap();
        let sig = rsa.sign(MESSAGE).unwrap();
        assert!(!other_rsa.verifying_key().verify(MESSAGE, &sig));
        assert!(other_rsa
            .verifying_key()
            .verify(MESSAGE, &other_rsa.sign(MESSAGE).unwrap()));
    }

    #[test]
    fn pem_round_trips() {
        for key in [rsa_key(), &ed_key()] {
            let pem = key.to_pkcs8_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{key:?}");
            let back = SigningKey::from_pkcs8_pem(&pem).unwrap();
            assert_eq!(back.algorithm(), key.algorithm());
            assert_eq!(back.verifying_key(), key.verifying_key());
            assert_eq!(back.sign(MESSAGE).unwrap(), key.sign(MESSAGE).unwrap());
            assert_eq!(*back.to_pkcs8_pem().unwrap(), *pem);

            let vk = key.verifying_key();
            let public = vk.to_public_key_pem().unwrap();
            assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
            let parsed = VerifyingKey::from_public_key_pem(&public).unwrap();
            assert_eq!(parsed, vk);
            assert_eq!(parsed.fingerprint(), vk.fingerprint());
            assert_eq!(parsed.algorithm(), key.algorithm());
            assert!(parsed.verify(MESSAGE, &key.sign(MESSAGE).unwrap()));
            // Windows line endings and surrounding blanks are tolerated.
            let crlf = format!("\n{}\n", public.replace('\n', "\r\n"));
            assert_eq!(VerifyingKey::from_public_key_pem(&crlf).unwrap(), vk);

            // Each parser refuses the other kind of document, without echoing it.
            let err = SigningKey::from_pkcs8_pem(&public).unwrap_err();
            assert!(!format!("{err:#}").contains(pem_body(&public)[0]));
            assert_eq!(code(err), ErrorCode::InvalidInput);
            let err = VerifyingKey::from_public_key_pem(&pem).unwrap_err();
            let chain = format!("{err:#}");
            let text = format!("{chain} {:?}", Error::from(err));
            for line in pem_body(&pem) {
                assert!(!text.contains(line), "{text}");
            }
        }
        assert_ne!(rsa_key().verifying_key(), ed_key().verifying_key());
    }

    #[test]
    fn malformed_keys_are_invalid_input() {
        let pem = ed_key().to_pkcs8_pem().unwrap();
        let body = pem_body(&pem)[0];
        let damaged = pem.replace(
            body,
            &body.replace('A', "B").replacen(&body[..4], "!!!!", 1),
        );
        let truncated = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            &body[..20]
        );
        for bad in [
            "",
            "garbage",
            &damaged,
            &truncated,
            "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
        ] {
            let err = SigningKey::from_pkcs8_pem(bad).unwrap_err();
            let text = format!("{err:#}");
            assert!(!text.contains(&body[4..20]), "{text}");
            assert_eq!(code(err), ErrorCode::InvalidInput, "{text}");
            let err = VerifyingKey::from_public_key_pem(bad).unwrap_err();
            assert_eq!(code(err), ErrorCode::InvalidInput);
        }
    }

    #[test]
    fn openssl_keys_load_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (alg, args) in [
            (Algorithm::Ed25519, vec!["-algorithm", "ed25519"]),
            (
                Algorithm::Rsa2048,
                vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            ),
        ] {
            let pem = openssl_key(d, "key.pem", &args);
            let key = SigningKey::from_pkcs8_pem(&pem).unwrap();
            assert_eq!(key.algorithm(), alg);
            // openssl derives the same public key.
            let out = openssl(&["pkey", "-in", "key.pem", "-pubout"], d);
            assert!(out.status.success());
            let theirs =
                VerifyingKey::from_public_key_pem(&String::from_utf8(out.stdout).unwrap()).unwrap();
            assert_eq!(theirs, key.verifying_key());
            // openssl's signature verifies with ours.
            std::fs::write(d.join("msg.txt"), MESSAGE).unwrap();
            let out = match alg {
                Algorithm::Rsa2048 => openssl(
                    &[
                        "dgst", "-sha256", "-sign", "key.pem", "-out", "sig.bin", "msg.txt",
                    ],
                    d,
                ),
                Algorithm::Ed25519 => openssl(
                    &[
                        "pkeyutl", "-sign", "-inkey", "key.pem", "-rawin", "-in", "msg.txt",
                        "-out", "sig.bin",
                    ],
                    d,
                ),
            };
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let theirs = std::fs::read(d.join("sig.bin")).unwrap();
            assert_eq!(
                theirs,
                key.sign(MESSAGE).unwrap(),
                "{alg}: both schemes are deterministic"
            );
            assert!(key.verifying_key().verify(MESSAGE, &theirs));
            std::fs::remove_file(d.join("key.pem")).unwrap();
        }
        // Another RSA size.
        let pem = openssl_key(
            d,
            "small.pem",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
        );
        let err = SigningKey::from_pkcs8_pem(&pem).unwrap_err();
        assert!(format!("{err:#}").contains("1024 bits"));
        assert_eq!(code(err), ErrorCode::InvalidInput);
        let out = openssl(&["pkey", "-in", "small.pem", "-pubout"], d);
        let err =
            VerifyingKey::from_public_key_pem(&String::from_utf8(out.stdout).unwrap()).unwrap_err();
        assert_eq!(code(err), ErrorCode::InvalidInput);
        // Another algorithm.
        let pem = openssl_key(
            d,
            "ec.pem",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        );
        let err = SigningKey::from_pkcs8_pem(&pem).unwrap_err();
        assert!(format!("{err:#}").contains("not supported"));
        assert_eq!(code(err), ErrorCode::InvalidInput);
        // PKCS#1 ("BEGIN RSA PRIVATE KEY"): refused with the conversion command.
        let out = openssl(&["genrsa", "-traditional", "2048"], d);
        assert!(out.status.success());
        let err = Error::from(
            SigningKey::from_pkcs8_pem(&String::from_utf8(out.stdout).unwrap()).unwrap_err(),
        );
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.hint.unwrap().contains("openssl pkcs8 -topk8"));
    }

    /// Our public key and signature, checked by the `openssl` command alone.
    #[test]
    fn openssl_verifies_our_signatures_and_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in [rsa_key(), &ed_key()] {
            let vk = key.verifying_key();
            std::fs::write(d.join("pub.pem"), vk.to_public_key_pem().unwrap()).unwrap();
            std::fs::write(d.join("msg.txt"), MESSAGE).unwrap();
            std::fs::write(d.join("bad.txt"), flip_bit(MESSAGE, 3)).unwrap();
            std::fs::write(d.join("sig.bin"), key.sign(MESSAGE).unwrap()).unwrap();
            let verify = |msg: &str| match key.algorithm() {
                Algorithm::Rsa2048 => openssl(
                    &[
                        "dgst",
                        "-sha256",
                        "-verify",
                        "pub.pem",
                        "-signature",
                        "sig.bin",
                        msg,
                    ],
                    d,
                ),
                Algorithm::Ed25519 => openssl(
                    &[
                        "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", msg,
                        "-sigfile", "sig.bin",
                    ],
                    d,
                ),
            };
            let good = verify("msg.txt");
            assert!(
                good.status.success(),
                "{key:?}: {}",
                String::from_utf8_lossy(&good.stderr)
            );
            assert!(
                String::from_utf8_lossy(&good.stdout).contains("Verified"),
                "{key:?}"
            );
            let bad = verify("bad.txt");
            assert!(
                !bad.status.success(),
                "{key:?}: openssl accepted a flipped message"
            );

            let out = openssl(&["pkey", "-pubin", "-in", "pub.pem", "-outform", "DER"], d);
            assert!(out.status.success());
            let expected = format!("sha256:{}", hex::encode(Sha256::digest(&out.stdout)));
            assert_eq!(vk.fingerprint(), expected, "{key:?}");
            assert_eq!(vk.fingerprint().len(), "sha256:".len() + 64);
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        for key in [rsa_key(), &ed_key()] {
            let vk = key.verifying_key();
            let printed = format!("{key:?} {key:#?} {vk:?} {vk:#?}");
            assert!(printed.contains(&vk.fingerprint()), "{printed}");
            assert!(printed.contains(key.algorithm().name()), "{printed}");
            assert!(!printed.contains("BEGIN"), "{printed}");
            let private = key.to_pkcs8_pem().unwrap();
            let public = vk.to_public_key_pem().unwrap();
            for pem in [private.as_str(), public.as_str()] {
                for line in pem_body(pem) {
                    for chunk in line.as_bytes().chunks(12).filter(|c| c.len() == 12) {
                        let chunk = std::str::from_utf8(chunk).unwrap();
                        assert!(!printed.contains(chunk), "Debug output contains `{chunk}`");
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn key_file_is_created_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-key.pem");
        let location = KeyLocation::File(path.clone());
        let key = ed_key();
        store(&location, &key).await.unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            *key.to_pkcs8_pem().unwrap()
        );
        let loaded = load(&location).await.unwrap();
        assert_eq!(loaded.verifying_key(), key.verifying_key());

        // A second store refuses and leaves the first key alone.
        let err = store(&location, &ed_key()).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::AlreadyExists);
        assert!(err.message.contains("refusing to overwrite"), "{err}");
        assert_eq!(
            load(&location).await.unwrap().verifying_key(),
            key.verifying_key()
        );

        // RSA too.
        let rsa_location = KeyLocation::File(dir.path().join("rsa.pem"));
        store(&rsa_location, rsa_key()).await.unwrap();
        let loaded = load(&rsa_location).await.unwrap();
        assert_eq!(loaded.algorithm(), Algorithm::Rsa2048);
        assert_eq!(loaded.verifying_key(), rsa_key().verifying_key());

        // A folder that does not exist.
        let err = store(&KeyLocation::File(dir.path().join("no/such/key.pem")), &key)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::DataDirUnusable);
    }

    #[tokio::test]
    async fn load_refuses_a_key_file_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let location = KeyLocation::File(path.clone());
        store(&location, &ed_key()).await.unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load(&location).await.unwrap_err();
            assert_eq!(err.code, ErrorCode::DataDirUnusable, "{mode:o}");
            assert_eq!(
                err.hint.as_deref(),
                Some(format!("chmod 600 {}", path.display()).as_str())
            );
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            load(&location).await.unwrap();
        }
    }

    #[tokio::test]
    async fn load_of_a_missing_or_malformed_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.pem");
        let err = load(&KeyLocation::File(path)).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
        assert!(err.hint.unwrap().contains("pganalytics audit keygen"));

        // A public key where the private key should be: refused, not echoed.
        let public = ed_key().verifying_key().to_public_key_pem().unwrap();
        let path = dir.path().join("public.pem");
        std::fs::write(&path, &public).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = load(&KeyLocation::File(path.clone())).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.message.contains(&path.display().to_string()), "{err}");
        assert!(!err.to_string().contains(pem_body(&public)[0]), "{err}");

        // A folder is not a key file.
        let err = load(&KeyLocation::File(dir.path().to_path_buf()))
            .await
            .unwrap_err();
        assert_ne!(err.code, ErrorCode::Internal, "{err}");
    }
}
