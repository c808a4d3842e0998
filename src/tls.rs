//! TLS settings (feature `tls`): the server's certificate and key
//! ([`ServerTls`]), and what a client trusts and shows ([`ClientTls`]).
//! Both build rustls configurations on the ring provider, with ALPN
//! `http/1.1`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS settings could not be made. Each says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read: check the path and its permissions.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The PEM held no certificate: pass the certificate chain (`-----BEGIN
    /// CERTIFICATE-----`), leaf first.
    #[error("no certificate found in the PEM data")]
    NoCertificate,
    /// The PEM held no private key: pass the key (`-----BEGIN PRIVATE KEY
    /// -----`, PKCS#8, PKCS#1 or SEC1).
    #[error("no private key found in the PEM data: {0}")]
    NoKey(String),
    /// The PEM data is malformed.
    #[error("bad PEM data: {0}")]
    Pem(String),
    /// rustls refused the certificate or key (a key that does not match
    /// the certificate, an unsupported algorithm).
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::NoKey(e.to_string()))
}

/// A server's certificate chain and private key, for https/wss listeners.
///
/// ```
/// # fn main() -> Result<(), hvws::TlsError> {
/// # let dir = std::env::temp_dir().join(format!("hvws-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// # std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
/// # std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
/// # let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
/// let tls = hvws::ServerTls::from_pem_files(&cert, &key)?;
/// let mut server = hvws::Server::new(MyApp);
/// server.init_tls_addr("127.0.0.1:0".parse().unwrap(), tls).unwrap();
/// # struct MyApp;
/// # impl hvws::HvWebServer for MyApp {}
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("alpn", &self.config.alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// From a PEM certificate chain (leaf first) and a PEM private key.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<ServerTls, TlsError> {
        let certs = certs_from_pem(cert_chain)?;
        let key = key_from_pem(key)?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
        })
    }

    /// From PEM files: the certificate chain and the private key.
    pub fn from_pem_files(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<ServerTls, TlsError> {
        ServerTls::from_pem(&read_file(cert_chain.as_ref())?, &read_file(key.as_ref())?)
    }

    /// From a rustls configuration of your own (client certificates,
    /// several certificates by SNI, other providers). Its ALPN list is
    /// used as given; hvws speaks `http/1.1`.
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> ServerTls {
        ServerTls { config }
    }

    /// The rustls configuration, for a [`TlsLayer`](crate::proto::tls::TlsLayer)
    /// on your own I/O.
    pub fn rustls(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }
}

/// What a client trusts when it connects to `wss://`, and the certificate
/// it shows if the server asks for one (mutual TLS).
///
/// By default it trusts the Mozilla roots of `webpki-roots` and nothing
/// else; add a CA for a server whose certificate is self-signed or made by
/// a private CA (development, tests, a company network). There is no switch
/// that accepts any certificate.
///
/// ```
/// # let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap().cert.pem();
/// let mut config = hvws::ClientConfig::default();
/// config.tls = hvws::ClientTls::default().add_ca_pem(ca.as_bytes())?;
/// # Ok::<(), hvws::TlsError>(())
/// ```
#[derive(Clone)]
pub struct ClientTls {
    roots: rustls::RootCertStore,
    client_cert: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots.len())
            .field("client_cert", &self.client_cert.is_some())
            .finish()
    }
}

impl Default for ClientTls {
    /// The Mozilla roots, no client certificate.
    fn default() -> ClientTls {
        ClientTls {
            roots: rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
            client_cert: None,
        }
    }
}

impl ClientTls {
    /// Trusts no root at all: only the CAs added after it.
    pub fn empty() -> ClientTls {
        ClientTls {
            roots: rustls::RootCertStore::empty(),
            client_cert: None,
        }
    }

    /// Also trusts every CA certificate in `pem`.
    pub fn add_ca_pem(mut self, pem: &[u8]) -> Result<ClientTls, TlsError> {
        for cert in certs_from_pem(pem)? {
            self.roots.add(cert)?;
        }
        Ok(self)
    }

    /// Also trusts every CA certificate in the PEM file at `path`.
    pub fn add_ca_file(self, path: impl AsRef<Path>) -> Result<ClientTls, TlsError> {
        let pem = read_file(path.as_ref())?;
        self.add_ca_pem(&pem)
    }

    /// Shows this certificate chain and key when the server asks for a
    /// client certificate.
    pub fn client_cert_pem(mut self, cert_chain: &[u8], key: &[u8]) -> Result<ClientTls, TlsError> {
        self.client_cert = Some((certs_from_pem(cert_chain)?, Arc::new(key_from_pem(key)?)));
        Ok(self)
    }

    /// The rustls configuration these settings make, for a
    /// [`TlsLayer`](crate::proto::tls::TlsLayer) on your own I/O.
    pub fn build(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots.clone());
        let mut config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((certs, key)) => builder.with_client_auth_cert(certs.clone(), key.clone_key())?,
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
