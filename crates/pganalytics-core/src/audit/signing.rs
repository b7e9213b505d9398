//! The checkpoint signing key: creating it (`audit keygen`) and finding the public key that
//! verifies the checkpoints.

use super::*;

impl AuditLog {
    /// Create the signing key (`audit keygen`): private key to the keyring or `key_file`,
    /// public key beside the config; then sign a first checkpoint of what is already logged.
    pub async fn keygen(
        &self,
        data_dir: &DataDir,
        algorithm: Algorithm,
        key_file: Option<PathBuf>,
        checkpoints: Option<PathBuf>,
    ) -> Result<AuditKeyInfo> {
        let mut config = data_dir.load_config()?;
        if self.sealer.has_key() {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                "the audit log already has a signing key",
            )
            .with_hint("existing checkpoints are signed with it; export its public key with `pganalytics audit export-public-key --out FILE`"));
        }
        if let Some(dir) = &checkpoints {
            if !dir.is_absolute() {
                return Err(Error::invalid_input(
                    "give the checkpoint folder as an absolute path",
                ));
            }
        }
        let key = tokio::task::spawn_blocking(move || SigningKey::generate(algorithm))
            .await
            .map_err(|e| Error::internal(format!("key generation task failed: {e}")))?
            .map_err(|e| Error::internal(format!("generate the audit signing key: {e}")))?;
        let location = match &key_file {
            Some(path) => KeyLocation::File(path.clone()),
            None => KeyLocation::Keyring {
                account: format!("audit-signing-key:{}", self.log_id),
            },
        };
        keys::store(&location, &key).await?;
        let public_path = data_dir.path().join("audit-public-key.pem");
        let pem = key
            .verifying_key()
            .to_public_key_pem()
            .map_err(|e| Error::internal(format!("encode the public key: {e}")))?;
        crate::data_dir::write_atomically(&public_path, pem.as_bytes())?;
        config.audit = AuditConfig {
            key_in_keyring: key_file.is_none(),
            key_file,
            public_key: Some(public_path.clone()),
            checkpoints: checkpoints.clone(),
        };
        data_dir.save_config(&config)?;
        let root = checkpoints.unwrap_or_else(|| default_checkpoints(data_dir));
        let info = AuditKeyInfo {
            algorithm: key.algorithm().to_string(),
            fingerprint: key.verifying_key().fingerprint(),
            private_key: location.to_string(),
            public_key_path: public_path.display().to_string(),
            checkpoints: root.display().to_string(),
        };
        // Other running processes pick the folder up from the config when they next start.
        self.sealer.set_store(Store::new(&root, self.log_id));
        self.sealer.set_key(location, key).await;
        Ok(info)
    }

    /// Whether verification has a key to work with (configured public key or signing key).
    pub fn has_key(&self, data_dir: &DataDir) -> Result<bool> {
        Ok(self.sealer.has_key() || data_dir.load_config()?.audit.public_key.is_some())
    }

    /// Where the private key is (`keyring entry …` or `file …`), when there is one.
    pub fn key_location(&self) -> Option<String> {
        self.sealer.location().map(|l| l.to_string())
    }

    /// The public key: the configured file, else derived from the signing key.
    pub async fn public_key(
        &self,
        data_dir: &DataDir,
        explicit: Option<&Path>,
    ) -> Result<VerifyingKey> {
        let config = data_dir.load_config()?;
        let path = explicit.map(Path::to_path_buf).or(config.audit.public_key);
        match path {
            Some(path) => {
                let pem = std::fs::read_to_string(&path).map_err(|e| {
                    Error::not_found(format!("cannot read the public key {}: {e}", path.display()))
                        .with_hint("export it with `pganalytics audit export-public-key --out FILE` on the machine that signs")
                })?;
                VerifyingKey::from_public_key_pem(&pem).map_err(|e| {
                    Error::invalid_input(format!("{} is not a PEM public key: {e}", path.display()))
                })
            }
            None => Ok(self.sealer.key().await?.verifying_key()),
        }
    }
}

/// Parse `rsa-2048` / `ed25519`.
pub fn parse_algorithm(text: Option<&str>) -> Result<Algorithm> {
    match text {
        None => Ok(Algorithm::Rsa2048),
        Some(t) => t.parse().map_err(|_| {
            Error::invalid_input(format!("unknown signature algorithm `{t}`"))
                .with_hint("use rsa-2048 (default) or ed25519")
        }),
    }
}
