//! TLS to PostgreSQL with rustls (no OpenSSL), with libpq's `sslmode` and `sslrootcert`.
//!
//! tokio-postgres' own URL parser knows `sslmode=disable|prefer|require` and refuses the
//! rest, so both settings are taken out of the connection string here and applied by this
//! module: `verify-ca` and `verify-full` become `require` for tokio-postgres plus a
//! certificate check of our own.
//!
//! | `sslmode` | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | never | – |
//! | `prefer` (default, as libpq) | if the server offers it | no (as libpq without a root file) |
//! | `require` | always | no; with `sslrootcert`, the chain (as libpq) |
//! | `verify-ca` | always | the chain, against `sslrootcert` |
//! | `verify-full` | always | the chain and the host name |
//!
//! `sslrootcert` is a PEM file of the CA certificates to trust, or `system` for the
//! platform's roots (as libpq 16). Without it, `verify-ca` and `verify-full` trust the
//! platform's roots (API.md: "default: the system's roots").

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, without checking its certificate.
    #[default]
    Prefer,
    /// TLS always; the certificate is checked only when `sslrootcert` is given.
    Require,
    /// TLS always, the certificate chain checked against `sslrootcert`.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    pub(crate) fn parse(raw: &str) -> Result<Self, TlsSettingsError> {
        match raw {
            "disable" => Ok(Self::Disable),
            "allow" | "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(TlsSettingsError::Mode(other.to_owned())),
        }
    }

    /// What tokio-postgres is told (it knows no verification modes).
    pub(crate) fn for_driver(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Driver;
        match self {
            Self::Disable => Driver::Disable,
            Self::Prefer => Driver::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => Driver::Require,
        }
    }
}

/// Where the trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file.
    File(PathBuf),
    /// The platform's trust store (`sslrootcert=system`).
    System,
}

/// The TLS part of a connection string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`.
    pub root_cert: Option<RootCert>,
}

/// A TLS setting that cannot be used. Says which, never the rest of the URL.
#[derive(Debug, thiserror::Error)]
pub enum TlsSettingsError {
    /// An `sslmode` libpq does not know.
    #[error("sslmode={0:?} is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    Mode(String),
    /// The root certificate file.
    #[error("sslrootcert {path}: {reason}")]
    RootFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The connector tokio-postgres uses for every connection of a store: built once from the
/// settings (the root file is read at start, so a bad one fails the start).
#[derive(Clone)]
pub struct RustlsConnector {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for RustlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustlsConnector").finish_non_exhaustive()
    }
}

impl RustlsConnector {
    /// The connector for `settings`; `None` for `sslmode=disable`.
    pub fn new(settings: &TlsSettings) -> Result<Option<Self>, TlsSettingsError> {
        if settings.mode == SslMode::Disable {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifying = matches!(settings.mode, SslMode::VerifyCa | SslMode::VerifyFull);
        let root = match (&settings.root_cert, verifying) {
            (Some(root), _) => Some(root.clone()),
            (None, true) => Some(RootCert::System),
            (None, false) => None,
        };
        let verifier: Arc<dyn ServerCertVerifier> = match (root, settings.mode) {
            (None, _) => Arc::new(AnyCertificate(provider.clone())),
            (Some(root), mode) => {
                let webpki = webpki_verifier(&root, provider.clone())?;
                if mode == SslMode::VerifyFull {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsSettingsError::RootFile {
                path: "(TLS set-up)".to_owned(),
                reason: err.to_string(),
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Some(Self {
            config: Arc::new(config),
        }))
    }
}

fn webpki_verifier(
    root: &RootCert,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsSettingsError> {
    let mut roots = RootCertStore::empty();
    match root {
        RootCert::File(path) => {
            let shown = path.display().to_string();
            let failed = |reason: String| TlsSettingsError::RootFile {
                path: shown.clone(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|err| failed(err.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| failed(err.to_string()))?;
            if certs.is_empty() {
                return Err(failed("no certificate in the file".to_owned()));
            }
            for cert in certs {
                roots.add(cert).map_err(|err| failed(err.to_string()))?;
            }
        }
        RootCert::System => {
            // The platform's store, as the Redis client's TLS reads it (rustls-native-certs);
            // a certificate it cannot load is left out.
            let native = rustls_native_certs::load_native_certs().certs;
            if native.is_empty() {
                return Err(TlsSettingsError::RootFile {
                    path: "system".to_owned(),
                    reason: "the platform's trust store holds no certificate".to_owned(),
                });
            }
            for cert in native {
                // A root the platform holds but webpki cannot parse is skipped.
                let _ = roots.add(cert);
            }
        }
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|err| TlsSettingsError::RootFile {
            path: "(roots)".to_owned(),
            reason: err.to_string(),
        })?;
    Ok(verifier)
}

/// `require`/`prefer` without a root file: encryption without authentication, as libpq.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca` (and `require` with a root file): the chain must lead to a trusted root; the
/// name in the certificate is not compared with the host.
#[derive(Debug)]
struct ChainOnly(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        // An IP address connects as an IP: its certificate must name that address.
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        Ok(RustlsConnect {
            connector: tokio_rustls::TlsConnector::from(Arc::clone(&self.config)),
            name,
        })
    }
}

/// One connection's TLS handshake.
pub struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = self.connector.connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

/// A TLS connection to the server.
pub struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM channel binding needs the server certificate's hash; "none" still
        // authenticates with SCRAM-SHA-256 (as libpq's channel_binding=prefer).
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::{UrlError, split_url};

    #[test]
    fn tls_settings_leave_the_url_as_tokio_postgres_reads_it() -> Result<(), UrlError> {
        let (rest, s) = split_url(
            "postgres://u:p@db:5432/auth?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )?;
        assert_eq!(rest, "postgres://u:p@db:5432/auth?application_name=x");
        assert_eq!(s.tls.mode, SslMode::VerifyFull);
        assert_eq!(s.tls.root_cert, Some(RootCert::File("/etc/ca.pem".into())));
        let (rest, s) = split_url("host=db sslmode=require user=u")?;
        assert_eq!(rest, "host=db user=u");
        assert_eq!(s.tls.mode, SslMode::Require);
        let (rest, s) = split_url("postgres://db/auth")?;
        assert_eq!(
            (rest.as_str(), s.tls.mode),
            ("postgres://db/auth", SslMode::Prefer)
        );
        Ok(())
    }

    #[test]
    fn verification_without_a_root_trusts_the_system_and_unknown_modes_are_refused() {
        let settings = split_url("postgres://db/auth?sslmode=verify-full")
            .map(|(_, s)| s.tls)
            .unwrap_or_default();
        assert_eq!(settings.mode, SslMode::VerifyFull);
        assert!(settings.root_cert.is_none());
        assert!(
            matches!(RustlsConnector::new(&settings), Ok(Some(_))),
            "the system's roots"
        );
        let err = split_url("postgres://u:secret@db/auth?sslmode=verify-everything").err();
        let shown = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            shown.contains("verify-everything") && !shown.contains("secret"),
            "{shown}"
        );
    }

    #[test]
    fn a_root_file_that_is_missing_or_holds_no_certificate_is_refused_at_start() {
        let missing = TlsSettings {
            mode: SslMode::VerifyFull,
            root_cert: Some(RootCert::File("/nonexistent/ca.pem".into())),
        };
        assert!(RustlsConnector::new(&missing).is_err());
        let disabled = TlsSettings {
            mode: SslMode::Disable,
            root_cert: None,
        };
        assert!(matches!(RustlsConnector::new(&disabled), Ok(None)));
    }
}
