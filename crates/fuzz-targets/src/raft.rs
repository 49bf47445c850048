//! The Raft message codec (every message a peer sends), the membership encoding that
//! configuration entries and snapshot metadata carry, and the runtime's envelope around
//! committed commands and snapshot images.

use bytes::{Bytes, BytesMut};
use conclave_core::{Entry, Index, Membership, NodeId, ReadMode, Term, WireMessage};
use conclave_raft::{AppendResult, Message};

/// Decodes `data` as a Raft message. The encoding is canonical (decoding refuses trailing bytes
/// and booleans other than 0 and 1), so a message that decodes must encode to exactly `data`.
pub fn raft_message(data: &[u8]) {
    let Ok(message) = Message::decode(Bytes::copy_from_slice(data)) else { return };
    let mut encoded = BytesMut::new();
    message.encode(&mut encoded);
    assert_eq!(&encoded[..], data, "{message:?} does not encode to the bytes it came from");
}

/// Decodes `data` as a membership; one that decodes must encode to exactly `data` and be valid.
pub fn membership(data: &[u8]) {
    let Ok(membership) = Membership::decode(data) else { return };
    assert_eq!(membership.validate(), Ok(()), "{membership:?} decoded but is not valid");
    assert_eq!(&membership.encode()[..], data, "{membership:?} encodes to other bytes");
}

/// Decodes a committed entry's runtime envelope (an address book update or application data) or
/// a snapshot image's address book; see `conclave_runtime::fuzzing`.
pub fn runtime_envelope(data: &[u8]) {
    conclave_runtime::fuzzing::envelope(data);
}

pub(crate) fn envelope_seeds() -> Vec<Vec<u8>> {
    conclave_runtime::fuzzing::seeds()
}

fn encoded(message: &Message) -> Vec<u8> {
    let mut out = BytesMut::new();
    message.encode(&mut out);
    out.to_vec()
}

pub(crate) fn message_seeds() -> Vec<Vec<u8>> {
    let members = Membership::new([NodeId(1), NodeId(2), NodeId(3)]);
    let messages = [
        Message::RequestVote {
            term: Term(3),
            last_log_index: Index(9),
            last_log_term: Term(2),
            pre_vote: true,
            leader_transfer: false,
        },
        Message::AppendEntries {
            term: Term(3),
            prev_index: Index(9),
            prev_term: Term(2),
            entries: vec![
                Entry::command(Index(10), Term(3), Bytes::from_static(b"set x 1")),
                Entry::config(Index(11), Term(3), &members),
            ],
            commit: Index(9),
        },
        Message::AppendEntriesResponse {
            term: Term(3),
            result: AppendResult::Reject {
                prev_index: Index(9),
                hint_index: Index(4),
                hint_term: Some(Term(1)),
            },
        },
        Message::Heartbeat { term: Term(3), commit: Index(9), read_round: 4 },
        Message::TimeoutNow { term: Term(3) },
        Message::InstallSnapshotResponse {
            term: Term(3),
            snapshot_index: Index(11),
            received: 5,
            done: true,
        },
        Message::AppendEntriesResponse {
            term: Term(3),
            result: AppendResult::Success { match_index: Index(11) },
        },
        Message::ReadIndexRequest { term: Term(3), id: 5, mode: ReadMode::Lease },
        Message::ReadIndexResponse { term: Term(3), id: 5, index: Some(Index(11)) },
        Message::InstallSnapshot {
            term: Term(3),
            snapshot_index: Index(11),
            snapshot_term: Term(3),
            membership: joint(),
            offset: 0,
            data: Bytes::from_static(b"image"),
            done: true,
        },
    ];
    messages.iter().map(encoded).collect()
}

pub(crate) fn membership_seeds() -> Vec<Vec<u8>> {
    let simple = Membership::new([NodeId(1), NodeId(2), NodeId(3)]);
    vec![simple.encode().to_vec(), joint().encode().to_vec()]
}

/// A membership in the middle of a change, with a learner: every list non-empty.
fn joint() -> Membership {
    Membership {
        voters: vec![NodeId(1), NodeId(2), NodeId(4)],
        outgoing: vec![NodeId(1), NodeId(2), NodeId(3)],
        learners: vec![NodeId(5)],
    }
}
