//! Histories and linearizability: did a concurrent system behave as if each operation took
//! effect atomically at some instant between its invocation and its completion?
//!
//! # How a check flows
//!
//! 1. A history arrives as events, one per line ([`History`]; docs/HISTORY.md): recorded with
//!    [`HistoryWriter`], or imported from Jepsen's log ([`import::jepsen_log`]) or EDN
//!    ([`import::jepsen_edn`]).
//! 2. [`pair_operations`] turns events into [`Operation`]s: intervals with an outcome. `fail`ed
//!    ones are dropped (they did not happen); `info` ones may take effect at any point after
//!    their invocation, or never.
//! 3. A [`Model`] (register, CAS register, key-value, counter, set, queue, bank) says what each
//!    operation may return in each state.
//! 4. The operations are split by key and each key is searched for a linearization
//!    ([`checker`](crate) internals: Wing-Gong/Lowe with memoisation), within a [`Budget`].
//! 5. The [`Report`]'s [`Verdict`] is `Linearizable`, `NotLinearizable` (with the longest
//!    linearizable prefix and the operations that could not be placed after it) or `Unknown`.
//!    It is never a guess. [`render_html`] draws the history as a timeline.
//!
//! ```
//! use conclave_check::{check_history, CheckOptions, Event, History, ModelKind, Verdict};
//!
//! // A write of 1 completes; afterwards a read returns nil: a stale read.
//! let history = History::from_events(vec![
//!     Event::invoke(0, "write").with_value(1),
//!     Event::ok(0, "write"),
//!     Event::invoke(1, "read"),
//!     Event::ok(1, "read").with_result(conclave_check::Value::Nil),
//! ]);
//! let options = CheckOptions { model: Some(ModelKind::Register), ..CheckOptions::default() };
//! let (ops, report) = check_history(&history, &options).unwrap();
//! let Verdict::NotLinearizable(violation) = &report.verdict else { panic!() };
//! assert_eq!(violation.prefix, vec![0]); // the write could be placed
//! assert_eq!(violation.unplaceable, vec![1]); // the read could not
//! assert_eq!(ops[1].describe(), "p1 read -> nil ok");
//! assert_eq!(report.verdict.exit_code(), 1);
//! ```
//!
//! The crate is pure apart from the time budget's clock and [`read_history`]: no threads, no
//! sockets (its `clippy.toml` refuses them), so it can run inside the simulator.

#![deny(missing_docs)]

mod checker;
mod error;
mod history;
mod html;
pub mod import;
pub mod model;
mod operation;
mod partition;
mod report;
pub mod synth;
mod value;

#[cfg(test)]
mod tests;

pub use error::Error;
pub use history::{Event, EventKind, History, HistoryWriter, Meta};
pub use html::{escape, render_html};
pub use import::{parse_history, read_history, Format};
pub use model::{Model, ModelKind};
pub use operation::{pair_operations, OpId, Operation, Outcome};
pub use partition::{check_history, check_operations, Budget, CheckOptions};
pub use report::{Report, Verdict, Violation};
pub use value::Value;
