//! The wire format, byte by byte in `docs/TRANSPORT.md`. All integers are little-endian, like the
//! storage crate's records, so one convention holds across the project.
//!
//! ```text
//! frame   = length:u32  version:u8 (= 2)  kind:u8  body[length - 6]  crc:u32
//! crc     = crc32c(version, kind, body)
//! hello   = "CNCL"  cluster_id:u64  node:u64  frame_bytes_max:u32  nonce[32]
//!           advertise_len:u32  advertise
//! proof   = hmac_sha256[32]   (see `auth`)
//! batch   = message*          message = group:u64  to:u64  payload_len:u32  payload
//! ```
//!
//! Everything here is pure except [`read_frame`], which reads from any `AsyncRead`. Nothing a peer
//! sends can make this module panic or allocate more than the caller's limit for one frame: the
//! length is checked before the buffer is allocated, and every field is read through a bounds-
//! checked cursor.

use std::io;

use bytes::Bytes;
use conclave_core::NodeId;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::auth::{Nonce, Proof, NONCE_BYTES, PROOF_BYTES};
use crate::GroupId;

/// The only format version this crate speaks. A peer with another version is refused before its
/// body is read, because a newer version may frame its body differently. Version 2 added the
/// nonce to the hello and the proof frame: version 1 peers did not authenticate.
pub(crate) const VERSION: u8 = 2;
/// The first frame each way: who is speaking, in which cluster.
pub(crate) const KIND_HELLO: u8 = 1;
/// Every later frame: a sequence of messages.
pub(crate) const KIND_BATCH: u8 = 2;
/// The third frame each way (after the hellos, before any batch): the proof that the sender knows
/// the cluster secret.
pub(crate) const KIND_PROOF: u8 = 3;
/// Marks a Conclave transport connection, so that a stray client (an HTTP probe, a port scan) is
/// told apart from a peer of another cluster in the logs.
pub(crate) const MAGIC: [u8; 4] = *b"CNCL";

const LENGTH_BYTES: usize = 4;
/// Version and kind.
const HEADER_BYTES: usize = 2;
const CRC_BYTES: usize = 4;
/// What a frame costs beyond its body.
pub(crate) const FRAME_OVERHEAD_BYTES: usize = LENGTH_BYTES + HEADER_BYTES + CRC_BYTES;
/// What a message costs in a batch beyond its payload: group, to, payload length.
pub(crate) const MESSAGE_HEADER_BYTES: usize = 8 + 8 + 4;
/// A hello's body without the advertised bytes: magic, cluster, node, frame limit, nonce, length.
pub(crate) const HELLO_FIXED_BYTES: usize = 4 + 8 + 8 + 4 + NONCE_BYTES + 4;
/// A proof frame's size: it has a fixed length, so it is read with exactly this limit.
pub(crate) const PROOF_FRAME_BYTES: usize = FRAME_OVERHEAD_BYTES + PROOF_BYTES;
/// The smallest frame limit a node may have: a frame must carry a message with a one-byte
/// payload, and a hello that advertises nothing.
pub(crate) const FRAME_BYTES_MIN: usize = FRAME_OVERHEAD_BYTES + HELLO_FIXED_BYTES;
const _: () = assert!(FRAME_BYTES_MIN > FRAME_OVERHEAD_BYTES + MESSAGE_HEADER_BYTES);
/// The largest hello a node reads. Much smaller than a batch frame may be, because a hello comes
/// from a connection that has not yet proved it belongs to the cluster, and such connections must
/// not make a node allocate tens of mebibytes each.
pub(crate) const HELLO_FRAME_BYTES_MAX: usize = 64 * 1024;

/// Why a connection ends. The refusals (everything but [`WireError::Closed`], [`WireError::Io`]
/// and [`WireError::Timeout`]) are a peer breaking the protocol and are logged as warnings.
#[derive(Debug, Error)]
pub(crate) enum WireError {
    /// The peer closed the connection between two frames.
    #[error("connection closed by the peer")]
    Closed,
    /// A read or write failed, or the connection was closed in the middle of a frame.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The connection or its handshake did not complete in time.
    #[error("no connection and handshake within {0:?}")]
    Timeout(std::time::Duration),
    /// The length field announces more than the limit; refused before allocating.
    #[error("frame of {bytes} bytes is over the limit of {limit} bytes")]
    TooLarge { bytes: u64, limit: usize },
    /// The length field is too small to hold a version, a kind and a checksum.
    #[error("frame length {0} is too short for a header and checksum")]
    TooShort(u32),
    /// A format version this node does not speak.
    #[error("unsupported format version {0} (this node speaks version {VERSION})")]
    Version(u8),
    /// The frame does not match its CRC32C.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
    /// A kind that does not belong at this point of the conversation.
    #[error("unexpected frame kind {kind} ({expected} expected)")]
    UnexpectedKind { kind: u8, expected: &'static str },
    /// The body of a frame with a valid checksum does not parse.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The hello does not start with `CNCL`: not a Conclave transport peer.
    #[error("bad magic {0:02x?} (not a Conclave transport peer)")]
    Magic([u8; 4]),
    /// A peer of another cluster.
    #[error("cluster id {theirs} does not match this cluster's {ours}")]
    Cluster { theirs: u64, ours: u64 },
    /// The handshake names a node that may not be on the other end of this connection.
    #[error("peer says it is node {theirs}: {why}")]
    Node { theirs: NodeId, why: &'static str },
    /// The peer did not prove that it knows the cluster secret (or sent something else where the
    /// proof belongs). Nothing after its hello is read.
    #[error("authentication failed: {0}")]
    Auth(&'static str),
    /// The TLS handshake failed: with mutual TLS on, the peer has no certificate signed by the
    /// cluster CA, or speaks plain TCP.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// A message addressed to another node: the sender's routing is broken.
    #[error("message for node {to} arrived at node {me}")]
    Misrouted { to: NodeId, me: NodeId },
}

impl WireError {
    /// True if the peer broke the protocol (counted in `frames_refused` and logged as a warning),
    /// false for ordinary connection loss.
    pub(crate) fn is_refusal(&self) -> bool {
        !matches!(self, WireError::Closed | WireError::Io(_) | WireError::Timeout(_))
    }
}

/// A frame that passed the length, version and checksum checks.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: u8,
    pub(crate) body: Bytes,
    /// The frame's size on the wire, for the byte counters.
    pub(crate) wire_bytes: usize,
}

/// The handshake, first frame each way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) cluster_id: u64,
    pub(crate) node: NodeId,
    /// The largest frame the sender of the hello reads, so that the other side never writes a
    /// frame it would refuse (nodes configured with different limits still interoperate).
    pub(crate) frame_bytes_max: u32,
    /// Fresh random bytes for this connection: the proofs cover both sides' nonces, so that a
    /// proof recorded on one connection is worthless on any other.
    pub(crate) nonce: Nonce,
    pub(crate) advertise: Bytes,
}

/// Reads one frame of at most `limit` bytes (length field included).
///
/// The length is checked against `limit` before anything is allocated, and the version before the
/// body is read. A connection closed exactly between frames is [`WireError::Closed`]; closed
/// inside one, [`WireError::Io`].
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
) -> Result<Frame, WireError> {
    let mut length = [0; LENGTH_BYTES];
    let first = reader.read(&mut length).await?;
    if first == 0 {
        return Err(WireError::Closed);
    }
    reader.read_exact(&mut length[first..]).await?;
    let length = u32::from_le_bytes(length);
    let wire_bytes = LENGTH_BYTES as u64 + u64::from(length);
    if wire_bytes > limit as u64 {
        return Err(WireError::TooLarge { bytes: wire_bytes, limit });
    }
    if (length as usize) < HEADER_BYTES + CRC_BYTES {
        return Err(WireError::TooShort(length));
    }
    let mut header = [0; HEADER_BYTES];
    reader.read_exact(&mut header).await?;
    if header[0] != VERSION {
        return Err(WireError::Version(header[0]));
    }
    // Safe to allocate now: `length` is within the caller's limit.
    let mut rest = vec![0; length as usize - HEADER_BYTES];
    reader.read_exact(&mut rest).await?;
    let body_len = rest.len() - CRC_BYTES;
    let mut crc = [0; CRC_BYTES];
    crc.copy_from_slice(&rest[body_len..]);
    let stored = u32::from_le_bytes(crc);
    let computed = crc32c::crc32c_append(crc32c::crc32c(&header), &rest[..body_len]);
    if stored != computed {
        return Err(WireError::Checksum { stored, computed });
    }
    rest.truncate(body_len);
    Ok(Frame { kind: header[1], body: Bytes::from(rest), wire_bytes: wire_bytes as usize })
}

/// Starts a frame of `kind` at the end of `out` and returns where it starts, for [`end_frame`].
fn begin_frame(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; LENGTH_BYTES]); // filled in by `end_frame`
    out.extend_from_slice(&[VERSION, kind]);
    start
}

/// Finishes the frame that starts at `start`: appends the checksum and fills in the length.
fn end_frame(out: &mut Vec<u8>, start: usize) {
    let crc = crc32c::crc32c(&out[start + LENGTH_BYTES..]);
    out.extend_from_slice(&crc.to_le_bytes());
    let length = out.len() - start - LENGTH_BYTES;
    let length = u32::try_from(length).expect("frame sizes are bounded below 4 GiB by the config");
    out[start..start + LENGTH_BYTES].copy_from_slice(&length.to_le_bytes());
}

/// Appends `hello` as a frame to `out`.
pub(crate) fn encode_hello(hello: &Hello, out: &mut Vec<u8>) {
    let start = begin_frame(out, KIND_HELLO);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&hello.cluster_id.to_le_bytes());
    out.extend_from_slice(&hello.node.0.to_le_bytes());
    out.extend_from_slice(&hello.frame_bytes_max.to_le_bytes());
    out.extend_from_slice(&hello.nonce);
    let advertise_len = u32::try_from(hello.advertise.len()).expect("checked by the config");
    out.extend_from_slice(&advertise_len.to_le_bytes());
    out.extend_from_slice(&hello.advertise);
    end_frame(out, start);
}

/// The body of the one frame encoded in `frame`, which the handshake proofs cover.
pub(crate) fn frame_body(frame: &[u8]) -> &[u8] {
    &frame[LENGTH_BYTES + HEADER_BYTES..frame.len() - CRC_BYTES]
}

/// Appends a proof frame to `out`.
pub(crate) fn encode_proof(proof: &Proof, out: &mut Vec<u8>) {
    let start = begin_frame(out, KIND_PROOF);
    out.extend_from_slice(proof);
    end_frame(out, start);
}

/// Reads a proof out of `frame`. Anything but a proof of the exact length is an authentication
/// failure: a peer that sends a batch instead has not authenticated.
pub(crate) fn decode_proof(frame: Frame) -> Result<Proof, WireError> {
    if frame.kind != KIND_PROOF {
        return Err(WireError::Auth("expected a proof frame"));
    }
    <Proof>::try_from(&frame.body[..]).map_err(|_| WireError::Auth("proof of the wrong length"))
}

/// The size of a hello frame advertising `advertise_bytes`.
pub(crate) fn hello_frame_bytes(advertise_bytes: usize) -> usize {
    FRAME_OVERHEAD_BYTES + HELLO_FIXED_BYTES + advertise_bytes
}

/// Reads a hello out of `frame`; the advertised bytes share the frame's buffer.
pub(crate) fn decode_hello(frame: Frame) -> Result<Hello, WireError> {
    if frame.kind != KIND_HELLO {
        return Err(WireError::UnexpectedKind { kind: frame.kind, expected: "a hello" });
    }
    let mut cursor = Cursor::new(&frame.body);
    let truncated = WireError::Malformed("hello: truncated");
    let magic: [u8; 4] = cursor.take().ok_or(truncated)?;
    if magic != MAGIC {
        return Err(WireError::Magic(magic));
    }
    let fixed = (|| {
        Some((
            cursor.u64()?,
            cursor.u64()?,
            cursor.u32()?,
            cursor.take::<{ NONCE_BYTES }>()?,
            cursor.u32()?,
        ))
    })();
    let (cluster_id, node, frame_bytes_max, nonce, advertise_len) =
        fixed.ok_or(WireError::Malformed("hello: truncated"))?;
    if cursor.remaining() != advertise_len as usize {
        return Err(WireError::Malformed("hello: advertised length does not match the frame"));
    }
    if (frame_bytes_max as usize) < FRAME_BYTES_MIN {
        // Nothing could be written to such a peer.
        return Err(WireError::Malformed("hello: frame limit below the minimum"));
    }
    let advertise = frame.body.slice(cursor.at..);
    Ok(Hello { cluster_id, node: NodeId(node), frame_bytes_max, nonce, advertise })
}

/// The size of the smallest frame that carries a message of `payload_bytes` alone.
pub(crate) fn message_frame_bytes(payload_bytes: usize) -> usize {
    FRAME_OVERHEAD_BYTES + MESSAGE_HEADER_BYTES + payload_bytes
}

/// Writes messages as Batch frames into one buffer, starting a new frame whenever the next message
/// would push the current one past the limit, so that one write carries a whole flush.
pub(crate) struct BatchEncoder<'a> {
    out: &'a mut Vec<u8>,
    to: NodeId,
    frame_bytes_max: usize,
    /// Where the open frame starts in `out`, if one is open.
    open: Option<usize>,
    frames: u64,
}

impl<'a> BatchEncoder<'a> {
    /// An encoder appending frames addressed to `to`, each at most `frame_bytes_max` bytes.
    pub(crate) fn new(out: &'a mut Vec<u8>, to: NodeId, frame_bytes_max: usize) -> Self {
        BatchEncoder { out, to, frame_bytes_max, open: None, frames: 0 }
    }

    /// Appends one message. Precondition: it fits in a frame on its own
    /// (`message_frame_bytes(payload.len()) <= frame_bytes_max`), which callers check first.
    pub(crate) fn push(&mut self, group: GroupId, payload: &[u8]) {
        let message_bytes = MESSAGE_HEADER_BYTES + payload.len();
        assert!(message_frame_bytes(payload.len()) <= self.frame_bytes_max, "message too large");
        if let Some(start) = self.open {
            if self.out.len() - start + message_bytes + CRC_BYTES > self.frame_bytes_max {
                end_frame(self.out, start);
                self.open = None;
            }
        }
        if self.open.is_none() {
            self.open = Some(begin_frame(self.out, KIND_BATCH));
            self.frames += 1;
        }
        self.out.extend_from_slice(&group.0.to_le_bytes());
        self.out.extend_from_slice(&self.to.0.to_le_bytes());
        let payload_len = u32::try_from(payload.len()).expect("bounded by the frame limit");
        self.out.extend_from_slice(&payload_len.to_le_bytes());
        self.out.extend_from_slice(payload);
    }

    /// Closes the open frame and returns how many frames were written.
    pub(crate) fn finish(self) -> u64 {
        if let Some(start) = self.open {
            end_frame(self.out, start);
        }
        self.frames
    }
}

/// Reads the messages of a Batch frame addressed to `me`.
///
/// The whole frame is checked before any message is handed out, so a bad frame delivers nothing.
/// A lone message's payload shares the frame's buffer (no copy; the common case for large
/// messages, which fill frames). When a frame holds several messages each payload is copied into
/// its own buffer: a consumer that keeps one small payload for long (a log entry, say) must not
/// pin a whole large frame in memory.
pub(crate) fn decode_batch(frame: Frame, me: NodeId) -> Result<Vec<(GroupId, Bytes)>, WireError> {
    if frame.kind != KIND_BATCH {
        return Err(WireError::UnexpectedKind { kind: frame.kind, expected: "a batch" });
    }
    let mut cursor = Cursor::new(&frame.body);
    let mut messages = Vec::new();
    while cursor.remaining() > 0 {
        let header = (|| Some((cursor.u64()?, cursor.u64()?, cursor.u32()?)))();
        let (group, to, payload_len) =
            header.ok_or(WireError::Malformed("batch: truncated message header"))?;
        if to != me.0 {
            return Err(WireError::Misrouted { to: NodeId(to), me });
        }
        let payload_len = payload_len as usize;
        if payload_len > cursor.remaining() {
            return Err(WireError::Malformed("batch: payload runs past the frame"));
        }
        messages.push((GroupId(group), frame.body.slice(cursor.at..cursor.at + payload_len)));
        cursor.at += payload_len;
    }
    if messages.len() > 1 {
        for (_, payload) in &mut messages {
            *payload = Bytes::copy_from_slice(payload);
        }
    }
    Ok(messages)
}

/// A bounds-checked reader over a frame body: every read returns `None` instead of panicking
/// when the body is too short.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, at: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let field = self.bytes.get(self.at..self.at.checked_add(N)?)?;
        self.at += N;
        field.try_into().ok()
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use conclave_core::{RandomSource, SeededRng};

    use super::*;
    use crate::auth::{prove, ClusterSecret, Direction};

    const LIMIT: usize = 1024;

    fn hello() -> Hello {
        Hello {
            cluster_id: 7,
            node: NodeId(3),
            frame_bytes_max: 4096,
            nonce: [0xa5; 32],
            advertise: Bytes::from_static(b"client=10.0.0.3:6379"),
        }
    }

    async fn read(bytes: &[u8]) -> Result<Frame, WireError> {
        read_frame(&mut &bytes[..], LIMIT).await
    }

    /// A frame of `kind` around `body`, with a valid checksum whatever the body holds.
    fn framed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let start = begin_frame(&mut out, kind);
        out.extend_from_slice(body);
        end_frame(&mut out, start);
        out
    }

    fn batch(messages: &[(u64, &[u8])], to: u64, limit: usize) -> (Vec<u8>, u64) {
        let mut out = Vec::new();
        let mut encoder = BatchEncoder::new(&mut out, NodeId(to), limit);
        for (group, payload) in messages {
            encoder.push(GroupId(*group), payload);
        }
        let frames = encoder.finish();
        (out, frames)
    }

    #[tokio::test]
    async fn hello_round_trips_byte_for_byte() {
        let mut out = Vec::new();
        encode_hello(&hello(), &mut out);
        assert_eq!(out.len(), hello_frame_bytes(hello().advertise.len()));
        // length, version, kind, magic: the start of the format as TRANSPORT.md draws it.
        assert_eq!(&out[..10], &[(out.len() - 4) as u8, 0, 0, 0, 2, 1, b'C', b'N', b'C', b'L']);
        let frame = read(&out).await.unwrap();
        assert_eq!(frame.wire_bytes, out.len());
        assert_eq!(decode_hello(frame).unwrap(), hello());
    }

    /// The examples in docs/TRANSPORT.md (a whole handshake and a batch), so that the document
    /// cannot drift from the code.
    #[test]
    fn the_documented_examples_are_exact() {
        let (batch, _) = batch(&[(7, b"hi")], 2, LIMIT);
        let expected = "1c000000 0202 0700000000000000 0200000000000000 02000000 6869 d1a4d4f8";
        assert_eq!(hex(&batch), expected.replace(' ', ""));
        let hello = |node: u64, first_nonce_byte: u8, advertise: &'static [u8]| {
            let mut out = Vec::new();
            let fields = Hello {
                cluster_id: 42,
                node: NodeId(node),
                frame_bytes_max: 64 << 20,
                nonce: std::array::from_fn(|i| first_nonce_byte + i as u8),
                advertise: Bytes::from_static(advertise),
            };
            encode_hello(&fields, &mut out);
            out
        };
        let dialer = hello(1, 0x00, b"a");
        let expected = "43000000 0201 434e434c 2a00000000000000 0100000000000000 00000004 \
                        000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f \
                        01000000 61 0948ae5e";
        assert_eq!(hex(&dialer), expected.replace(' ', ""));
        let acceptor = hello(2, 0x20, b"b");
        let expected = "43000000 0201 434e434c 2a00000000000000 0200000000000000 00000004 \
                        202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f \
                        01000000 62 a4251cd5";
        assert_eq!(hex(&acceptor), expected.replace(' ', ""));
        let secret = ClusterSecret::new(*b"s3cret");
        let proof = |direction| {
            let mut out = Vec::new();
            let proof = prove(&secret, direction, frame_body(&dialer), frame_body(&acceptor));
            encode_proof(&proof, &mut out);
            out
        };
        let expected = "26000000 0203 \
                        cf5b84cd2bdf0a63b0169163e27d33dcab689038f766dab6a3477ada17ca2f10 73d089ce";
        assert_eq!(hex(&proof(Direction::Acceptor)), expected.replace(' ', ""));
        let expected = "26000000 0203 \
                        3a9d858725ee9d9af54c5f54e63c720da79907a1661efc324b1d289ee9b654ce c6597f04";
        assert_eq!(hex(&proof(Direction::Dialer)), expected.replace(' ', ""));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[tokio::test]
    async fn batch_round_trips_and_splits_at_the_frame_limit() {
        let payload = [7u8; 100];
        let messages: Vec<(u64, &[u8])> = (0..30).map(|g| (g, &payload[..])).collect();
        let (out, frames) = batch(&messages, 2, LIMIT);
        // 120 bytes a message, 10 of frame overhead: 8 messages in each of 3 frames, 6 in the last.
        assert_eq!(frames, 4);
        let mut rest = &out[..];
        let mut received = Vec::new();
        while !rest.is_empty() {
            let frame = read_frame(&mut rest, LIMIT).await.unwrap();
            assert!(frame.wire_bytes <= LIMIT);
            received.extend(decode_batch(frame, NodeId(2)).unwrap());
        }
        assert_eq!(received.len(), 30);
        for (i, (group, body)) in received.iter().enumerate() {
            assert_eq!((*group, &body[..]), (GroupId(i as u64), &payload[..]));
        }
    }

    #[tokio::test]
    async fn oversized_length_is_refused_before_reading_the_body() {
        // Only the length field is there: reading on would fail with an IO error instead.
        let length = (LIMIT as u32 - 3).to_le_bytes();
        let err = read(&length).await.unwrap_err();
        assert!(
            matches!(err, WireError::TooLarge { bytes, limit: LIMIT } if bytes == LIMIT as u64 + 1)
        );
        let err = read(&u32::MAX.to_le_bytes()).await.unwrap_err();
        assert!(matches!(err, WireError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn wrong_version_short_length_and_bad_crc_are_refused() {
        let (mut out, _) = batch(&[(1, b"x")], 2, LIMIT);
        out[4] = 1;
        assert!(matches!(read(&out).await, Err(WireError::Version(1))));
        out[4] = VERSION;
        out[12] ^= 1; // inside the body
        assert!(matches!(read(&out).await, Err(WireError::Checksum { .. })));
        let short = [5, 0, 0, 0, VERSION, KIND_BATCH, 0, 0, 0];
        assert!(matches!(read(&short).await, Err(WireError::TooShort(5))));
        assert!(matches!(read(&[]).await, Err(WireError::Closed)));
        assert!(matches!(read(&short[..3]).await, Err(WireError::Io(_))));
    }

    #[tokio::test]
    async fn misrouted_and_malformed_batches_are_refused() {
        let (out, _) = batch(&[(1, b"x")], 2, LIMIT);
        let err = decode_batch(read(&out).await.unwrap(), NodeId(3)).unwrap_err();
        assert!(matches!(err, WireError::Misrouted { to: NodeId(2), me: NodeId(3) }));
        // Every cut of a valid body, re-framed with a valid checksum, is malformed, never a panic.
        let body = read(&out).await.unwrap().body;
        for cut in 1..body.len() {
            let frame = read(&framed(KIND_BATCH, &body[..cut])).await.unwrap();
            assert!(matches!(decode_batch(frame, NodeId(2)), Err(WireError::Malformed(_))));
        }
        let mut hello_frame = Vec::new();
        encode_hello(&hello(), &mut hello_frame);
        let err = decode_batch(read(&hello_frame).await.unwrap(), NodeId(2)).unwrap_err();
        assert!(matches!(err, WireError::UnexpectedKind { kind: KIND_HELLO, .. }));
    }

    #[tokio::test]
    async fn truncated_hellos_and_bad_magic_are_refused() {
        let mut out = Vec::new();
        encode_hello(&hello(), &mut out);
        let body = read(&out).await.unwrap().body;
        for cut in 0..body.len() {
            let result = decode_hello(read(&framed(KIND_HELLO, &body[..cut])).await.unwrap());
            assert!(matches!(result, Err(WireError::Malformed(_))), "cut at {cut}");
        }
        let mut bad_magic = body.to_vec();
        bad_magic[0] = b'X';
        let frame = read(&framed(KIND_HELLO, &bad_magic)).await.unwrap();
        assert!(matches!(decode_hello(frame), Err(WireError::Magic(_))));
    }

    #[tokio::test]
    async fn random_bytes_never_panic() {
        let mut rng = SeededRng::new(11);
        for _ in 0..2000 {
            let len = rng.between(0, 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if len >= FRAME_OVERHEAD_BYTES && rng.chance(0.5) {
                // A plausible length and version, so that the body parsers see garbage too.
                bytes[..4].copy_from_slice(&(len as u32 - 4).to_le_bytes());
                bytes[4] = VERSION;
                let crc = crc32c::crc32c(&bytes[4..len - 4]);
                bytes[len - 4..].copy_from_slice(&crc.to_le_bytes());
            }
            if let Ok(frame) = read(&bytes).await {
                let body = frame.body.clone();
                let _ = decode_batch(frame, NodeId(1));
                let _ = decode_hello(Frame { kind: KIND_HELLO, body, wire_bytes: len });
            }
        }
    }
}
