//! `conclave certs`: a private CA and certificates for a cluster's nodes and a client, for TLS
//! on the client, admin and peer ports (`conclave up --tls` uses it too).
//!
//! Every node certificate is valid as a server and as a client (peers dial each other with it
//! in mutual TLS) and names `localhost`, 127.0.0.1 and the addresses given with `--ip`, because
//! peers and clients check the certificate against the address they dial. Private keys are
//! written readable by their owner only (0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// Flags of `conclave certs`.
#[derive(Args, Debug)]
pub struct CertsArgs {
    /// Where to write ca.crt, ca.key, node-N.crt, node-N.key, client.crt and client.key.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// How many node certificates (node-1 ... node-N).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// More IP addresses or DNS names every node certificate names (repeatable), beside
    /// localhost and 127.0.0.1: the addresses peers and clients dial.
    #[arg(long = "name", value_name = "IP|DNS")]
    pub names: Vec<String>,
}

/// The files of one certificate and its key.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, 0600).
    pub key: PathBuf,
}

/// What [`generate`] wrote.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The CA certificate every node and client trusts.
    pub ca: PathBuf,
    /// `nodes[i]` is node i+1's.
    pub nodes: Vec<Identity>,
    /// A client certificate signed by the CA (CN `conclave-client`).
    pub client: Identity,
}

/// `conclave certs`.
pub fn run(args: &CertsArgs) -> Result<i32> {
    let generated = generate(&args.dir, args.nodes, &args.names)?;
    outln!("CA certificate: {}", generated.ca.display());
    for (i, node) in generated.nodes.iter().enumerate() {
        outln!("node {}: {} {}", i + 1, node.cert.display(), node.key.display());
    }
    outln!("client: {} {}", generated.client.cert.display(), generated.client.key.display());
    Ok(0)
}

/// Writes a new CA and `nodes` node certificates and one client certificate under `dir`.
pub fn generate(dir: &Path, nodes: usize, extra_names: &[String]) -> Result<Generated> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Conclave cluster CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).context("signing the CA certificate")?;
    let ca = dir.join("ca.crt");
    write_file(&ca, ca_cert.pem().as_bytes(), false)?;
    write_file(&dir.join("ca.key"), ca_key.serialize_pem().as_bytes(), true)?;

    let leaf = |name: &str, common_name: &str, sans: Vec<String>| -> Result<Identity> {
        let key = KeyPair::generate().context("generating a key")?;
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .with_context(|| format!("signing the certificate of {name}"))?;
        let identity = Identity {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        write_file(&identity.cert, cert.pem().as_bytes(), false)?;
        write_file(&identity.key, key.serialize_pem().as_bytes(), true)?;
        Ok(identity)
    };
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    names.extend(extra_names.iter().cloned());
    let nodes = (1..=nodes)
        .map(|id| leaf(&format!("node-{id}"), &format!("conclave node {id}"), names.clone()))
        .collect::<Result<Vec<_>>>()?;
    let client = leaf("client", "conclave-client", Vec::new())?;
    Ok(Generated { ca, nodes, client })
}

/// Writes `bytes` to `path`, replacing it; `private` files are created 0600.
fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    // Replaced, not truncated: a file created earlier with looser permissions must not keep them.
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(if private { 0o600 } else { 0o644 });
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("writing {}", path.display()))
}
