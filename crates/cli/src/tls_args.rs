//! The TLS flags of the commands that connect to a node (`kv`, `bench kv`, `cluster`): which CA
//! to trust and, optionally, which client certificate to present.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use conclave_server::client::{ClientError, RespClient};
use conclave_server::rustls::ClientConfig;

/// TLS to a node's TLS client port or HTTPS admin port.
#[derive(Args, Clone, Debug, Default)]
pub struct TlsClientArgs {
    /// Connect over TLS, trusting this CA certificate (PEM): to a node's TLS client port
    /// (tls_client_addr) or HTTPS admin port (tls_admin).
    #[arg(long, value_name = "FILE")]
    pub tls_ca_cert_file: Option<PathBuf>,
    /// With --tls-ca-cert-file: a client certificate (PEM) signed by the cluster CA, for nodes
    /// that require one (tls_auth_clients yes); admin ports accept it in place of the token.
    #[arg(long, value_name = "FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key of --tls-cert-file.
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
}

impl TlsClientArgs {
    /// The TLS configuration, or `None` without --tls-ca-cert-file.
    pub fn config(&self) -> Result<Option<Arc<ClientConfig>>> {
        let Some(ca) = &self.tls_ca_cert_file else { return Ok(None) };
        let identity = self.tls_cert_file.as_deref().zip(self.tls_key_file.as_deref());
        Ok(Some(conclave_server::client_config(ca, identity)?))
    }
}

/// A Redis-protocol connection, over TLS when `tls` is given.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<RespClient, ClientError> {
    match tls {
        Some(config) => RespClient::connect_tls(addr, timeout, config.clone()).await,
        None => RespClient::connect(addr, timeout).await,
    }
}
