//! The Redis serialization protocol, so that `redis-cli`, `redis-benchmark` and every Redis
//! client can talk to Conclave's servers.
//!
//! - [`parse_command`] reads what clients send: a RESP array of bulk strings, or an inline command
//!   line (what a person types into `telnet`), incrementally and within [`Limits`].
//!   [`CommandParser`] does the same for a server, resuming where the last piece ended, so that
//!   a command costs time linear in its size however it is cut up.
//! - [`Frame`] is a reply; [`Frame::encode`] writes it in RESP2 or, after `HELLO 3`, RESP3
//!   (RESP3-only types fall back to their RESP2 shapes, so a server builds one reply for both).
//! - [`parse_frame`] reads any RESP2/RESP3 value, for clients and tests.
//!
//! The crate is pure: no sockets, no clock.
//!
//! ```
//! use conclave_resp::{parse_command, Frame, Limits, Version};
//!
//! let (args, used) = parse_command(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", &Limits::default())
//!     .unwrap()
//!     .unwrap();
//! assert_eq!((args.len(), &args[0][..], used), (2, &b"GET"[..], 20));
//! assert_eq!(&Frame::Null.to_bytes(Version::Resp2)[..], b"$-1\r\n");
//! assert_eq!(&Frame::Null.to_bytes(Version::Resp3)[..], b"_\r\n");
//! ```
#![deny(missing_docs)]

mod frame;
mod parse;

pub use frame::{Frame, Version};
pub use parse::{parse_command, parse_frame, CommandParser, Limits, ParseError};

#[cfg(test)]
mod tests;
