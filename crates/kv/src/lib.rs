//! The replicated key-value state machine behind Conclave's Redis-protocol server: Redis's
//! string commands, applied deterministically from a consensus log.
//!
//! # How a command flows
//!
//! 1. The server parses a client's command (with `conclave_resp`) and calls [`plan`] with the
//!    arguments and its wall clock.
//! 2. [`Plan::Reply`]: the arguments alone decide the answer (wrong arity, syntax error, ...);
//!    it is sent at once. [`Plan::Read`]: after a read barrier (ReadIndex or a lease), the server
//!    runs [`KvStore::query`]. [`Plan::Write`]: the server proposes the bytes; once committed,
//!    every node runs [`KvStore::apply`] on them and the proposer sends its result to the client.
//! 3. Raft compacts its log with [`KvStore::snapshot`] and installs images with
//!    [`KvStore::restore`].
//!
//! ```
//! use bytes::Bytes;
//! use conclave_kv::{plan, KvStore, Plan};
//! use conclave_resp::Frame;
//!
//! fn run(store: &mut KvStore, line: &str, now_ms: u64) -> Frame {
//!     let args: Vec<Bytes> = line.split(' ').map(|word| Bytes::from(word.to_owned())).collect();
//!     match plan(&args, now_ms).expect("a data command") {
//!         Plan::Write(command) => store.apply(&command), // after consensus, on every node
//!         Plan::Read(query) => store.query(&query, now_ms), // after a read barrier
//!         Plan::Reply(reply) => reply,
//!     }
//! }
//!
//! let mut store = KvStore::new();
//! assert_eq!(run(&mut store, "SET counter 41", 1_000), Frame::ok());
//! assert_eq!(run(&mut store, "INCR counter", 1_001), Frame::Integer(42));
//! assert_eq!(run(&mut store, "GET counter", 1_002), Frame::bulk("42"));
//! assert_eq!(
//!     run(&mut store, "INCR counter extra", 1_003),
//!     Frame::error("ERR wrong number of arguments for 'incr' command")
//! );
//! ```
//!
//! # Determinism
//!
//! The crate is pure: no IO, no clock reads, no threads, no randomness, no hash seeded per
//! process (its `clippy.toml` refuses them). The same commands applied in the same order give
//! byte-identical state, snapshots and replies on every node.
//!
//! # Expiry: the leader's clock, replicated
//!
//! A node's own clock never decides whether a key has expired; the log does.
//!
//! - Every write carries the proposing leader's clock (`now_ms` given to [`plan`]), and relative
//!   expiries (EX, PX, EXPIRE, SETEX, ...) are turned into absolute deadlines at planning time.
//! - [`KvStore::apply`] first advances the *replicated clock* to `max(clock, now_ms)` of the
//!   command, then deletes every key whose deadline is at or before it (by popping an index
//!   ordered by deadline: O(log n) per expired key, nothing for the others), then executes the
//!   command. So all nodes delete the same keys at the same log position.
//! - Reads see the state as of the last applied command: a key is present until a command whose
//!   clock passes its deadline is applied. [`KvStore::query`]'s `now_ms` only shows time left.
//! - When the cluster is idle no write advances the clock, so the leader proposes
//!   [`expire_command`] once its clock passes [`KvStore::next_expiry`]. **Expiry precision is
//!   therefore bounded by how often the leader proposes it** (plus the commit latency): a key
//!   can stay readable that long past its deadline. It is never deleted early.
//! - The replicated clock never moves backwards: a new leader whose clock is slower than the old
//!   one's proposes smaller `now_ms` values, and they are ignored until its clock catches up.
//!   A deadline computed from a slow clock may already be at or before the replicated clock; the
//!   key is then deleted at once, as Redis deletes a key given a past expiry.
//!
//! # Data structures
//!
//! Keys are kept in a persistent ordered map (`imbl::OrdMap`, so a snapshot's copy is O(1))
//! ordered by `(h(key), key)`, where `h` is a fixed 64-bit hash written out in this crate
//! (FNV-1a with MurmurHash3's finaliser), never `std`'s `RandomState` or `DefaultHasher`, whose
//! output may differ between processes and Rust releases. This gives
//! O(log n) GET and SET with one integer comparison per step, SCAN cursors that are plain `u64`
//! hashes and stay valid on any node and across releases, and deterministic iteration for
//! snapshots. Values are `Bytes`, so reads hand out reference-counted clones, never copies.
//!
//! # SCAN
//!
//! A cursor is the hash to resume from; keys sharing a hash are returned by the same call; 0
//! ends the walk. A key present for the whole scan is returned at least once, whatever is
//! inserted or deleted between calls (see `scan.rs` for the argument).
//!
//! The command set, the log encoding and the snapshot format are described in the crate's
//! README.
#![deny(missing_docs)]

mod apply;
mod codec;
mod command;
mod glob;
mod hash;
mod number;
mod options;
mod query;
mod reply;
mod scan;
mod snapshot;
mod store;
mod wire;
mod write;

use bytes::Bytes;

pub use command::{command_names, plan, Plan};
pub use glob::glob_match;
pub use query::{Query, TtlForm};
pub use snapshot::SnapshotError;
pub use store::KvStore;
pub use wire::WireError;

/// The command the leader proposes when its clock passes [`KvStore::next_expiry`]: applied, it
/// advances the replicated clock to `now_ms` and deletes every key whose deadline is at or before
/// it. Its reply is the number of keys it deleted.
///
/// Propose one at a time (wait for it to apply before the next), since until it is applied
/// `next_expiry` still reports the same deadline. Followers never propose it.
///
/// ```
/// use bytes::Bytes;
/// use conclave_kv::{expire_command, plan, KvStore, Plan};
/// use conclave_resp::Frame;
///
/// let mut store = KvStore::new();
/// let args = ["SET", "session", "x", "PX", "100"].map(Bytes::from);
/// let Some(Plan::Write(set)) = plan(&args, 5_000) else { panic!() };
/// store.apply(&set);
/// assert_eq!(store.next_expiry(), Some(5_100));
/// assert_eq!(store.apply(&expire_command(5_100)), Frame::Integer(1));
/// assert!(store.is_empty());
/// assert_eq!(store.clock(), 5_100);
/// ```
pub fn expire_command(now_ms: u64) -> Bytes {
    codec::encode(now_ms, &write::Write::Tick)
}

#[cfg(test)]
mod tests;
