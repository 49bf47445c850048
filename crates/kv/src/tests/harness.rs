//! A node in a test: a store, a clock, and commands written as lines, run through the same
//! plan → apply/query path the server takes.

use bytes::Bytes;
use conclave_resp::Frame;

use crate::{expire_command, plan, KvStore, Plan};

/// The start of every test's clock: late 2023, so deadlines look like real ones.
pub(crate) const EPOCH_MS: u64 = 1_700_000_000_000;

/// A store with a wall clock; `run` plays the server: plan, then propose-and-apply, read or reply.
pub(crate) struct Node {
    pub(crate) store: KvStore,
    pub(crate) now: u64,
}

impl Node {
    pub(crate) fn new() -> Node {
        Node { store: KvStore::new(), now: EPOCH_MS }
    }

    /// Runs one command line (see [`args`]); `TICK` applies [`expire_command`] at `now`.
    pub(crate) fn run(&mut self, line: &str) -> Frame {
        if line == "TICK" {
            return self.apply(&expire_command(self.now));
        }
        self.run_args(&args(line))
    }

    /// Runs one command given as arguments.
    pub(crate) fn run_args(&mut self, args: &[Bytes]) -> Frame {
        match plan(args, self.now).expect("a data command") {
            Plan::Write(command) => self.apply(&command),
            Plan::Read(query) => self.store.query(&query, self.now),
            Plan::Reply(reply) => reply,
        }
    }

    /// Applies a log entry and checks the store's invariants afterwards.
    pub(crate) fn apply(&mut self, command: &[u8]) -> Frame {
        let reply = self.store.apply(command);
        self.store.assert_invariants();
        reply
    }

    /// Runs each line and checks its reply, naming the line that failed.
    #[track_caller]
    pub(crate) fn script(&mut self, steps: &[(&str, Frame)]) {
        for (line, expected) in steps {
            assert_eq!(&self.run(line), expected, "reply to `{line}`");
        }
    }

    /// Moves this node's wall clock forward.
    pub(crate) fn advance(&mut self, ms: u64) {
        self.now += ms;
    }
}

/// Splits a command line on spaces; the word `''` stands for an empty argument.
pub(crate) fn args(line: &str) -> Vec<Bytes> {
    line.split_whitespace()
        .map(|word| if word == "''" { Bytes::new() } else { Bytes::from(word.to_owned()) })
        .collect()
}

pub(crate) fn ok() -> Frame {
    Frame::ok()
}

pub(crate) fn int(n: i64) -> Frame {
    Frame::Integer(n)
}

pub(crate) fn bulk(text: &str) -> Frame {
    Frame::Bulk(Bytes::from(text.to_owned()))
}

pub(crate) fn nil() -> Frame {
    Frame::Null
}

pub(crate) fn err(text: &str) -> Frame {
    Frame::error(text)
}

pub(crate) fn simple(text: &str) -> Frame {
    Frame::Simple(Bytes::from(text.to_owned()))
}

pub(crate) fn bulks(texts: &[&str]) -> Frame {
    Frame::Array(texts.iter().map(|text| bulk(text)).collect())
}

pub(crate) const SYNTAX: &str = "ERR syntax error";
pub(crate) const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
