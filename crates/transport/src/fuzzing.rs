//! Entry points for the coverage-guided fuzz targets (`fuzz/` at the repository root) and for
//! the tests that replay their regression inputs. Not part of the supported API: the frame
//! decoders are private, and this is how the fuzzer reaches them without making them public.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use conclave_core::NodeId;

use crate::auth::PROOF_BYTES;
use crate::frame::{
    decode_batch, decode_hello, decode_proof, encode_hello, encode_proof, read_frame, Frame,
    WireError, HELLO_FRAME_BYTES_MAX, KIND_BATCH, KIND_HELLO, KIND_PROOF, VERSION,
};

/// The node the fuzzed batches are addressed to, so that some pass the routing check.
const ME: NodeId = NodeId(2);
/// The frame limit the fuzzed frames are read with: the hello limit, large enough for any input
/// the fuzzer makes, small enough that a forged length is refused.
const LIMIT: usize = HELLO_FRAME_BYTES_MAX;

/// Reads frames one after another from `data` as a node reads them from a peer, decoding each as
/// the handshake or a batch, until the bytes run out or a frame is refused. Panics only if a
/// decoder panics or a decoded hello or proof does not survive being encoded and decoded again.
///
/// When the first byte is odd, the rest is taken as a sequence of `kind:u8 len:u8 body[len]`
/// and each is framed with a valid length and checksum first, so that the fuzzer reaches the
/// body decoders instead of spending its time on checksums.
pub fn frames(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let wire = if mode & 1 == 1 { framed(rest) } else { rest.to_vec() };
    let mut reader = &wire[..];
    while !reader.is_empty() {
        let Some(result) = now(read_frame(&mut reader, LIMIT)) else {
            panic!("reading from a byte slice never waits");
        };
        let Ok(frame) = result else { return };
        if !decode(frame) {
            return;
        }
    }
}

/// Decodes one frame by its kind; false once the connection would be dropped.
fn decode(frame: Frame) -> bool {
    match frame.kind {
        KIND_HELLO => {
            let Ok(hello) = decode_hello(frame) else { return false };
            let mut again = Vec::new();
            encode_hello(&hello, &mut again);
            let reread = reread(&again).and_then(decode_hello).expect("an encoded hello decodes");
            assert_eq!(reread, hello, "a hello changes when encoded and decoded again");
            true
        }
        KIND_PROOF => {
            let Ok(proof) = decode_proof(frame) else { return false };
            let mut again = Vec::new();
            encode_proof(&proof, &mut again);
            let reread = reread(&again).and_then(decode_proof).expect("an encoded proof decodes");
            assert_eq!(reread, proof, "a proof changes when encoded and decoded again");
            assert_eq!(proof.len(), PROOF_BYTES);
            true
        }
        KIND_BATCH => decode_batch(frame, ME).is_ok(),
        _ => false,
    }
}

fn reread(wire: &[u8]) -> Result<Frame, WireError> {
    now(read_frame(&mut &wire[..], LIMIT)).expect("reading from a byte slice never waits")
}

/// Frames each `kind len body` of `rest` with a valid header and checksum.
fn framed(mut rest: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    while let [kind, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let body = &tail[..len];
        let header = [VERSION, *kind];
        let crc = crc32c::crc32c_append(crc32c::crc32c(&header), body);
        let length = (header.len() + body.len() + 4) as u32;
        wire.extend_from_slice(&length.to_le_bytes());
        wire.extend_from_slice(&header);
        wire.extend_from_slice(body);
        wire.extend_from_slice(&crc.to_le_bytes());
        rest = &tail[len..];
    }
    wire
}

/// Polls `future` once: reading from a byte slice completes without waiting.
fn now<F: Future>(future: F) -> Option<F::Output> {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// A valid handshake and batch, framed, for the fuzzer's seed corpus: `0` then hello, proof,
/// batch frames.
pub fn seed() -> Vec<u8> {
    let hello = crate::frame::Hello {
        cluster_id: 42,
        node: NodeId(1),
        frame_bytes_max: 1 << 20,
        nonce: [7; 32],
        advertise: Bytes::from_static(b"client=127.0.0.1:6379"),
    };
    let mut wire = vec![0];
    encode_hello(&hello, &mut wire);
    encode_proof(&[9; PROOF_BYTES], &mut wire);
    let mut encoder = crate::frame::BatchEncoder::new(&mut wire, ME, 4096);
    encoder.push(crate::GroupId(1), b"vote for me");
    encoder.push(crate::GroupId(7), b"append");
    encoder.finish();
    wire
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_decodes_to_the_end() {
        let wire = seed();
        let mut reader = &wire[1..];
        let mut kinds = Vec::new();
        while !reader.is_empty() {
            let frame = now(read_frame(&mut reader, LIMIT)).unwrap().unwrap();
            kinds.push(frame.kind);
            assert!(decode(frame));
        }
        assert_eq!(kinds, [KIND_HELLO, KIND_PROOF, KIND_BATCH]);
        frames(&wire);
    }

    #[test]
    fn framed_mode_makes_valid_frames_from_any_body() {
        let wire = framed(&[KIND_BATCH, 3, 1, 2, 3, KIND_PROOF, 200, 5]);
        let mut reader = &wire[..];
        let first = now(read_frame(&mut reader, LIMIT)).unwrap().unwrap();
        assert_eq!((first.kind, &first.body[..]), (KIND_BATCH, &[1, 2, 3][..]));
        let second = now(read_frame(&mut reader, LIMIT)).unwrap().unwrap();
        assert_eq!((second.kind, &second.body[..]), (KIND_PROOF, &[5][..]));
    }
}
