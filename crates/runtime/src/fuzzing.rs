//! Entry point for the coverage-guided fuzz target of the runtime's envelope (`fuzz/` at the
//! repository root) and for the tests that replay its inputs. Not part of the supported API: the
//! envelope module is private, and this is how the fuzzer reaches it.

use bytes::Bytes;

use crate::envelope::{decode, image, set_peer, split_image, user, Command};

/// Decodes `data[1..]` as a committed command entry (first byte even) or as a snapshot image's
/// address book and state (odd). Whatever decodes must encode to bytes that decode to the same.
pub fn envelope(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = Bytes::copy_from_slice(rest);
    if mode & 1 == 0 {
        let Ok(command) = decode(&bytes) else { return };
        let again = match &command {
            Command::User(data) => user(data),
            Command::SetPeer(node, addr) => set_peer(*node, *addr),
        };
        assert_eq!(decode(&again).as_ref(), Ok(&command), "a command changes when re-encoded");
    } else {
        let Ok((book, state)) = split_image(&bytes) else { return };
        let again = image(&book, &state);
        let (book_again, state_again) = split_image(&again).expect("an encoded image splits");
        assert_eq!((book_again, state_again), (book, state), "an image changes when re-encoded");
    }
}

/// A command of each kind and an image with two addresses, for the fuzzer's seed corpus.
pub fn seeds() -> Vec<Vec<u8>> {
    use conclave_core::NodeId;
    let addr = "127.0.0.1:7100".parse().expect("an address");
    let v6 = "[::1]:7200".parse().expect("an address");
    let book = [(NodeId(1), addr), (NodeId(2), v6)].into_iter().collect();
    [
        (0, user(b"set x 1")),
        (0, set_peer(NodeId(3), Some(addr))),
        (0, set_peer(NodeId(3), None)),
        (1, image(&book, b"state")),
    ]
    .into_iter()
    .map(|(mode, bytes)| [&[mode][..], &bytes].concat())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_decodes() {
        for seed in seeds() {
            let bytes = Bytes::copy_from_slice(&seed[1..]);
            if seed[0] == 0 {
                assert!(decode(&bytes).is_ok());
            } else {
                assert!(split_image(&bytes).is_ok());
            }
            envelope(&seed);
        }
    }
}
