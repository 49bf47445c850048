//! What a node tells its peers about itself when their link comes up: its client and admin
//! addresses, so that a follower can forward a write to the leader's client port (or redirect
//! the client there) and `conclave cluster` can find the leader's admin port.

use std::net::SocketAddr;

use bytes::Bytes;

/// A node's public addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advertised {
    /// The Redis-protocol port.
    pub client: SocketAddr,
    /// The HTTP admin port.
    pub admin: SocketAddr,
    /// The TLS client port, when the node has one: a follower with TLS forwards there, and a
    /// TLS client is redirected there.
    pub tls_client: Option<SocketAddr>,
}

impl Advertised {
    /// The handshake bytes: `client=ADDR admin=ADDR`, then ` tls=ADDR` when there is a TLS
    /// client port (nodes that do not know the field skip it).
    pub fn encode(&self) -> Bytes {
        let mut text = format!("client={} admin={}", self.client, self.admin);
        if let Some(tls) = self.tls_client {
            text.push_str(&format!(" tls={tls}"));
        }
        Bytes::from(text)
    }

    /// Parses handshake bytes; `None` if they are not ours.
    pub fn decode(bytes: &[u8]) -> Option<Advertised> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut client = None;
        let mut admin = None;
        let mut tls_client = None;
        for field in text.split_whitespace() {
            match field.split_once('=') {
                Some(("client", addr)) => client = addr.parse().ok(),
                Some(("admin", addr)) => admin = addr.parse().ok(),
                Some(("tls", addr)) => tls_client = addr.parse().ok(),
                _ => {}
            }
        }
        Some(Advertised { client: client?, admin: admin?, tls_client })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = Advertised {
            client: "127.0.0.1:7000".parse().unwrap(),
            admin: "127.0.0.1:7200".parse().unwrap(),
            tls_client: None,
        };
        assert_eq!(Advertised::decode(&a.encode()), Some(a));
        let tls = Advertised { tls_client: Some("127.0.0.1:7300".parse().unwrap()), ..a };
        assert_eq!(Advertised::decode(&tls.encode()), Some(tls));
        assert_eq!(Advertised::decode(b"client=x"), None);
    }
}
