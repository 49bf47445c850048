//! The encoding of write commands in the log (the README of the crate describes the bytes).
//!
//! ```text
//! command = format:u8 (= 1)  operation:u8  now_ms:varint  body
//! ```
//!
//! The encoding is compact (a SET of a 3-byte key and a 5-byte value takes 19 bytes) and
//! deliberately not RESP: it carries what the leader decided (absolute deadlines, its clock) and
//! nothing the follower must re-derive. The format byte comes first so that a later release can
//! change everything after it and still read entries an older one wrote. Decoding checks every
//! bound and refuses trailing bytes, so a damaged entry is one error reply, the same on every node.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::wire::{put_bytes, put_signed, put_varint, Reader, WireError};
use crate::write::{ExpireCondition, SetCondition, SetReply, SetTtl, SetWrite, Write};

/// The format this release writes, and the only one it reads.
pub(crate) const FORMAT: u8 = 1;

const OP_TICK: u8 = 0;
const OP_SET: u8 = 1;
const OP_GETDEL: u8 = 2;
const OP_DELETE: u8 = 3;
const OP_INCRBY: u8 = 4;
const OP_APPEND: u8 = 5;
const OP_MSET: u8 = 6;
const OP_MSETNX: u8 = 7;
const OP_EXPIRE: u8 = 8;
const OP_PERSIST: u8 = 9;
const OP_FLUSH: u8 = 10;

/// Why a log entry is not a command this release can apply. Its text is part of the error reply
/// `apply` gives, so it must (and does) depend only on the bytes.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The first byte names a format this release does not read.
    #[error("format {0} is not one this release reads (it reads format {FORMAT})")]
    UnknownFormat(u8),
    /// The operation byte is not one of the defined operations.
    #[error("operation {0} is unknown")]
    UnknownOperation(u8),
    /// A flags byte has bits or values no encoder sets.
    #[error("flags {flags:#04x} are not valid for {operation}")]
    BadFlags {
        /// The byte read.
        flags: u8,
        /// The operation it belongs to.
        operation: &'static str,
    },
    /// A field could not be read.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Encodes `write` as the leader proposes it, stamped with the leader's clock `now_ms`.
pub(crate) fn encode(now_ms: u64, write: &Write) -> Bytes {
    let mut out = BytesMut::with_capacity(16 + payload_len(write));
    out.put_u8(FORMAT);
    out.put_u8(operation(write));
    put_varint(&mut out, now_ms);
    match write {
        Write::Tick | Write::Flush => {}
        Write::Set(set) => {
            out.put_u8(set_flags(set));
            put_bytes(&mut out, &set.key);
            put_bytes(&mut out, &set.value);
            if let SetTtl::At(deadline) = set.ttl {
                put_varint(&mut out, deadline);
            }
        }
        Write::GetDel(key) | Write::Persist(key) => put_bytes(&mut out, key),
        Write::Delete(keys) => {
            put_varint(&mut out, keys.len() as u64);
            for key in keys {
                put_bytes(&mut out, key);
            }
        }
        Write::IncrBy { key, delta } => {
            put_bytes(&mut out, key);
            put_signed(&mut out, *delta);
        }
        Write::Append { key, suffix } => {
            put_bytes(&mut out, key);
            put_bytes(&mut out, suffix);
        }
        Write::MSet(pairs) | Write::MSetNx(pairs) => {
            put_varint(&mut out, pairs.len() as u64);
            for (key, value) in pairs {
                put_bytes(&mut out, key);
                put_bytes(&mut out, value);
            }
        }
        Write::Expire { key, deadline, condition } => {
            out.put_u8(condition.to_bits());
            put_bytes(&mut out, key);
            put_signed(&mut out, *deadline);
        }
    }
    out.freeze()
}

/// Decodes a log entry into the leader's clock and the write, copying keys and values out.
pub(crate) fn decode(command: &[u8]) -> Result<(u64, Write), DecodeError> {
    let mut reader = Reader::new(command);
    let format = reader.u8("the format byte")?;
    if format != FORMAT {
        return Err(DecodeError::UnknownFormat(format));
    }
    let operation = reader.u8("the operation byte")?;
    let now_ms = reader.varint("the leader's clock")?;
    let write = match operation {
        OP_TICK => Write::Tick,
        OP_FLUSH => Write::Flush,
        OP_SET => Write::Set(decode_set(&mut reader)?),
        OP_GETDEL => Write::GetDel(owned(&mut reader, "the key")?),
        OP_PERSIST => Write::Persist(owned(&mut reader, "the key")?),
        OP_DELETE => {
            // A key takes at least its one length byte.
            let count = reader.count("the key count", 1)?;
            let keys = (0..count).map(|_| owned(&mut reader, "a key")).collect::<Result<_, _>>()?;
            Write::Delete(keys)
        }
        OP_INCRBY => Write::IncrBy {
            key: owned(&mut reader, "the key")?,
            delta: reader.signed("the increment")?,
        },
        OP_APPEND => Write::Append {
            key: owned(&mut reader, "the key")?,
            suffix: owned(&mut reader, "the suffix")?,
        },
        OP_MSET => Write::MSet(decode_pairs(&mut reader)?),
        OP_MSETNX => Write::MSetNx(decode_pairs(&mut reader)?),
        OP_EXPIRE => {
            let flags = reader.u8("the expire flags")?;
            let condition = ExpireCondition::from_bits(flags)
                .ok_or(DecodeError::BadFlags { flags, operation: "EXPIRE" })?;
            Write::Expire {
                key: owned(&mut reader, "the key")?,
                deadline: reader.signed("the deadline")?,
                condition,
            }
        }
        unknown => return Err(DecodeError::UnknownOperation(unknown)),
    };
    reader.finish()?;
    Ok((now_ms, write))
}

fn operation(write: &Write) -> u8 {
    match write {
        Write::Tick => OP_TICK,
        Write::Set(_) => OP_SET,
        Write::GetDel(_) => OP_GETDEL,
        Write::Delete(_) => OP_DELETE,
        Write::IncrBy { .. } => OP_INCRBY,
        Write::Append { .. } => OP_APPEND,
        Write::MSet(_) => OP_MSET,
        Write::MSetNx(_) => OP_MSETNX,
        Write::Expire { .. } => OP_EXPIRE,
        Write::Persist(_) => OP_PERSIST,
        Write::Flush => OP_FLUSH,
    }
}

/// The bytes of keys and values in `write`: the bulk of its encoding, to size the buffer once.
fn payload_len(write: &Write) -> usize {
    match write {
        Write::Tick | Write::Flush => 0,
        Write::Set(set) => set.key.len() + set.value.len() + 10,
        Write::GetDel(key) | Write::Persist(key) => key.len() + 5,
        Write::Delete(keys) => keys.iter().map(|key| key.len() + 5).sum(),
        Write::IncrBy { key, .. } | Write::Expire { key, .. } => key.len() + 16,
        Write::Append { key, suffix } => key.len() + suffix.len() + 10,
        Write::MSet(pairs) | Write::MSetNx(pairs) => {
            pairs.iter().map(|(key, value)| key.len() + value.len() + 10).sum()
        }
    }
}

// SET's flags byte: bits 0-1 the condition, bits 2-3 the deadline rule, bits 4-5 the reply.
const SET_CONDITION_SHIFT: u8 = 0;
const SET_TTL_SHIFT: u8 = 2;
const SET_REPLY_SHIFT: u8 = 4;

fn set_flags(set: &SetWrite) -> u8 {
    let condition = match set.condition {
        SetCondition::Always => 0,
        SetCondition::IfAbsent => 1,
        SetCondition::IfPresent => 2,
    };
    let ttl = match set.ttl {
        SetTtl::Clear => 0,
        SetTtl::Keep => 1,
        SetTtl::At(_) => 2,
    };
    let reply = match set.reply {
        SetReply::Ok => 0,
        SetReply::OldValue => 1,
        SetReply::Flag => 2,
    };
    condition << SET_CONDITION_SHIFT | ttl << SET_TTL_SHIFT | reply << SET_REPLY_SHIFT
}

fn decode_set(reader: &mut Reader<'_>) -> Result<SetWrite, DecodeError> {
    let flags = reader.u8("the SET flags")?;
    let bad_flags = DecodeError::BadFlags { flags, operation: "SET" };
    let condition = match flags >> SET_CONDITION_SHIFT & 3 {
        0 => SetCondition::Always,
        1 => SetCondition::IfAbsent,
        2 => SetCondition::IfPresent,
        _ => return Err(bad_flags),
    };
    let reply = match flags >> SET_REPLY_SHIFT & 3 {
        0 => SetReply::Ok,
        1 => SetReply::OldValue,
        2 => SetReply::Flag,
        _ => return Err(bad_flags),
    };
    let ttl_rule = flags >> SET_TTL_SHIFT & 3;
    if ttl_rule == 3 || flags >> 6 != 0 {
        return Err(bad_flags);
    }
    let key = owned(reader, "the key")?;
    let value = owned(reader, "the value")?;
    let ttl = match ttl_rule {
        0 => SetTtl::Clear,
        1 => SetTtl::Keep,
        _ => SetTtl::At(reader.varint("the deadline")?),
    };
    Ok(SetWrite { key, value, condition, ttl, reply })
}

fn decode_pairs(reader: &mut Reader<'_>) -> Result<Vec<(Bytes, Bytes)>, DecodeError> {
    // A pair takes at least its two length bytes.
    let count = reader.count("the pair count", 2)?;
    let mut pairs = Vec::with_capacity(count);
    for _ in 0..count {
        pairs.push((owned(reader, "a key")?, owned(reader, "a value")?));
    }
    Ok(pairs)
}

/// A byte string copied out of the entry: the store keeps it after the entry is gone.
fn owned(reader: &mut Reader<'_>, what: &'static str) -> Result<Bytes, DecodeError> {
    Ok(Bytes::copy_from_slice(reader.bytes(what)?))
}
