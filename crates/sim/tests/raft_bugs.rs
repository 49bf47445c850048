//! The simulator proves it can catch bugs: each deliberately broken variant of the Raft core (the
//! `bug-injection` switches) must be found by a sweep of seeds under random faults. Each test
//! prints how many seeds the sweep needed; `docs/TESTING.md` records the figures.

mod raft_support;

use conclave_raft::{Bugs, Config};
use conclave_sim::{FaultSet, Invariant, Options, Violation};
use raft_support::*;

/// Sweeps seeds `0..seeds_max` with every fault on until one run breaks an invariant.
fn first_catch(
    bugs: Bugs,
    ops: u64,
    seeds_max: u64,
    configure: impl Fn(&mut Config) + Copy + 'static,
) -> (u64, Violation) {
    for seed in 0..seeds_max {
        let options = Options { seed, ops, faults: FaultSet::all(), ..Options::default() };
        let mut sim = raft_sim(options, move |config| {
            configure(config);
            config.bugs = bugs;
        });
        if let Err(violation) = sim.run() {
            eprintln!("{bugs:?}: caught at seed {seed} ({} seeds): {violation}", seed + 1);
            return (seed, violation);
        }
    }
    panic!("{bugs:?} survived {seeds_max} seeds under every fault");
}

fn assert_one_of(violation: &Violation, expected: &[Invariant]) {
    assert!(expected.contains(&violation.invariant), "unexpected invariant: {}", show(violation));
}

#[test]
fn granting_two_votes_in_one_term_is_caught() {
    let bugs = Bugs { grant_two_votes_per_term: true, ..Bugs::default() };
    let (_, violation) = first_catch(bugs, 1_000, 100, |_| {});
    assert_one_of(&violation, &[Invariant::ElectionSafety]);
}

#[test]
fn keeping_a_conflicting_suffix_is_caught() {
    let bugs = Bugs { skip_truncating_conflicts: true, ..Bugs::default() };
    let (_, violation) = first_catch(bugs, 1_000, 100, |_| {});
    assert_one_of(
        &violation,
        &[
            Invariant::LogMatching,
            Invariant::StateMachineSafety,
            Invariant::CommitDurability,
            Invariant::LeaderCompleteness,
            // A follower that keeps a stale suffix can report a committed index with the stale
            // entry's term.
            Invariant::MonotonicCommit,
        ],
    );
}

#[test]
fn applying_before_commit_is_caught() {
    let bugs = Bugs { apply_before_commit: true, ..Bugs::default() };
    let (_, violation) = first_catch(bugs, 1_000, 100, |_| {});
    // An entry applied before it is committed is seen by later reads as if it were a settled
    // write, so a read served elsewhere (correctly) without it looks stale: the read check
    // catches the bug as surely as the applied-sequence check.
    assert_one_of(
        &violation,
        &[Invariant::StateMachineSafety, Invariant::AcknowledgedWrite, Invariant::LinearizableRead],
    );
}

#[test]
fn forgetting_to_persist_the_vote_is_caught() {
    let bugs = Bugs { forget_to_persist_vote: true, ..Bugs::default() };
    let (_, violation) = first_catch(bugs, 1_000, 100, |_| {});
    assert_one_of(&violation, &[Invariant::DurablePromises]);
}

/// With the default batching, a new leader's no-op travels in the same AppendEntries as the
/// old-term entries it carries, so counting replicas of those entries commits the no-op too and
/// the bug stays latent. Sending one entry at a time without pipelining opens the window the
/// paper's Figure 8 describes, and the commit-durability check sees the unsafe commit.
#[test]
fn committing_old_term_entries_by_counting_is_caught() {
    let bugs = Bugs { commit_old_terms_by_counting: true, ..Bugs::default() };
    let (_, violation) = first_catch(bugs, 2_000, 100, |config| {
        config.append_entries_max = 1;
        config.inflight_messages_max = 1;
    });
    assert_one_of(&violation, &[Invariant::CommitDurability, Invariant::LeaderCompleteness]);
}
