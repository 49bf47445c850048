//! The peer protocol's frames as bytes, for programs that talk to a node's peer port without a
//! [`Transport`](crate::Transport): protocol checkers, fuzzers, and tests that play a forged or
//! misconfigured peer. `docs/TRANSPORT.md` describes each frame; a node reads nothing after a
//! hello until the sender's proof checks out.

use conclave_core::NodeId;

use crate::auth::{Nonce, Proof};
use crate::frame::{encode_hello, encode_proof, BatchEncoder, Hello};
use crate::GroupId;

/// The format version these frames carry (and the only one a node reads).
pub const VERSION: u8 = crate::frame::VERSION;

/// A hello frame from `node` of cluster `cluster_id`, with this connection's `nonce`, announcing
/// the largest frame limit and advertising `advertise`.
pub fn hello_frame(cluster_id: u64, node: NodeId, nonce: Nonce, advertise: &[u8]) -> Vec<u8> {
    let hello = Hello {
        cluster_id,
        node,
        frame_bytes_max: u32::MAX,
        nonce,
        advertise: bytes::Bytes::copy_from_slice(advertise),
    };
    let mut out = Vec::new();
    encode_hello(&hello, &mut out);
    out
}

/// A proof frame carrying `proof` as is (right or wrong).
pub fn proof_frame(proof: Proof) -> Vec<u8> {
    let mut out = Vec::new();
    encode_proof(&proof, &mut out);
    out
}

/// A batch frame with one message of `group` for node `to`.
pub fn batch_frame(to: NodeId, group: GroupId, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = BatchEncoder::new(&mut out, to, usize::MAX);
    encoder.push(group, payload);
    encoder.finish();
    out
}
