//! TLS for the client and admin ports, and the configurations of the peers' mutual TLS, built
//! from PEM files and rebuilt from them while the node runs.
//!
//! Reload keeps serving: a new set of configurations is built from the files first and swapped
//! in only when all of it is valid, so a half-written or wrong file leaves the node on its old
//! certificate and the error is reported. Connections already open keep the session they
//! negotiated; connections accepted after the swap get the new certificate, key and CA.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use conclave_transport::PeerTls;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio_rustls::TlsAcceptor;

/// Whether clients of the TLS client port must present a certificate signed by the CA; the
/// values and meaning of Redis's `tls-auth-clients`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthClients {
    /// A certificate is required (Redis's default).
    Yes,
    /// No certificate is asked for.
    No,
    /// A certificate is checked if the client sends one, and not required.
    Optional,
}

impl FromStr for AuthClients {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "yes" => Ok(AuthClients::Yes),
            "no" => Ok(AuthClients::No),
            "optional" => Ok(AuthClients::Optional),
            _ => Err(format!("{text:?} is not yes, no or optional")),
        }
    }
}

/// Where a node's TLS material lives, and how client certificates are treated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The node's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA certificates (PEM) that client and peer certificates must chain to.
    pub ca: Option<PathBuf>,
    /// Client certificates on the client port (and, as an alternative to the token, on the
    /// admin port).
    pub auth_clients: AuthClients,
}

/// Why TLS material could not be loaded. The message names the setting and the file.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file is missing, unreadable or holds no usable PEM.
    #[error("{setting} {path}: {reason}")]
    File {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The files are readable but do not make a configuration (a key that does not match the
    /// certificate, a CA that is not a certificate authority).
    #[error("TLS: {0}")]
    Invalid(String),
}

fn file_error(setting: &'static str, path: &Path, reason: impl fmt::Display) -> TlsError {
    TlsError::File { setting, path: path.to_path_buf(), reason: reason.to_string() }
}

/// One consistent set of configurations, all built from the same reading of the files.
struct Loaded {
    client: Arc<ServerConfig>,
    admin: Arc<ServerConfig>,
    peer: Option<(Arc<ServerConfig>, Arc<ClientConfig>)>,
    /// How a follower reaches the leader's TLS client port: the CA's roots and this node's
    /// certificate as client certificate. `None` without a CA.
    forward: Option<Arc<ClientConfig>>,
    /// SHA-256 of the leaf certificate, hex: what operators compare to know which one is served.
    fingerprint: String,
}

/// A node's TLS state: the configurations new connections use, and how to rebuild them.
pub struct TlsState {
    files: TlsFiles,
    cluster: bool,
    current: RwLock<Arc<Loaded>>,
    /// The files' modification times at the last load, to notice when they change.
    stamps: Mutex<Vec<Option<Stamp>>>,
    peer: Option<Arc<PeerTls>>,
    /// Successful reloads since start.
    pub reloads: AtomicU64,
    /// Reloads refused because of a bad file, since start.
    pub reload_failures: AtomicU64,
}

impl fmt::Debug for TlsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsState").field("files", &self.files).finish_non_exhaustive()
    }
}

impl TlsState {
    /// Loads the files; `cluster` also builds the peers' mutual TLS (which needs the CA).
    pub fn load(files: TlsFiles, cluster: bool) -> Result<TlsState, TlsError> {
        let stamps = stamps(&files);
        let loaded = build(&files, cluster)?;
        if let Some(warning) = key_exposure(&files.key) {
            tracing::warn!("{warning}");
        }
        if let Some(warning) = validity_warning(&files.cert) {
            tracing::warn!("{warning}");
        }
        let peer =
            loaded.peer.clone().map(|(server, client)| Arc::new(PeerTls::new(server, client)));
        Ok(TlsState {
            files,
            cluster,
            current: RwLock::new(Arc::new(loaded)),
            stamps: Mutex::new(stamps),
            peer,
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        })
    }

    fn current(&self) -> Arc<Loaded> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The peers' mutual TLS, for the transport, when `tls_cluster` is on.
    pub fn peer(&self) -> Option<Arc<PeerTls>> {
        self.peer.clone()
    }

    /// An acceptor for a new client connection, with the current certificate.
    pub fn client_acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current().client.clone())
    }

    /// An acceptor for a new admin connection, with the current certificate.
    pub fn admin_acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current().admin.clone())
    }

    /// The configuration for forwarding writes to the leader's TLS client port, when a CA is
    /// set to check the leader's certificate with.
    pub fn forward_config(&self) -> Option<Arc<ClientConfig>> {
        self.current().forward.clone()
    }

    /// The SHA-256 fingerprint (hex) of the certificate new connections get.
    pub fn fingerprint(&self) -> String {
        self.current().fingerprint.clone()
    }

    /// The files and settings this state loads from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again and, if they make a valid configuration, serves it to new
    /// connections. On error the old configuration stays. Returns the new fingerprint.
    pub fn reload(&self) -> Result<String, TlsError> {
        let stamps = stamps(&self.files);
        let outcome = build(&self.files, self.cluster);
        // The stamps are taken even on failure, so a bad file is reported once, not every poll;
        // fixing the file changes its stamp again.
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) = stamps;
        match outcome {
            Ok(loaded) => {
                if let (Some(peer), Some((server, client))) = (&self.peer, &loaded.peer) {
                    peer.replace(server.clone(), client.clone());
                }
                let fingerprint = loaded.fingerprint.clone();
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%fingerprint, "TLS certificates reloaded");
                Ok(fingerprint)
            }
            Err(error) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, "TLS reload failed; keeping the current certificates");
                Err(error)
            }
        }
    }

    /// Reloads when a file's modification time changed since the last load; `None` when none
    /// did.
    pub fn reload_if_changed(&self) -> Option<Result<String, TlsError>> {
        let now = stamps(&self.files);
        let changed = *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) != now;
        changed.then(|| self.reload())
    }
}

/// A warning when the node's own certificate is expired or not valid yet, by this host's clock:
/// every peer and client would refuse it in the handshake, and the start is where an operator
/// looks. Not a refusal, so that a node whose clock is off can still start and be fixed.
fn validity_warning(cert: &Path) -> Option<String> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::CertificateError::{Expired, ExpiredContext, NotValidYet, NotValidYetContext};
    let chain = certificates("tls_cert_file", cert).ok()?;
    let leaf = chain.first()?;
    // The leaf as its own anchor: the leaf's dates are checked before its issuer is looked for,
    // so a date problem is reported whatever the chain and the names; anything else is not
    // this check's business.
    let mut roots = RootCertStore::empty();
    roots.add(leaf.clone()).ok()?;
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .ok()?;
    let name = rustls_pki_types::ServerName::try_from("conclave.invalid").ok()?;
    let now = rustls_pki_types::UnixTime::now();
    match verifier.verify_server_cert(leaf, &chain[1..], &name, &[], now) {
        Err(rustls::Error::InvalidCertificate(
            error @ (Expired | ExpiredContext { .. } | NotValidYet | NotValidYetContext { .. }),
        )) => Some(format!(
            "tls_cert_file {}: {error}; peers and clients will refuse it",
            cert.display()
        )),
        _ => None,
    }
}

/// A warning when the private key file can be read by other users than its owner (group or
/// others): whoever reads it can impersonate this node to clients and peers. Only a warning, not
/// a refusal: a key shared with a service group (mode 0640) is a common, deliberate setup.
fn key_exposure(key: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(key).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "tls_key_file {} has mode {mode:04o}: users other than its owner can read this \
             node's private key; make it 0600",
            key.display()
        )
    })
}

fn paths(files: &TlsFiles) -> impl Iterator<Item = &PathBuf> {
    [Some(&files.cert), Some(&files.key), files.ca.as_ref()].into_iter().flatten()
}

/// What tells a file's versions apart: its modification time, and also its inode, length and
/// change time, because a bad file replaced by a good one within the file system's timestamp
/// granularity, or installed with its old modification time kept (`cp -p`, `install -p`, a
/// rename of a file made earlier), has the same modification time.
type Stamp = (SystemTime, u64, u64, i64, i64);

fn stamps(files: &TlsFiles) -> Vec<Option<Stamp>> {
    use std::os::unix::fs::MetadataExt;
    paths(files)
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.ino(), meta.len(), meta.ctime(), meta.ctime_nsec()))
        })
        .collect()
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| file_error(setting, path, format!("cannot read: {e}")))
}

fn certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(setting, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(setting, path, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(setting, path, "holds no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The CA certificates in `path`, as trust anchors.
fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates("tls_ca_cert_file", path)? {
        store
            .add(cert)
            .map_err(|e| file_error("tls_ca_cert_file", path, format!("not a usable CA: {e}")))?;
    }
    Ok(store)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("tls_key_file", path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| file_error("tls_key_file", path, format!("no usable private key: {e}")))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds every configuration from the files.
fn build(files: &TlsFiles, cluster: bool) -> Result<Loaded, TlsError> {
    let certs = certificates("tls_cert_file", &files.cert)?;
    let key = private_key(&files.key)?;
    let roots = match &files.ca {
        None => None,
        Some(path) => Some(Arc::new(roots(path)?)),
    };
    let fingerprint = fingerprint(certs[0].as_ref());
    let server = |auth: AuthClients| -> Result<Arc<ServerConfig>, TlsError> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Invalid(e.to_string()))?;
        let builder = match (auth, &roots) {
            (AuthClients::No, _) => builder.with_no_client_auth(),
            (_, None) => {
                return Err(TlsError::Invalid(
                    "client certificates need tls_ca_cert_file to check them against".into(),
                ))
            }
            (auth, Some(roots)) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
                let verifier = if auth == AuthClients::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier.build().map_err(|e| {
                    TlsError::Invalid(format!("tls_ca_cert_file: cannot verify clients: {e}"))
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(certs.clone(), key.clone_key()).map_err(|e| {
            TlsError::Invalid(format!(
                "tls_key_file {} does not go with tls_cert_file {}: {e}",
                files.key.display(),
                files.cert.display()
            ))
        })?;
        Ok(Arc::new(config))
    };
    let client = server(files.auth_clients)?;
    // On the admin port a certificate is an alternative to the bearer token, so it is asked
    // for but never required there.
    let admin_auth = match files.auth_clients {
        AuthClients::No => AuthClients::No,
        AuthClients::Yes | AuthClients::Optional => AuthClients::Optional,
    };
    let admin = server(admin_auth)?;
    // As a client (to peers and to the leader's client port) the node presents its own
    // certificate and trusts the CA.
    let dialer = match &roots {
        None => None,
        Some(roots) => {
            let config = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Invalid(e.to_string()))?
                .with_root_certificates(roots.clone())
                .with_client_auth_cert(certs.clone(), key.clone_key())
                .map_err(|e| TlsError::Invalid(format!("node client certificate: {e}")))?;
            Some(Arc::new(config))
        }
    };
    let peer = match (cluster, &dialer) {
        (false, _) => None,
        (true, None) => return Err(TlsError::Invalid("tls_cluster needs tls_ca_cert_file".into())),
        (true, Some(dialer)) => Some((server(AuthClients::Yes)?, dialer.clone())),
    };
    Ok(Loaded { client, admin, peer, forward: dialer, fingerprint })
}

/// Lower-case hex, as fingerprints are usually shown.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 fingerprint (hex) of a DER certificate, as [`TlsState::fingerprint`] gives it.
pub fn fingerprint(der: &[u8]) -> String {
    hex(&Sha256::digest(der))
}

/// A client's TLS configuration: trust the CA in `ca` and, with `identity` (certificate and key
/// files), present a client certificate. For the command line's admin calls and for tests.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?
        .with_root_certificates(roots(ca)?);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(certificates("tls_cert_file", cert)?, private_key(key)?)
            .map_err(|e| {
                TlsError::Invalid(format!("client certificate {}: {e}", cert.display()))
            })?,
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA and one leaf certificate signed by it, as PEM: (ca, cert, key).
    fn pems() -> (String, String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
        (ca.pem(), leaf.pem(), key.serialize_pem())
    }

    fn write(dir: &Path, (ca, cert, key): &(String, String, String)) -> TlsFiles {
        std::fs::write(dir.join("ca.crt"), ca).unwrap();
        std::fs::write(dir.join("node.crt"), cert).unwrap();
        std::fs::write(dir.join("node.key"), key).unwrap();
        TlsFiles {
            cert: dir.join("node.crt"),
            key: dir.join("node.key"),
            ca: Some(dir.join("ca.crt")),
            auth_clients: AuthClients::Yes,
        }
    }

    fn der_fingerprint(pem: &str) -> String {
        fingerprint(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().as_ref())
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let files = write(dir.path(), &pems());
        assert!(TlsState::load(files.clone(), true).is_ok());
        let missing = TlsFiles { cert: dir.path().join("nope.crt"), ..files.clone() };
        let error = TlsState::load(missing, false).unwrap_err().to_string();
        assert!(error.starts_with("tls_cert_file ") && error.contains("nope.crt"), "{error}");
        std::fs::write(dir.path().join("garbage.key"), "not a key").unwrap();
        let garbage = TlsFiles { key: dir.path().join("garbage.key"), ..files.clone() };
        let error = TlsState::load(garbage, false).unwrap_err().to_string();
        assert!(error.starts_with("tls_key_file ") && error.contains("garbage.key"), "{error}");
        let (_, _, other_key) = pems();
        std::fs::write(dir.path().join("other.key"), other_key).unwrap();
        let mismatched = TlsFiles { key: dir.path().join("other.key"), ..files.clone() };
        let error = TlsState::load(mismatched, false).unwrap_err().to_string();
        assert!(error.contains("does not go with tls_cert_file"), "{error}");
        let no_ca = TlsFiles { ca: None, auth_clients: AuthClients::No, ..files };
        assert!(TlsState::load(no_ca.clone(), false).is_ok(), "no CA without client certificates");
        assert!(TlsState::load(no_ca, true).is_err(), "peer TLS needs the CA");
    }

    /// A reload serves the new files; a reload from a bad file keeps the last good ones.
    #[test]
    fn reload_swaps_only_a_valid_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let first = pems();
        let state = TlsState::load(write(dir.path(), &first), true).unwrap();
        assert_eq!(state.fingerprint(), der_fingerprint(&first.1));
        assert!(state.reload_if_changed().is_none(), "nothing changed");

        let second = pems();
        write(dir.path(), &second);
        assert_eq!(state.reload().unwrap(), der_fingerprint(&second.1));
        assert_eq!(state.fingerprint(), der_fingerprint(&second.1));

        std::fs::write(dir.path().join("node.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let error = state.reload().unwrap_err().to_string();
        assert!(error.contains("node.crt"), "{error}");
        assert_eq!(state.fingerprint(), der_fingerprint(&second.1), "the old one stays");
        assert_eq!(state.reloads.load(Ordering::Relaxed), 1);
        assert_eq!(state.reload_failures.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_key_readable_by_others_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let files = write(dir.path(), &pems());
        let mode = |mode| std::fs::Permissions::from_mode(mode);
        std::fs::set_permissions(&files.key, mode(0o600)).unwrap();
        assert_eq!(key_exposure(&files.key), None);
        std::fs::set_permissions(&files.key, mode(0o644)).unwrap();
        let warning = key_exposure(&files.key).unwrap();
        assert!(warning.contains("node.key has mode 0644"), "{warning}");
        std::fs::set_permissions(&files.key, mode(0o640)).unwrap();
        assert!(key_exposure(&files.key).is_some());
    }

    #[test]
    fn an_expired_certificate_is_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let files = write(dir.path(), &pems());
        assert_eq!(validity_warning(&files.cert), None, "a current certificate");
        // Signed by a CA, as a node's certificate is.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let expired = params.clone().signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(&files.cert, expired.pem()).unwrap();
        let warning = validity_warning(&files.cert).unwrap();
        assert!(warning.contains("node.crt") && warning.contains("expired"), "{warning}");
        params.not_before = rcgen::date_time_ymd(2999, 1, 1);
        params.not_after = rcgen::date_time_ymd(3000, 1, 1);
        let early = params.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(&files.cert, early.pem()).unwrap();
        let warning = validity_warning(&files.cert).unwrap();
        assert!(warning.contains("not valid yet"), "{warning}");
    }

    /// A bad certificate replaced by a good one that carries the same modification time (copied
    /// with `cp -p`, or within the file system's timestamp granularity) is still picked up.
    #[test]
    fn a_good_file_after_a_bad_one_with_the_same_mtime_is_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let state = TlsState::load(write(dir.path(), &pems()), true).unwrap();
        let cert = dir.path().join("node.crt");
        let when = std::fs::metadata(&cert).unwrap().modified().unwrap();
        let good = std::fs::read(&cert).unwrap();
        // Another, good certificate and key, written and then the bad certificate over it.
        let next = pems();
        let staged = tempfile::tempdir().unwrap();
        write(staged.path(), &next);
        for name in ["node.key", "ca.crt"] {
            std::fs::copy(staged.path().join(name), dir.path().join(name)).unwrap();
        }
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        std::fs::File::options().write(true).open(&cert).unwrap().set_modified(when).unwrap();
        assert!(matches!(state.reload_if_changed(), Some(Err(_))), "the bad file is noticed");
        // The good certificate arrives with the very same modification time.
        let fresh = std::fs::read(staged.path().join("node.crt")).unwrap();
        assert_ne!(fresh, good);
        let replacement = dir.path().join("node.crt.new");
        std::fs::write(&replacement, &fresh).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&replacement)
            .unwrap()
            .set_modified(when)
            .unwrap();
        std::fs::rename(&replacement, &cert).unwrap();
        assert_eq!(state.reload_if_changed().map(Result::ok), Some(Some(der_fingerprint(&next.1))));
    }
}
