//! Mutual TLS on peer links (`tls_cluster`): both sides present a certificate signed by the
//! cluster's CA, and a connection whose peer does not is refused before the first frame.
//!
//! TLS wraps the socket; the hello and the HMAC proofs of the cluster secret still run inside
//! it, so a node with a valid certificate but the wrong cluster id or secret is still refused.
//! The configurations sit behind a lock so that the embedding server can swap in renewed
//! certificates: each new connection takes the ones current when it starts, and links already
//! up keep theirs.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::frame::WireError;

/// A byte stream a link runs on: a plain TCP socket, or TLS over one.
pub(crate) trait LinkStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> LinkStream for T {}

/// A TLS session over a link's socket, behind one type for the acceptor's and the dialer's.
pub(crate) type BoxedStream = Box<dyn LinkStream>;

/// The receiving half of a link, plain or TLS, for the link's reader task.
pub(crate) type LinkReader = Box<dyn AsyncRead + Send + Unpin>;
/// The sending half of a link, plain or TLS, for the link's writer task.
pub(crate) type LinkWriter = Box<dyn AsyncWrite + Send + Unpin>;

/// A link's socket once the handshake is done. Kept apart so that a plain socket splits into
/// owned halves, with no lock between the reader and the writer; only a TLS session, whose
/// halves share one state, needs the locked split.
pub(crate) enum LinkSocket {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(BoxedStream),
}

impl LinkSocket {
    /// The halves the link's reader and writer tasks own.
    pub(crate) fn split(self) -> (LinkReader, LinkWriter) {
        match self {
            LinkSocket::Plain(stream) => {
                let (read, write) = stream.into_split();
                (Box::new(read), Box::new(write))
            }
            LinkSocket::Tls(stream) => {
                let (read, write) = tokio::io::split(stream);
                (Box::new(read), Box::new(write))
            }
        }
    }
}

/// The TLS configurations of the peer port, replaceable while the transport runs.
///
/// The server configuration must require a client certificate (a peer without one is refused);
/// the client configuration must carry this node's certificate and trust the cluster CA. The
/// dialer checks the acceptor's certificate against the IP address it dialed, so peer
/// certificates name their nodes' IP addresses.
pub struct PeerTls {
    configs: RwLock<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)>,
}

impl PeerTls {
    /// Peer TLS with the acceptor's and the dialer's configurations.
    pub fn new(server: Arc<rustls::ServerConfig>, client: Arc<rustls::ClientConfig>) -> Self {
        PeerTls { configs: RwLock::new((server, client)) }
    }

    /// Replaces both configurations, for renewed certificates or a new CA; connections made
    /// from now on use them.
    pub fn replace(&self, server: Arc<rustls::ServerConfig>, client: Arc<rustls::ClientConfig>) {
        *self.configs.write().unwrap_or_else(|e| e.into_inner()) = (server, client);
    }

    fn current(&self) -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
        self.configs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The acceptor's TLS handshake on `stream`; a peer without a CA-signed certificate fails it.
    pub(crate) async fn accept(&self, stream: TcpStream) -> Result<BoxedStream, WireError> {
        let acceptor = TlsAcceptor::from(self.current().0);
        match acceptor.accept(stream).await {
            Ok(stream) => Ok(Box::new(stream)),
            Err(error) => Err(WireError::Tls(error.to_string())),
        }
    }

    /// The dialer's TLS handshake with the node at `addr`, whose certificate must name that IP
    /// address.
    pub(crate) async fn connect(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
    ) -> Result<BoxedStream, WireError> {
        let connector = TlsConnector::from(self.current().1);
        let name = ServerName::IpAddress(addr.ip().into());
        match connector.connect(name, stream).await {
            Ok(stream) => Ok(Box::new(stream)),
            Err(error) => Err(WireError::Tls(error.to_string())),
        }
    }
}

impl fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerTls")
    }
}
