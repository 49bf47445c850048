//! The search for a linearization of one key's operations: Wing & Gong's algorithm with Lowe's
//! just-in-time linearization and memoisation (the variant Knossos and Porcupine use).
//!
//! # The idea
//!
//! Lay every invocation ("call") and completion ("return") on one list in real-time order. Walk
//! it from the front. At a call, try to linearize that operation now: if the model accepts it in
//! the current state and the pair (set of linearized operations, new state) has not been seen
//! before, take it out of the list and start again from the front. At a return, the operation
//! that returns there must already have been linearized and is not, so undo the last choice and
//! try the next call after it. When every `ok` operation is linearized, the history is
//! linearizable; when there is nothing left to undo, it is not.
//!
//! Only calls before the first remaining return are ever tried, which is exactly the set of
//! operations that could take effect next (Lowe's "just in time"): an operation whose call comes
//! after some pending return cannot precede that operation.
//!
//! # Unknown outcomes
//!
//! An `info` operation's return is placed after everything (+infinity), so it may take effect
//! any time after its call. It need not take effect at all: the search stops as soon as every
//! `ok` operation is placed, leaving `info` ones unplaced. Calls are tried in list order, so an
//! unknown outcome is first assumed to have happened as soon as it could. (Deferring `info`
//! calls until the search is stuck was measured to be far slower, for every model: the search
//! then goes deep down wrong branches before it tries the missing effect where it belongs.)
//!
//! # Why the memo is sound
//!
//! What can happen next depends only on which operations remain (the list) and the model's
//! state. Two paths that linearized the same set and reached an equal state have the same
//! futures, so the second is skipped. Equality is exact (no hash fingerprints): a collision
//! would prune a live branch and could turn a linearizable history into a false violation.
//!
//! `info` operations get one more rule (see `Memo`): a configuration is also skipped when one
//! with the same `ok` operations and state but fewer `info` operations placed was seen, since
//! leaving an `info` operation unplaced only keeps options open. Proof sketch, for a search that
//! ends in failure although a linearization exists: take a visited configuration X from which a
//! linearization can be completed, with the most `ok` operations placed. Follow the completion
//! from X; each step is tried from a visited configuration with the same `ok` set and state as
//! the completion's and a subset of its `info` set (by induction: the step is available there,
//! and its result is visited or dominated by a visited one). At the completion's next `ok`
//! operation this yields a visited, completable configuration with more `ok` operations than X:
//! a contradiction.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use crate::model::Model;
use crate::operation::OpId;

/// One operation as the search sees it.
#[derive(Clone, Debug)]
pub(crate) struct Candidate<Op> {
    /// The history's operation number, for reports.
    pub id: OpId,
    /// The decoded operation.
    pub op: Op,
    /// The invocation's event position.
    pub call: usize,
    /// The `ok` completion's event position; `None` for an `info` operation (return at
    /// +infinity, and it need not be linearized).
    pub ret: Option<usize>,
}

/// Limits on one search. Steps make the budget deterministic; the deadline bounds wall time;
/// `memo_values_max` bounds memory: the states held by the memo and by the current path,
/// weighed by `Model::weight`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meter {
    pub steps_left: u64,
    pub deadline: Option<Instant>,
    pub memo_values_max: usize,
}

/// What one search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Search {
    /// Every `ok` operation was placed; this is the order found.
    Linearizable,
    /// No order exists.
    NotLinearizable {
        /// The deepest partial linearization the search reached, in order.
        prefix: Vec<OpId>,
        /// The operations that could have taken effect next at that point (their calls precede
        /// the first pending return), none of which led to a linearization, in invocation order.
        unplaceable: Vec<OpId>,
        /// The model's state after `prefix`, for people.
        state: String,
    },
    /// A limit was reached before an answer.
    Unknown,
}

/// How much work a search did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Effort {
    /// Loop iterations (tries and undos).
    pub steps: u64,
    /// Configurations (linearized set, state) recorded in the memo.
    pub visited: u64,
}

/// How often the deadline is read: reading the clock every step would cost more than the step.
const CLOCK_EVERY_STEPS: u64 = 1024;

/// The doubly linked list of calls and returns, in arrays (node 0 is the head, the last node
/// the tail). Node `1 + 2i` is candidate `i`'s call, node `2 + 2i` its return.
///
/// Invariant: removing a call's pair and later restoring it, in last-removed-first-restored
/// order, leaves the list exactly as before (dancing links).
struct Timeline {
    next: Vec<usize>,
    prev: Vec<usize>,
    tail: usize,
}

impl Timeline {
    fn new<Op>(candidates: &[Candidate<Op>]) -> Timeline {
        let tail = 2 * candidates.len() + 1;
        // Sort nodes by event position; returns at +infinity go last, in candidate order.
        let mut order: Vec<(usize, usize)> = Vec::with_capacity(2 * candidates.len());
        for (i, c) in candidates.iter().enumerate() {
            order.push((c.call, 1 + 2 * i));
            order.push((c.ret.unwrap_or(usize::MAX), 2 + 2 * i));
        }
        order.sort_unstable();
        let mut next = vec![tail; tail + 1];
        let mut prev = vec![0; tail + 1];
        let mut last = 0;
        for &(_, node) in &order {
            next[last] = node;
            prev[node] = last;
            last = node;
        }
        next[last] = tail;
        prev[tail] = last;
        Timeline { next, prev, tail }
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        self.prev[n] = node;
    }

    /// Takes candidate `i` out: it has been linearized.
    fn lift(&mut self, i: usize) {
        self.unlink(1 + 2 * i);
        self.unlink(2 + 2 * i);
    }

    /// Puts candidate `i` back: its linearization was undone.
    fn unlift(&mut self, i: usize) {
        self.relink(2 + 2 * i);
        self.relink(1 + 2 * i);
    }
}

/// A set of numbers as bits: part of the memo's key.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Box<[u64]>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)].into_boxed_slice())
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }

    fn is_subset(&self, other: &Bits) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & !b == 0)
    }
}

/// The configurations visited: (`ok` operations linearized, state) with, for each, the sets of
/// `info` operations linearized alongside, kept minimal (none a subset of another).
///
/// A configuration is skipped when one with the same `ok` set and state and a subset of its
/// `info` operations was visited: the unplaced `info` operations only add options (they may take
/// effect later or never, and constrain nobody), so the smaller one's futures include the larger
/// one's. Without this, every subset of `info` operations multiplies the search.
struct Memo<S> {
    map: HashMap<Bits, HashMap<S, Vec<Bits>>>,
    entries: usize,
    /// The values held, by `Model::weight`, plus one per entry.
    weight: usize,
}

impl<S: Clone + Eq + Hash> Memo<S> {
    fn new() -> Self {
        Memo { map: HashMap::new(), entries: 0, weight: 0 }
    }

    /// Records a configuration; false if it, or one that dominates it, was visited before.
    fn insert(&mut self, ok: &Bits, state: &S, info: &Bits, weight: usize) -> bool {
        if !self.map.contains_key(ok) {
            self.map.insert(ok.clone(), HashMap::new());
        }
        let Some(by_state) = self.map.get_mut(ok) else { return true };
        if !by_state.contains_key(state) {
            by_state.insert(state.clone(), Vec::new());
            self.weight += weight;
        }
        let Some(infos) = by_state.get_mut(state) else { return true };
        if infos.iter().any(|seen| seen.is_subset(info)) {
            return false;
        }
        infos.retain(|seen| !info.is_subset(seen));
        infos.push(info.clone());
        self.entries += 1;
        self.weight += 1;
        true
    }
}

/// Which of the two sets a candidate lives in, and its number there.
#[derive(Clone, Copy)]
enum Slot {
    Ok(usize),
    Info(usize),
}

/// The linearized set, split into `ok` and `info` operations for the memo.
struct Linearized {
    slots: Vec<Slot>,
    ok: Bits,
    info: Bits,
}

impl Linearized {
    fn new<Op>(candidates: &[Candidate<Op>]) -> Linearized {
        let (mut oks, mut infos) = (0, 0);
        let slots: Vec<Slot> = candidates
            .iter()
            .map(|c| match c.ret {
                Some(_) => {
                    oks += 1;
                    Slot::Ok(oks - 1)
                }
                None => {
                    infos += 1;
                    Slot::Info(infos - 1)
                }
            })
            .collect();
        Linearized { slots, ok: Bits::new(oks), info: Bits::new(infos) }
    }

    fn set(&mut self, i: usize, on: bool) {
        let (bits, n) = match self.slots[i] {
            Slot::Ok(n) => (&mut self.ok, n),
            Slot::Info(n) => (&mut self.info, n),
        };
        if on {
            bits.set(n);
        } else {
            bits.clear(n);
        }
    }
}

/// Searches for a linearization of `candidates` (one key's operations) under `model`.
pub(crate) fn search<M: Model>(
    model: &M,
    candidates: &[Candidate<M::Op>],
    meter: Meter,
) -> (Search, Effort) {
    let mut effort = Effort::default();
    let mut remaining_ok = candidates.iter().filter(|c| c.ret.is_some()).count();
    if remaining_ok == 0 {
        // Only unknown outcomes: "none of them happened" is a linearization.
        return (Search::Linearizable, effort);
    }
    let mut timeline = Timeline::new(candidates);
    let mut linearized = Linearized::new(candidates);
    let mut memo: Memo<M::State> = Memo::new();
    // The choices made so far: (candidate, state before it, that state's weight), in
    // linearization order. Its states count against the memory bound like the memo's: a deep
    // path of large states (a set read whole) is as costly as many memo entries.
    let mut stack: Vec<(usize, M::State, usize)> = Vec::new();
    let mut stack_weight = 0;
    let mut state = model.init();
    let ok_total = remaining_ok;
    // The deepest dead end so far: (ok operations placed, info operations placed, report).
    // Depth counts `ok` operations, and fewer `info` ones break ties, because `info` operations
    // are optional: placing more of them is not progress, and only muddles the report.
    let mut best: Option<(usize, usize, Search)> = None;
    let mut steps_left = meter.steps_left;
    let mut node = timeline.next[0];

    let verdict = loop {
        if steps_left == 0 || memo.weight + stack_weight > meter.memo_values_max {
            break Search::Unknown;
        }
        steps_left -= 1;
        effort.steps += 1;
        if effort.steps % CLOCK_EVERY_STEPS == 0
            && meter.deadline.is_some_and(|deadline| Instant::now() >= deadline)
        {
            break Search::Unknown;
        }

        let is_call = node != timeline.tail && node % 2 == 1;
        if is_call {
            let i = (node - 1) / 2;
            if let Some(next_state) = model.step(&state, &candidates[i].op) {
                linearized.set(i, true);
                let weight = model.weight(&next_state);
                if memo.insert(&linearized.ok, &next_state, &linearized.info, weight) {
                    let before = std::mem::replace(&mut state, next_state);
                    let before_weight = model.weight(&before);
                    stack_weight += before_weight;
                    stack.push((i, before, before_weight));
                    timeline.lift(i);
                    if candidates[i].ret.is_some() {
                        remaining_ok -= 1;
                        if remaining_ok == 0 {
                            break Search::Linearizable;
                        }
                    }
                    node = timeline.next[0];
                    continue;
                }
                linearized.set(i, false);
            }
            node = timeline.next[node];
            continue;
        }

        // A return (or, defensively, the tail) of an operation not yet linearized: this path
        // is dead. Remember the deepest dead end for the report, then undo the last choice.
        // Invariant: while an `ok` operation remains, its return lies before the tail, so the
        // walk reaches a return before the tail.
        debug_assert!(node != timeline.tail, "walked past every return with ok ops left");
        let placed_ok = ok_total - remaining_ok;
        let placed_info = stack.len() - placed_ok;
        let deeper = |(ok, info, _): &(usize, usize, Search)| {
            placed_ok > *ok || (placed_ok == *ok && placed_info < *info)
        };
        if best.as_ref().is_none_or(deeper) {
            let report = dead_end(model, candidates, &timeline, &stack, &state, node);
            best = Some((placed_ok, placed_info, report));
        }
        let Some((i, previous, previous_weight)) = stack.pop() else {
            break best.map(|(_, _, dead_end)| dead_end).unwrap_or(Search::Unknown);
        };
        state = previous;
        stack_weight -= previous_weight;
        linearized.set(i, false);
        timeline.unlift(i);
        if candidates[i].ret.is_some() {
            remaining_ok += 1;
        }
        node = timeline.next[1 + 2 * i];
    };
    effort.visited = memo.entries as u64;
    (verdict, effort)
}

/// The report for a dead end at `stuck` (a return node): the linearization so far, and every
/// `ok` operation whose call precedes `stuck` in the remaining list: the operations that could
/// have, and one of which had to, take effect next. (`info` operations there are left out: they
/// never have to take effect.) At the deepest dead end none of them led anywhere: each was
/// refused by the model or led only to configurations already explored.
fn dead_end<M: Model>(
    model: &M,
    candidates: &[Candidate<M::Op>],
    timeline: &Timeline,
    stack: &[(usize, M::State, usize)],
    state: &M::State,
    stuck: usize,
) -> Search {
    let prefix = stack.iter().map(|(i, _, _)| candidates[*i].id).collect();
    let mut unplaceable = Vec::new();
    let mut node = timeline.next[0];
    while node != stuck && node != timeline.tail {
        let candidate = &candidates[(node - 1) / 2];
        if node % 2 == 1 && candidate.ret.is_some() {
            unplaceable.push(candidate.id);
        }
        node = timeline.next[node];
    }
    Search::NotLinearizable { prefix, unplaceable, state: model.show(state) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Register, RegisterOp};
    use crate::value::Value;

    fn unlimited() -> Meter {
        Meter { steps_left: u64::MAX, deadline: None, memo_values_max: usize::MAX }
    }

    fn write(id: usize, call: usize, ret: Option<usize>, v: i64) -> Candidate<RegisterOp> {
        Candidate { id, op: RegisterOp::Write(Value::Int(v)), call, ret }
    }

    fn read(id: usize, call: usize, ret: usize, v: Option<i64>) -> Candidate<RegisterOp> {
        let seen = v.map_or(Value::Nil, Value::Int);
        Candidate { id, op: RegisterOp::Read(Some(seen)), call, ret: Some(ret) }
    }

    #[test]
    fn concurrent_write_and_read_of_either_value() {
        // write 1 |------|
        // read        |------| -> 1 or nil, both fine; -> 2 is not.
        for (seen, expect_ok) in [(Some(1), true), (None, true), (Some(2), false)] {
            let c = vec![write(0, 0, Some(2), 1), read(1, 1, 3, seen)];
            let (verdict, _) = search(&Register::plain(), &c, unlimited());
            assert_eq!(verdict == Search::Linearizable, expect_ok, "{seen:?}: {verdict:?}");
        }
    }

    #[test]
    fn the_report_names_the_stuck_read_and_the_prefix() {
        // write 1 completes, then a read returns nil: stale.
        let c = vec![write(0, 0, Some(1), 1), read(1, 2, 3, None)];
        let (verdict, _) = search(&Register::plain(), &c, unlimited());
        assert_eq!(
            verdict,
            Search::NotLinearizable { prefix: vec![0], unplaceable: vec![1], state: "1".into() }
        );
    }

    #[test]
    fn info_ops_may_never_happen_and_steps_run_out() {
        let c = vec![write(0, 0, None, 5), read(1, 1, 2, None)];
        assert_eq!(search(&Register::plain(), &c, unlimited()).0, Search::Linearizable);
        let c = vec![write(0, 0, None, 5), read(1, 1, 2, Some(5))];
        assert_eq!(search(&Register::plain(), &c, unlimited()).0, Search::Linearizable);
        let c = vec![read(0, 0, 1, Some(5))];
        let meter = Meter { steps_left: 0, ..unlimited() };
        assert_eq!(search(&Register::plain(), &c, meter).0, Search::Unknown);
    }
}
