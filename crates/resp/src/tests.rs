//! Parser and encoder tests: known byte strings, every prefix of a valid input is "incomplete"
//! (never an error, never a wrong value), hostile lengths are refused before allocation, and
//! encode/parse round trips (proptest).

use bytes::Bytes;
use proptest::prelude::*;

use crate::{parse_command, parse_frame, CommandParser, Frame, Limits, ParseError, Version};

fn args(list: &[&str]) -> Vec<Bytes> {
    list.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
}

fn command(buf: &[u8]) -> Result<Option<(Vec<Bytes>, usize)>, ParseError> {
    parse_command(buf, &Limits::default())
}

#[test]
fn commands_parse_and_every_prefix_is_incomplete() {
    let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nv\r\nal\r\n";
    let (parsed, used) = command(input).unwrap().unwrap();
    assert_eq!(parsed, vec![Bytes::from("SET"), Bytes::from("key"), Bytes::from("v\r\nal")]);
    assert_eq!(used, input.len());
    for cut in 0..input.len() {
        assert_eq!(command(&input[..cut]), Ok(None), "prefix of {cut} bytes");
    }
    // Pipelining: the second command starts where the first ended.
    let mut two = input.to_vec();
    two.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    let (_, used) = command(&two).unwrap().unwrap();
    assert_eq!(command(&two[used..]).unwrap().unwrap().0, args(&["PING"]));
}

#[test]
fn inline_commands_follow_redis_quoting() {
    let (parsed, used) = command(b"set k \"a b\\x41\\n\" 'it\\'s'\r\nrest").unwrap().unwrap();
    assert_eq!(
        parsed,
        vec![Bytes::from("set"), Bytes::from("k"), Bytes::from("a bA\n"), Bytes::from("it's")]
    );
    assert_eq!(used, 27);
    assert_eq!(command(b"PING\n").unwrap().unwrap().0, args(&["PING"]));
    assert_eq!(command(b"   \r\n").unwrap().unwrap().0, Vec::<Bytes>::new());
    assert_eq!(command(b"get \"k\r\n"), Err(ParseError::UnbalancedQuotes));
    assert_eq!(command(b"get \"k\"x\r\n"), Err(ParseError::UnbalancedQuotes));
    assert_eq!(command(b"PING"), Ok(None));
}

#[test]
fn malformed_and_hostile_commands_are_refused_with_redis_wording() {
    let cases: [(&[u8], ParseError); 7] = [
        (b"*x\r\n", ParseError::MultibulkLength),
        (b"*99999999999\r\n", ParseError::MultibulkLength),
        (b"*1\r\n+PING\r\n", ParseError::ExpectedBulk(b'+')),
        (b"*1\r\n$-5\r\n", ParseError::BulkLength),
        (b"*1\r\n$4294967296\r\n", ParseError::BulkLength),
        (b"*1\r\n$4\r\nPINGxx", ParseError::MissingCrlf),
        (b"*1\r\n$-1\r\n", ParseError::BulkLength),
    ];
    for (input, expected) in cases {
        assert_eq!(command(input), Err(expected.clone()), "{:?}", String::from_utf8_lossy(input));
    }
    assert_eq!(ParseError::ExpectedBulk(b'+').to_string(), "Protocol error: expected '$', got '+'");
    // A header that never ends is refused once it is clearly too long, not waited on forever.
    assert_eq!(command(&[b'*'; 100]), Err(ParseError::MultibulkLength));
    let small = Limits { inline_bytes_max: 16, ..Limits::default() };
    assert_eq!(parse_command(&[b'a'; 17], &small), Err(ParseError::InlineTooBig));
    assert_eq!(parse_command(&[b'a'; 16], &small), Ok(None));
    let few = Limits { elements_max: 2, bulk_bytes_max: 3, ..Limits::default() };
    assert_eq!(parse_command(b"*3\r\n", &few), Err(ParseError::MultibulkLength));
    assert_eq!(parse_command(b"*1\r\n$4\r\n", &few), Err(ParseError::BulkLength));
}

#[test]
fn replies_encode_in_both_versions() {
    let map = Frame::Map(vec![(Frame::bulk("role"), Frame::Simple(Bytes::from("leader")))]);
    assert_eq!(&map.to_bytes(Version::Resp3)[..], b"%1\r\n$4\r\nrole\r\n+leader\r\n");
    assert_eq!(&map.to_bytes(Version::Resp2)[..], b"*2\r\n$4\r\nrole\r\n+leader\r\n");
    assert_eq!(&Frame::Boolean(true).to_bytes(Version::Resp2)[..], b":1\r\n");
    assert_eq!(&Frame::Boolean(false).to_bytes(Version::Resp3)[..], b"#f\r\n");
    assert_eq!(&Frame::Double(1.5).to_bytes(Version::Resp3)[..], b",1.5\r\n");
    assert_eq!(&Frame::Double(1.5).to_bytes(Version::Resp2)[..], b"$3\r\n1.5\r\n");
    assert_eq!(&Frame::Integer(-42).to_bytes(Version::Resp2)[..], b":-42\r\n");
    assert_eq!(
        &Frame::Integer(i64::MIN).to_bytes(Version::Resp2)[..],
        b":-9223372036854775808\r\n"
    );
    assert_eq!(
        &Frame::error("ERR bad\r\nthing").to_bytes(Version::Resp2)[..],
        b"-ERR bad  thing\r\n"
    );
    let verbatim = Frame::Verbatim { format: *b"txt", text: Bytes::from("hi") };
    assert_eq!(&verbatim.to_bytes(Version::Resp3)[..], b"=6\r\ntxt:hi\r\n");
    assert_eq!(&verbatim.to_bytes(Version::Resp2)[..], b"$2\r\nhi\r\n");
}

#[test]
fn replies_parse_including_resp3_types_and_attributes() {
    let limits = Limits::default();
    let input = b"|1\r\n+ttl\r\n:3\r\n~2\r\n_\r\n(12345678901234567890\r\n";
    let (frame, used) = parse_frame(input, &limits).unwrap().unwrap();
    assert_eq!(used, input.len());
    assert_eq!(
        frame,
        Frame::Set(vec![Frame::Null, Frame::BigNumber(Bytes::from("12345678901234567890"))])
    );
    assert_eq!(parse_frame(b"*-1\r\n", &limits).unwrap().unwrap().0, Frame::Null);
    assert_eq!(parse_frame(b"$-1\r\n", &limits).unwrap().unwrap().0, Frame::Null);
    assert_eq!(parse_frame(b"#x\r\n", &limits), Err(ParseError::Invalid("boolean")));
    assert_eq!(parse_frame(b"?\r\n", &limits), Err(ParseError::Invalid("type byte")));
    let deep = Limits { depth_max: 3, ..Limits::default() };
    assert_eq!(
        parse_frame(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", &deep),
        Err(ParseError::TooDeep)
    );
}

fn frame_strategy() -> impl Strategy<Value = Frame> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..20).prop_map(Bytes::from);
    let line = "[a-zA-Z0-9 ]{0,12}".prop_map(Bytes::from);
    let leaf = prop_oneof![
        line.clone().prop_map(Frame::Simple),
        line.prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        bytes.clone().prop_map(Frame::Bulk),
        Just(Frame::Null),
        any::<bool>().prop_map(Frame::Boolean),
        (-1e12f64..1e12).prop_map(Frame::Double),
        bytes.prop_map(Frame::BulkError),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Frame::Array),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Frame::Set),
            proptest::collection::vec((inner.clone(), inner), 0..3).prop_map(Frame::Map),
        ]
    })
}

proptest! {
    /// RESP3 encodes every value losslessly: parsing the bytes gives the value back, and every
    /// strict prefix is merely incomplete.
    #[test]
    fn resp3_round_trips(frame in frame_strategy()) {
        let bytes = frame.to_bytes(Version::Resp3);
        let (parsed, used) = parse_frame(&bytes, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(parsed, frame);
        for cut in 0..bytes.len() {
            prop_assert_eq!(parse_frame(&bytes[..cut], &Limits::default()), Ok(None));
        }
    }

    /// Any command encoded as clients send it parses back to the same arguments.
    #[test]
    fn commands_round_trip(list in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..30), 1..6)) {
        let frame = Frame::Array(list.iter().map(|a| Frame::Bulk(Bytes::copy_from_slice(a))).collect());
        let bytes = frame.to_bytes(Version::Resp2);
        let (parsed, used) = command(&bytes).unwrap().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(parsed, list.into_iter().map(Bytes::from).collect::<Vec<_>>());
    }

    /// Arbitrary bytes never panic the command parser, and a success never claims more bytes
    /// than it was given.
    #[test]
    fn garbage_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(Some((_, used))) = command(&input) {
            prop_assert!(used <= input.len());
        }
        if let Ok(Some((_, used))) = parse_frame(&input, &Limits::default()) {
            prop_assert!(used <= input.len());
        }
    }
}

/// Feeds `input` one byte at a time, as a hostile client may send it, and returns the parsed
/// command and the bytes the parser examined.
fn parse_byte_by_byte(input: &[u8]) -> (Vec<Bytes>, u64) {
    let mut parser = crate::CommandParser::new(Limits::default());
    for end in 1..input.len() {
        assert_eq!(parser.parse(&input[..end]), Ok(None), "prefix of {end} bytes");
    }
    let (args, used) = parser.parse(input).unwrap().unwrap();
    assert_eq!(used, input.len());
    (args, parser.bytes_examined())
}

fn big_array(elements: usize) -> Vec<u8> {
    let mut input = format!("*{elements}\r\n").into_bytes();
    for i in 0..elements {
        let arg = format!("{i:06}");
        input.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    input
}

/// The report: a large array sent in small pieces cost about 20 times the CPU of the same bytes
/// sent at once, because each piece re-parsed the array from its start. The work must be linear
/// in the bytes, whatever the pieces.
#[test]
fn a_command_sent_a_byte_at_a_time_is_parsed_in_linear_work() {
    let small = big_array(2_000);
    let large = big_array(8_000);
    let (args, small_work) = parse_byte_by_byte(&small);
    assert_eq!(args.len(), 2_000);
    let (args, large_work) = parse_byte_by_byte(&large);
    assert_eq!((args.len(), &args[7_999][..]), (8_000, &b"007999"[..]));
    // Each byte is looked at a bounded number of times: once in a value, a few times in a
    // header of a few bytes that is re-read while it is incomplete.
    assert!(
        large_work <= 8 * large.len() as u64,
        "{large_work} examined for {} bytes",
        large.len()
    );
    // Four times the bytes, about four times the work (quadratic parsing would be sixteen).
    assert!(large_work <= 5 * small_work, "{small_work} then {large_work}");

    let mut inline = vec![b'a'; 60_000];
    inline.extend_from_slice(b" b\r\n");
    let (args, work) = parse_byte_by_byte(&inline);
    assert_eq!(args.len(), 2);
    assert!(work <= 3 * inline.len() as u64, "{work} examined for {} bytes", inline.len());
}

#[test]
fn a_long_header_is_refused_whether_it_arrives_whole_or_in_pieces() {
    // Found by fuzzing: a 45-byte count with its CRLF parsed (as a negative count, an empty
    // command) when it arrived at once, but was refused when it arrived a few bytes at a time.
    let input = format!("*-{}7471417050562181332\r\n", "0".repeat(24));
    assert_eq!(command(input.as_bytes()), Err(ParseError::MultibulkLength));
    let mut parser = CommandParser::new(Limits::default());
    let outcome = (1..=input.len())
        .map(|end| parser.parse(&input.as_bytes()[..end]))
        .find(|r| *r != Ok(None));
    assert_eq!(outcome, Some(Err(ParseError::MultibulkLength)));
    // The longest header accepted is 32 bytes, CRLF not counted, even with its CR alone so far.
    let longest = format!("*{}1\r\n$4\r\nPING\r\n", "0".repeat(31));
    assert_eq!(
        command(longest.as_bytes()).map(|parsed| parsed.map(|(args, _)| args.len())),
        Ok(Some(1))
    );
    assert_eq!(parse_command(&longest.as_bytes()[..34], &Limits::default()), Ok(None));
    assert_eq!(
        parse_command(format!("*{}1\r\n", "0".repeat(32)).as_bytes(), &Limits::default()),
        Err(ParseError::MultibulkLength)
    );
}

#[test]
fn reply_lines_with_a_cr_or_lf_inside_are_invalid() {
    // Found by fuzzing: such a line parsed, and its frame could not be encoded again.
    for input in [&b"+a\rb\r\n"[..], b"-ERR a\nb\r\n", b"(1234\r5\r\n", b":1\n2\r\n"] {
        assert!(
            matches!(parse_frame(input, &Limits::default()), Err(ParseError::Invalid(_))),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}
