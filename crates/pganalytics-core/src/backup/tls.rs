//! TLS on the replication connection, as libpq's `sslmode` asks for it: `SSLRequest`, the
//! server's one-byte answer, then a rustls handshake (ring's provider, as everywhere else
//! here). Certificates are checked as libpq checks them: not at all for `prefer` and
//! `require` (encryption against eavesdroppers only), against `sslrootcert` for `verify-ca`,
//! and also against the host name for `verify-full`. Client certificates are not sent.

use crate::error::{Error, ErrorCode, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sqlx::postgres::PgSslMode;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the connection does about TLS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// `sslmode=disable`: never (and always on a unix socket).
    Disable,
    /// `allow` or `prefer` (libpq's default): when the server offers it, certificate unchecked.
    #[default]
    Prefer,
    /// `require`: always, certificate unchecked.
    Require,
    /// `verify-ca`: always, the certificate signed by a CA in `root`.
    VerifyCa { root: PathBuf },
    /// `verify-full`: as `verify-ca`, and the certificate names the host.
    VerifyFull { root: PathBuf },
}

impl TlsMode {
    /// From the DSN's resolved `sslmode` and CA file (`ResolvedDsn::ssl_root_cert`).
    pub fn from_dsn(mode: PgSslMode, root: Option<&Path>) -> Result<TlsMode> {
        let root = || {
            root.map(Path::to_path_buf).ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidInput,
                    "sslmode=verify-ca and verify-full check the server's certificate, but no CA certificate is named: sslrootcert is not set (`system` is not supported for backups) and ~/.postgresql/root.crt does not exist",
                )
                .with_hint("name the CA certificate file in the server's DSN: sslrootcert=/path/to/ca.crt")
            })
        };
        Ok(match mode {
            PgSslMode::Disable => TlsMode::Disable,
            PgSslMode::Allow | PgSslMode::Prefer => TlsMode::Prefer,
            PgSslMode::Require => TlsMode::Require,
            PgSslMode::VerifyCa => TlsMode::VerifyCa { root: root()? },
            PgSslMode::VerifyFull => TlsMode::VerifyFull { root: root()? },
        })
    }

    fn name(&self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa { .. } => "verify-ca",
            TlsMode::VerifyFull { .. } => "verify-full",
        }
    }
}

/// The stream after TLS negotiation: encrypted, or plain when `prefer` met a server without
/// TLS.
pub(super) enum Negotiated {
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Plain(TcpStream),
}

/// Ask for TLS on a fresh TCP connection to `describe` and shake hands as `mode` requires.
/// `host` is the name a `verify-full` certificate must carry.
pub(super) async fn negotiate(
    mut tcp: TcpStream,
    mode: &TlsMode,
    host: &str,
    describe: &str,
) -> Result<Negotiated> {
    let config = client_config(mode)?;
    let mut request = bytes::BytesMut::new();
    postgres_protocol::message::frontend::ssl_request(&mut request);
    let io = |e: std::io::Error| {
        Error::new(
            ErrorCode::Unreachable,
            format!("asking {describe} for TLS failed: {e}"),
        )
    };
    tcp.write_all(&request).await.map_err(io)?;
    match tcp.read_u8().await.map_err(io)? {
        b'S' => {}
        b'N' if *mode == TlsMode::Prefer => return Ok(Negotiated::Plain(tcp)),
        b'N' => {
            return Err(Error::new(
                ErrorCode::Unreachable,
                format!(
                    "{describe} does not accept TLS connections, and the server's DSN says sslmode={}",
                    mode.name()
                ),
            )
            .with_hint("turn on `ssl` on the server (with a certificate), or lower sslmode in the DSN if this network is trusted"))
        }
        other => {
            return Err(Error::new(
                ErrorCode::Unreachable,
                format!("{describe} answered the TLS request with byte {other:#04x}: it is not a PostgreSQL server"),
            ))
        }
    }
    let name = ServerName::try_from(host.to_string()).map_err(|_| {
        Error::new(
            ErrorCode::InvalidInput,
            format!("`{host}` is not a host name TLS can check a certificate against"),
        )
    })?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            Error::new(
                ErrorCode::Unreachable,
                format!("the TLS handshake with {describe} failed: {e}"),
            )
            .with_hint(match mode {
                TlsMode::VerifyFull { .. } => "the server's certificate must be signed by a CA in sslrootcert and name the host the DSN connects to",
                TlsMode::VerifyCa { .. } => "the server's certificate must be signed by a CA in sslrootcert",
                _ => "check the server's ssl settings and its log",
            })
        })?;
    Ok(Negotiated::Tls(Box::new(tls)))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(mode: &TlsMode) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => Arc::new(Unchecked {
            provider: provider.clone(),
        }),
        TlsMode::VerifyCa { root } => Arc::new(AnyName(webpki(root, provider.clone())?)),
        TlsMode::VerifyFull { root } => webpki(root, provider.clone())?,
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS set-up: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The standard verifier over the CA certificates in `root`.
fn webpki(root: &Path, provider: Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>> {
    let unreadable = |why: String| {
        Error::new(
            ErrorCode::InvalidInput,
            format!(
                "the CA certificates in {} (sslrootcert) cannot be used: {why}",
                root.display()
            ),
        )
        .with_hint("name a PEM file holding the certificate of the CA that signed the server's")
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root).map_err(|e| unreadable(e.to_string()))? {
        let cert = cert.map_err(|e| unreadable(e.to_string()))?;
        roots.add(cert).map_err(|e| unreadable(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(unreadable("it holds no certificate".into()));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| unreadable(e.to_string()))
}

/// `prefer` and `require`: encryption without checking who answers, as libpq does. The
/// handshake's signatures are still checked against the certificate presented.
#[derive(Debug)]
struct Unchecked {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the name is not checked.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_as_libpq_reads_it() {
        let ca = Path::new("/etc/ca.pem");
        for (mode, want) in [
            (PgSslMode::Disable, TlsMode::Disable),
            (PgSslMode::Allow, TlsMode::Prefer),
            (PgSslMode::Prefer, TlsMode::Prefer),
            (PgSslMode::Require, TlsMode::Require),
            (PgSslMode::VerifyCa, TlsMode::VerifyCa { root: ca.into() }),
            (
                PgSslMode::VerifyFull,
                TlsMode::VerifyFull { root: ca.into() },
            ),
        ] {
            assert_eq!(TlsMode::from_dsn(mode, Some(ca)).unwrap(), want);
        }
        let err = TlsMode::from_dsn(PgSslMode::VerifyFull, None).unwrap_err();
        assert!(err.message.contains("no CA certificate"), "{err}");
        assert!(err.hint.unwrap_or_default().contains("sslrootcert="));
        assert_eq!(
            TlsMode::from_dsn(PgSslMode::Require, None).unwrap(),
            TlsMode::Require
        );
    }
}
