//! What the runtime itself keeps in a group's log and snapshots, around the application's data.
//!
//! Every command entry starts with a tag byte: [`USER`] commands belong to the state machine;
//! [`PEERS`] commands update the group's replicated address book, so that a node added at run
//! time becomes reachable from every member (and from whoever leads later), not only from the
//! node that accepted it. A snapshot image is the address book followed by the state machine's
//! own image. Both layouts are versioned and bounds-checked.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use conclave_core::{put_bytes, NodeId, WireReader};

use crate::error::EnvelopeError;

/// Tag of a state machine command.
pub const USER: u8 = 0;
/// Tag of an address book update: node id, then its peer address (empty: forget the node).
pub const PEERS: u8 = 1;

/// The snapshot image layout version.
const IMAGE_VERSION: u8 = 1;

/// Where each member's peer port is, replicated through the log.
pub type AddressBook = BTreeMap<NodeId, SocketAddr>;

/// A runtime command as found in a committed entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Application data for the state machine.
    User(Bytes),
    /// Set (or, with `None`, forget) a node's peer address.
    SetPeer(NodeId, Option<SocketAddr>),
}

/// Wraps application data as a user command.
pub fn user(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + data.len());
    out.put_u8(USER);
    out.put_slice(data);
    out.freeze()
}

/// An address book update.
pub fn set_peer(node: NodeId, addr: Option<SocketAddr>) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(PEERS);
    out.put_u64_le(node.0);
    put_bytes(&mut out, addr.map(|a| a.to_string()).unwrap_or_default().as_bytes());
    out.freeze()
}

/// Decodes a committed command entry.
pub fn decode(data: &Bytes) -> Result<Command, EnvelopeError> {
    match data.first() {
        Some(&USER) => Ok(Command::User(data.slice(1..))),
        Some(&PEERS) => {
            let mut r = WireReader::new(data.slice(1..));
            let node = NodeId(r.u64()?);
            let addr = r.bytes()?;
            r.finish()?;
            Ok(Command::SetPeer(node, parse_addr(&addr)?))
        }
        Some(&tag) => Err(EnvelopeError::UnknownTag(tag)),
        None => Err(EnvelopeError::Empty),
    }
}

fn parse_addr(bytes: &[u8]) -> Result<Option<SocketAddr>, EnvelopeError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let bad = || EnvelopeError::BadAddress(String::from_utf8_lossy(bytes).into_owned());
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
    text.parse().map(Some).map_err(|_| bad())
}

/// The snapshot image: the address book, then the state machine's image.
pub fn image(book: &AddressBook, state: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(16 + 32 * book.len() + state.len());
    out.put_u8(IMAGE_VERSION);
    out.put_u32_le(book.len() as u32);
    for (node, addr) in book {
        out.put_u64_le(node.0);
        put_bytes(&mut out, addr.to_string().as_bytes());
    }
    put_bytes(&mut out, state);
    out.freeze()
}

/// Splits a snapshot image into the address book and the state machine's image.
pub fn split_image(image: &Bytes) -> Result<(AddressBook, Bytes), EnvelopeError> {
    let mut r = WireReader::new(image.clone());
    let version = r.u8()?;
    if version != IMAGE_VERSION {
        return Err(EnvelopeError::UnknownImageVersion(version));
    }
    let count = r.count(12)?;
    let mut book = AddressBook::new();
    for _ in 0..count {
        let node = NodeId(r.u64()?);
        let addr = r.bytes()?;
        if let Some(addr) = parse_addr(&addr)? {
            book.insert(node, addr);
        }
    }
    let state = r.bytes()?;
    r.finish()?;
    Ok((book, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_images_round_trip() {
        let addr: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        assert_eq!(decode(&user(b"x")).unwrap(), Command::User(Bytes::from_static(b"x")));
        assert_eq!(
            decode(&set_peer(NodeId(4), Some(addr))).unwrap(),
            Command::SetPeer(NodeId(4), Some(addr))
        );
        assert_eq!(decode(&set_peer(NodeId(4), None)).unwrap(), Command::SetPeer(NodeId(4), None));
        let book = AddressBook::from([(NodeId(1), addr)]);
        let (back, state) = split_image(&image(&book, b"state")).unwrap();
        assert_eq!((back, state), (book, Bytes::from_static(b"state")));
    }

    #[test]
    fn damaged_data_is_refused() {
        assert_eq!(decode(&Bytes::new()), Err(EnvelopeError::Empty));
        assert_eq!(decode(&Bytes::from_static(&[9])), Err(EnvelopeError::UnknownTag(9)));
        assert!(matches!(
            decode(&Bytes::from_static(&[PEERS, 1, 2])),
            Err(EnvelopeError::Truncated(_))
        ));
        let bad_addr = set_peer_text(NodeId(4), "not an address");
        assert_eq!(decode(&bad_addr), Err(EnvelopeError::BadAddress("not an address".into())));
        let image = image(&AddressBook::new(), b"abc");
        for cut in 0..image.len() {
            assert!(matches!(split_image(&image.slice(..cut)), Err(EnvelopeError::Truncated(_))));
        }
        let mut newer = image.to_vec();
        newer[0] = IMAGE_VERSION + 1;
        assert_eq!(
            split_image(&Bytes::from(newer)),
            Err(EnvelopeError::UnknownImageVersion(IMAGE_VERSION + 1))
        );
    }

    /// An address book update carrying arbitrary address text.
    fn set_peer_text(node: NodeId, addr: &str) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u8(PEERS);
        out.put_u64_le(node.0);
        put_bytes(&mut out, addr.as_bytes());
        out.freeze()
    }
}
