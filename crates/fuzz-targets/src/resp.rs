//! The RESP parsers: what every client connection feeds the server, and what clients read back.

use bytes::{Bytes, BytesMut};
use conclave_resp::{
    parse_command, parse_frame, CommandParser, Frame, Limits, ParseError, Version,
};

/// Small limits, so that the fuzzer reaches every limit with short inputs.
const LIMITS: Limits =
    Limits { bulk_bytes_max: 64, elements_max: 8, inline_bytes_max: 48, depth_max: 6 };

type Parsed = Result<Vec<Bytes>, ParseError>;

/// Parses the commands in `data[1..]` twice, as a server receives them in pieces (cut where
/// `data[0]` says) and as one buffer, and checks both give the same commands and the same error.
/// The server's [`CommandParser`] resumes where the previous piece ended; any disagreement with a
/// fresh parse of the whole buffer is a bug in the resuming.
pub fn resp_command(data: &[u8]) {
    let Some((&cuts, stream)) = data.split_first() else { return };
    assert_eq!(in_pieces(stream, cuts), at_once(stream));
}

/// Commands parsed as the bytes arrive, `cuts` choosing the piece sizes (1 to 16 bytes).
fn in_pieces(stream: &[u8], cuts: u8) -> Vec<Parsed> {
    let mut parser = CommandParser::new(LIMITS);
    let mut next_cut = u32::from(cuts);
    let (mut start, mut end) = (0, 0);
    let mut parsed = Vec::new();
    loop {
        match parser.parse(&stream[start..end]) {
            Ok(Some((args, used))) => {
                assert!(used > 0 && used <= end - start, "took {used} of {} bytes", end - start);
                parsed.push(Ok(args));
                start += used;
            }
            Ok(None) if end == stream.len() => return parsed,
            Ok(None) => {
                next_cut = next_cut.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                end = (end + 1 + (next_cut >> 16) as usize % 16).min(stream.len());
            }
            Err(error) => {
                parsed.push(Err(error));
                return parsed;
            }
        }
        assert!(
            parser.bytes_examined() <= 8 * stream.len() as u64 + 64,
            "{} bytes examined for {} received: parsing is not linear",
            parser.bytes_examined(),
            stream.len()
        );
    }
}

/// Commands parsed from the whole buffer, each with a fresh parser.
fn at_once(stream: &[u8]) -> Vec<Parsed> {
    let mut parsed = Vec::new();
    let mut start = 0;
    loop {
        match parse_command(&stream[start..], &LIMITS) {
            Ok(Some((args, used))) => {
                parsed.push(Ok(args));
                start += used;
            }
            Ok(None) => return parsed,
            Err(error) => {
                parsed.push(Err(error));
                return parsed;
            }
        }
    }
}

/// Parses a reply value from `data`; a value that parses must encode (RESP3, or RESP2 when the
/// first byte is odd) to bytes that parse back to a value encoding the same way.
pub fn resp_frame(data: &[u8]) {
    let Some((&mode, reply)) = data.split_first() else { return };
    let Ok(Some((frame, used))) = parse_frame(reply, &LIMITS) else { return };
    assert!(used > 0 && used <= reply.len());
    let version = if mode & 1 == 1 { Version::Resp2 } else { Version::Resp3 };
    let encoded = encode(&frame, version);
    // RESP2 flattens maps into arrays twice as long: read back within the default limits.
    let (again, again_used) = match parse_frame(&encoded, &Limits::default()) {
        Ok(Some(parsed)) => parsed,
        other => panic!("{frame:?} encoded as {encoded:?} parses as {other:?}"),
    };
    assert_eq!(again_used, encoded.len());
    assert_eq!(encode(&again, version), encoded, "{frame:?} changes when encoded and parsed");
}

fn encode(frame: &Frame, version: Version) -> Bytes {
    let mut out = BytesMut::new();
    frame.encode(version, &mut out);
    out.freeze()
}

pub(crate) fn command_seeds() -> Vec<Vec<u8>> {
    vec![
        b"\x05*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
        b"\x11GET \"a b\" 'c\\'d' e\r\nPING\n*0\r\n*-1\r\n".to_vec(),
    ]
}

pub(crate) fn frame_seeds() -> Vec<Vec<u8>> {
    let reply = Frame::Array(vec![
        Frame::bulk("v"),
        Frame::Null,
        Frame::Integer(-7),
        Frame::error("ERR no"),
        Frame::ok(),
    ]);
    let mut seeds = Vec::new();
    for (mode, version) in [(0, Version::Resp3), (1, Version::Resp2)] {
        let mut seed = vec![mode];
        seed.extend_from_slice(&encode(&reply, version));
        seeds.push(seed);
    }
    seeds.push(b"\x00%1\r\n+k\r\n,1.5\r\n".to_vec());
    seeds.push(b"\x00~2\r\n#t\r\n(123456789012345678901234567890\r\n".to_vec());
    seeds
}
