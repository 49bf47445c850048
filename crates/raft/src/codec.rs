//! The bytes of a Raft message on the wire (for the real transport; the simulator passes values).
//!
//! Layout: one tag byte naming the message, then its fields in declaration order, integers
//! little-endian, booleans as one byte, entries and payloads length-prefixed (see
//! [`conclave_core::put_entry`]). Decoding is bounds-checked and refuses trailing bytes, so a
//! message from a node running another format fails loudly instead of being misread.

use bytes::{BufMut, Bytes, BytesMut};
use conclave_core::{
    put_bytes, put_entry, DecodeError, Index, Membership, ReadMode, Term, WireMessage, WireReader,
    ENTRY_BYTES_MIN,
};

use crate::message::{AppendResult, Message};

const REQUEST_VOTE: u8 = 1;
const REQUEST_VOTE_RESPONSE: u8 = 2;
const APPEND_ENTRIES: u8 = 3;
const APPEND_ENTRIES_RESPONSE: u8 = 4;
const HEARTBEAT: u8 = 5;
const HEARTBEAT_RESPONSE: u8 = 6;
const READ_INDEX_REQUEST: u8 = 7;
const READ_INDEX_RESPONSE: u8 = 8;
const INSTALL_SNAPSHOT: u8 = 9;
const TIMEOUT_NOW: u8 = 10;
const INSTALL_SNAPSHOT_RESPONSE: u8 = 11;

fn put_mode(out: &mut BytesMut, mode: ReadMode) {
    out.put_u8(match mode {
        ReadMode::ReadIndex => 0,
        ReadMode::Lease => 1,
    });
}

fn get_mode(r: &mut WireReader) -> Result<ReadMode, DecodeError> {
    match r.u8()? {
        0 => Ok(ReadMode::ReadIndex),
        1 => Ok(ReadMode::Lease),
        _ => Err(DecodeError("unknown read mode")),
    }
}

/// An optional number: a presence byte, then the value (zero when absent). The encoding is
/// canonical, so an absent value that is not zero comes from another format and is refused.
fn get_option(r: &mut WireReader) -> Result<Option<u64>, DecodeError> {
    let present = r.bool()?;
    let value = r.u64()?;
    match (present, value) {
        (true, value) => Ok(Some(value)),
        (false, 0) => Ok(None),
        (false, _) => Err(DecodeError("a value for an absent option")),
    }
}

impl WireMessage for Message {
    fn encode(&self, out: &mut BytesMut) {
        match self {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
                pre_vote,
                leader_transfer,
            } => {
                out.put_u8(REQUEST_VOTE);
                out.put_u64_le(term.0);
                out.put_u64_le(last_log_index.0);
                out.put_u64_le(last_log_term.0);
                out.put_u8(u8::from(*pre_vote));
                out.put_u8(u8::from(*leader_transfer));
            }
            Message::RequestVoteResponse { term, granted, pre_vote } => {
                out.put_u8(REQUEST_VOTE_RESPONSE);
                out.put_u64_le(term.0);
                out.put_u8(u8::from(*granted));
                out.put_u8(u8::from(*pre_vote));
            }
            Message::AppendEntries { term, prev_index, prev_term, entries, commit } => {
                out.put_u8(APPEND_ENTRIES);
                out.put_u64_le(term.0);
                out.put_u64_le(prev_index.0);
                out.put_u64_le(prev_term.0);
                out.put_u64_le(commit.0);
                out.put_u32_le(entries.len() as u32);
                for entry in entries {
                    put_entry(out, entry);
                }
            }
            Message::AppendEntriesResponse { term, result } => {
                out.put_u8(APPEND_ENTRIES_RESPONSE);
                out.put_u64_le(term.0);
                match result {
                    AppendResult::Success { match_index } => {
                        out.put_u8(0);
                        out.put_u64_le(match_index.0);
                    }
                    AppendResult::Reject { prev_index, hint_index, hint_term } => {
                        out.put_u8(1);
                        out.put_u64_le(prev_index.0);
                        out.put_u64_le(hint_index.0);
                        out.put_u8(u8::from(hint_term.is_some()));
                        out.put_u64_le(hint_term.map_or(0, |t| t.0));
                    }
                }
            }
            Message::Heartbeat { term, commit, read_round } => {
                out.put_u8(HEARTBEAT);
                out.put_u64_le(term.0);
                out.put_u64_le(commit.0);
                out.put_u64_le(*read_round);
            }
            Message::HeartbeatResponse { term, read_round } => {
                out.put_u8(HEARTBEAT_RESPONSE);
                out.put_u64_le(term.0);
                out.put_u64_le(*read_round);
            }
            Message::ReadIndexRequest { term, id, mode } => {
                out.put_u8(READ_INDEX_REQUEST);
                out.put_u64_le(term.0);
                out.put_u64_le(*id);
                put_mode(out, *mode);
            }
            Message::ReadIndexResponse { term, id, index } => {
                out.put_u8(READ_INDEX_RESPONSE);
                out.put_u64_le(term.0);
                out.put_u64_le(*id);
                out.put_u8(u8::from(index.is_some()));
                out.put_u64_le(index.map_or(0, |i| i.0));
            }
            Message::InstallSnapshot {
                term,
                snapshot_index,
                snapshot_term,
                membership,
                offset,
                data,
                done,
            } => {
                out.put_u8(INSTALL_SNAPSHOT);
                out.put_u64_le(term.0);
                out.put_u64_le(snapshot_index.0);
                out.put_u64_le(snapshot_term.0);
                put_bytes(out, &membership.encode());
                out.put_u64_le(*offset);
                put_bytes(out, data);
                out.put_u8(u8::from(*done));
            }
            Message::TimeoutNow { term } => {
                out.put_u8(TIMEOUT_NOW);
                out.put_u64_le(term.0);
            }
            Message::InstallSnapshotResponse { term, snapshot_index, received, done } => {
                out.put_u8(INSTALL_SNAPSHOT_RESPONSE);
                out.put_u64_le(term.0);
                out.put_u64_le(snapshot_index.0);
                out.put_u64_le(*received);
                out.put_u8(u8::from(*done));
            }
        }
    }

    fn decode(bytes: Bytes) -> Result<Message, DecodeError> {
        let mut r = WireReader::new(bytes);
        let message = match r.u8()? {
            REQUEST_VOTE => Message::RequestVote {
                term: Term(r.u64()?),
                last_log_index: Index(r.u64()?),
                last_log_term: Term(r.u64()?),
                pre_vote: r.bool()?,
                leader_transfer: r.bool()?,
            },
            REQUEST_VOTE_RESPONSE => Message::RequestVoteResponse {
                term: Term(r.u64()?),
                granted: r.bool()?,
                pre_vote: r.bool()?,
            },
            APPEND_ENTRIES => {
                let term = Term(r.u64()?);
                let prev_index = Index(r.u64()?);
                let prev_term = Term(r.u64()?);
                let commit = Index(r.u64()?);
                let count = r.count(ENTRY_BYTES_MIN)?;
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    entries.push(r.entry()?);
                }
                Message::AppendEntries { term, prev_index, prev_term, entries, commit }
            }
            APPEND_ENTRIES_RESPONSE => {
                let term = Term(r.u64()?);
                let result = match r.u8()? {
                    0 => AppendResult::Success { match_index: Index(r.u64()?) },
                    1 => {
                        let prev_index = Index(r.u64()?);
                        let hint_index = Index(r.u64()?);
                        let hint_term = get_option(&mut r)?.map(Term);
                        AppendResult::Reject { prev_index, hint_index, hint_term }
                    }
                    _ => return Err(DecodeError("unknown append result")),
                };
                Message::AppendEntriesResponse { term, result }
            }
            HEARTBEAT => Message::Heartbeat {
                term: Term(r.u64()?),
                commit: Index(r.u64()?),
                read_round: r.u64()?,
            },
            HEARTBEAT_RESPONSE => {
                Message::HeartbeatResponse { term: Term(r.u64()?), read_round: r.u64()? }
            }
            READ_INDEX_REQUEST => Message::ReadIndexRequest {
                term: Term(r.u64()?),
                id: r.u64()?,
                mode: get_mode(&mut r)?,
            },
            READ_INDEX_RESPONSE => {
                let term = Term(r.u64()?);
                let id = r.u64()?;
                let index = get_option(&mut r)?.map(Index);
                Message::ReadIndexResponse { term, id, index }
            }
            INSTALL_SNAPSHOT => {
                let term = Term(r.u64()?);
                let snapshot_index = Index(r.u64()?);
                let snapshot_term = Term(r.u64()?);
                let membership = Membership::decode(&r.bytes()?)
                    .map_err(|_| DecodeError("malformed membership"))?;
                Message::InstallSnapshot {
                    term,
                    snapshot_index,
                    snapshot_term,
                    membership,
                    offset: r.u64()?,
                    data: r.bytes()?,
                    done: r.bool()?,
                }
            }
            TIMEOUT_NOW => Message::TimeoutNow { term: Term(r.u64()?) },
            INSTALL_SNAPSHOT_RESPONSE => Message::InstallSnapshotResponse {
                term: Term(r.u64()?),
                snapshot_index: Index(r.u64()?),
                received: r.u64()?,
                done: r.bool()?,
            },
            _ => return Err(DecodeError("unknown message type")),
        };
        r.finish()?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_core::{Entry, NodeId};
    use proptest::prelude::*;

    fn samples() -> Vec<Message> {
        let membership = Membership {
            voters: vec![NodeId(1), NodeId(2)],
            outgoing: vec![NodeId(3)],
            learners: vec![NodeId(4)],
        };
        vec![
            Message::RequestVote {
                term: Term(4),
                last_log_index: Index(9),
                last_log_term: Term(3),
                pre_vote: true,
                leader_transfer: false,
            },
            Message::RequestVoteResponse { term: Term(4), granted: true, pre_vote: false },
            Message::AppendEntries {
                term: Term(2),
                prev_index: Index(5),
                prev_term: Term(1),
                entries: vec![
                    Entry::noop(Index(6), Term(2)),
                    Entry::command(Index(7), Term(2), Bytes::from_static(b"x")),
                    Entry::config(Index(8), Term(2), &membership),
                ],
                commit: Index(5),
            },
            Message::AppendEntriesResponse {
                term: Term(2),
                result: AppendResult::Success { match_index: Index(8) },
            },
            Message::AppendEntriesResponse {
                term: Term(2),
                result: AppendResult::Reject {
                    prev_index: Index(5),
                    hint_index: Index(3),
                    hint_term: Some(Term(1)),
                },
            },
            Message::AppendEntriesResponse {
                term: Term(2),
                result: AppendResult::Reject {
                    prev_index: Index(5),
                    hint_index: Index(3),
                    hint_term: None,
                },
            },
            Message::Heartbeat { term: Term(2), commit: Index(8), read_round: 17 },
            Message::HeartbeatResponse { term: Term(2), read_round: 17 },
            Message::ReadIndexRequest { term: Term(2), id: 99, mode: ReadMode::Lease },
            Message::ReadIndexResponse { term: Term(2), id: 99, index: Some(Index(8)) },
            Message::ReadIndexResponse { term: Term(2), id: 99, index: None },
            Message::InstallSnapshot {
                term: Term(5),
                snapshot_index: Index(100),
                snapshot_term: Term(4),
                membership,
                offset: 1 << 20,
                data: Bytes::from_static(b"chunk"),
                done: true,
            },
            Message::TimeoutNow { term: Term(6) },
            Message::InstallSnapshotResponse {
                term: Term(5),
                snapshot_index: Index(100),
                received: 5,
                done: true,
            },
        ]
    }

    fn encoded(message: &Message) -> Bytes {
        let mut out = BytesMut::new();
        message.encode(&mut out);
        out.freeze()
    }

    #[test]
    fn every_message_round_trips() {
        for message in samples() {
            assert_eq!(Message::decode(encoded(&message)).unwrap(), message);
        }
    }

    #[test]
    fn truncated_and_extended_messages_are_refused() {
        for message in samples() {
            let bytes = encoded(&message);
            for cut in 0..bytes.len() {
                assert!(Message::decode(bytes.slice(..cut)).is_err(), "{message:?} cut at {cut}");
            }
            let mut longer = BytesMut::from(&bytes[..]);
            longer.put_u8(0);
            assert_eq!(Message::decode(longer.freeze()), Err(DecodeError("trailing bytes")));
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Message::decode(Bytes::from(bytes));
        }
    }

    #[test]
    fn an_absent_option_with_a_value_is_refused() {
        // Found by fuzzing: the eight bytes of an absent read index or hint term were ignored,
        // so two encodings decoded to the same message.
        let read = Message::ReadIndexResponse { term: Term(3), id: 9, index: None };
        let reject = Message::AppendEntriesResponse {
            term: Term(3),
            result: AppendResult::Reject {
                prev_index: Index(9),
                hint_index: Index(4),
                hint_term: None,
            },
        };
        for message in [read, reject] {
            let mut out = BytesMut::new();
            message.encode(&mut out);
            assert_eq!(Message::decode(out.clone().freeze()), Ok(message));
            let last = out.len() - 1;
            out[last] = 1;
            assert_eq!(
                Message::decode(out.freeze()),
                Err(DecodeError("a value for an absent option"))
            );
        }
    }
}
