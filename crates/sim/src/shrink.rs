//! Shrinking a failing run to a small reproducer a person can read.
//!
//! A random run that breaks an invariant usually does so after tens of thousands of events, most
//! of them irrelevant. [`shrink`] turns it into a run that breaks the same invariant with as few
//! nodes, clients, operations and faults as it can find, each fault as short as it can make it.
//!
//! How: the failing run is first replayed from the fault schedule the random nemesis recorded
//! (same seed, so the network, clients, nodes and disks draw the same numbers), then reduced
//! greedily, in the spirit of delta debugging. Each candidate is a whole deterministic
//! simulation; a candidate is kept when it still breaks the same invariant (the same
//! [`Invariant`], not the same message) in no more events than the original. The reductions, in
//! the order tried each round, until a round changes nothing or the budget runs out:
//!
//! 1. fewer nodes: a voter is taken out (highest id first) and the ids above it move down, with
//!    every fault naming it dropped; then spare nodes;
//! 2. fewer clients: one, half as many, one fewer;
//! 3. drop faults: all of them, then halves, quarters, ... single faults;
//! 4. fewer client operations: the op target is binary-searched downwards;
//! 5. shorter faults: every duration halved, then each one alone; and earlier faults: the whole
//!    schedule moved earlier, so the violation comes after fewer operations;
//! 6. simpler options: no reads, no clock drift, no base loss or duplication, and only the fault
//!    kinds the schedule still uses.
//!
//! A pass that kept nothing is skipped until another pass keeps something.
//!
//! Changing the cluster's shape (nodes, spares, clients) changes every random stream, so those
//! reductions are also tried under a few neighbouring seeds; the reproducer records its seed.
//!
//! After each kept candidate the run is also cut at its violation: the schedule keeps only the
//! faults that started, and the op target drops to one more than the operations acknowledged
//! when the violation struck, which replays the same events and stops there.
//!
//! Everything is deterministic: the same input and budget give the same reproducer. The budget
//! is a number of runs; a caller wanting a wall-clock limit stops the loop from `progress`.

use std::fmt;

use conclave_core::{NodeId, Protocol};
use thiserror::Error;

use crate::options::{FaultSet, Options, OptionsError};
use crate::schedule::ScheduledFault;
use crate::simulation::Simulation;
use crate::violation::{Invariant, Violation};

/// Reductions that change the cluster's shape (nodes, spares, clients) change every random
/// stream anyway (each node's, each disk's, the network's draws), so the same seed gives an
/// unrelated run. Each is therefore also tried under this many further seeds (`seed + 1`, ...)
/// before it is given up: a reproducer with another seed is as good as one with the original.
const SEEDS_PER_RESHAPE: u64 = 16;

/// The shortest a fault is made by halving: a millisecond, below which a fault stops being a
/// fault anyone would recognise (a partition shorter than one message's flight).
const DURATION_MIN_US: u64 = 1_000;

/// The size of a run in the dimensions shrinking reduces; what a person reading it pays for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunSize {
    /// Voters the cluster starts with.
    pub nodes: usize,
    /// Spare nodes, outside the initial membership.
    pub spares: usize,
    /// Simulated clients.
    pub clients: usize,
    /// The op target of the run.
    pub ops: u64,
    /// Operations acknowledged before the run ended (at its violation).
    pub ops_acknowledged: u64,
    /// Faults the nemesis started.
    pub faults: usize,
    /// Their durations added up, in virtual µs (membership changes and transfers count 0).
    pub fault_time_us: u64,
    /// Events the simulation processed.
    pub events: u64,
    /// Virtual time when the run ended, in µs.
    pub time_us: u64,
}

impl fmt::Display for RunSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} nodes", self.nodes)?;
        if self.spares > 0 {
            write!(f, " (+{} spare)", self.spares)?;
        }
        write!(
            f,
            ", {} clients, {} ops ({} acknowledged), {} faults ({:.3}s in all), {} events, \
             virtual {:.3}s",
            self.clients,
            self.ops,
            self.ops_acknowledged,
            self.faults,
            self.fault_time_us as f64 / 1e6,
            self.events,
            self.time_us as f64 / 1e6
        )
    }
}

/// The kind of reduction a shrinking run tried, for progress reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShrinkStep {
    /// The failing run as given.
    Original,
    /// The failing run replayed from its recorded fault schedule.
    Replay,
    /// The run cut at its violation (faults never started dropped, op target lowered).
    CutEnd,
    /// Some faults dropped.
    DropFaults,
    /// A lower op target.
    FewerOps,
    /// Fewer clients.
    FewerClients,
    /// One voter fewer.
    FewerNodes,
    /// One spare node fewer.
    FewerSpares,
    /// Shorter faults.
    ShortenFaults,
    /// The faults moved earlier.
    EarlierFaults,
    /// A simpler option (no reads, no drift, no base loss, fewer fault kinds).
    SimplerOptions,
}

impl ShrinkStep {
    /// A short name for progress lines.
    pub fn name(self) -> &'static str {
        match self {
            ShrinkStep::Original => "original",
            ShrinkStep::Replay => "replay",
            ShrinkStep::CutEnd => "cut-end",
            ShrinkStep::DropFaults => "drop-faults",
            ShrinkStep::FewerOps => "fewer-ops",
            ShrinkStep::FewerClients => "fewer-clients",
            ShrinkStep::FewerNodes => "fewer-nodes",
            ShrinkStep::FewerSpares => "fewer-spares",
            ShrinkStep::ShortenFaults => "shorten-faults",
            ShrinkStep::EarlierFaults => "earlier-faults",
            ShrinkStep::SimplerOptions => "simpler-options",
        }
    }
}

/// What [`shrink`] reports after each run, so a caller can print progress or stop early.
#[derive(Clone, Debug)]
pub struct ShrinkProgress {
    /// Runs so far, this one included.
    pub runs: u64,
    /// What this run tried.
    pub step: ShrinkStep,
    /// Whether it still failed the same way and was kept.
    pub kept: bool,
    /// The smallest failing run so far.
    pub best: RunSize,
}

/// The outcome of shrinking: the smallest failing run found, ready to replay.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The reproducer: the original options with a fault schedule and every reduction applied.
    /// Run with the same protocol, it breaks `violation.invariant` again.
    pub options: Options,
    /// The reproducer's violation.
    pub violation: Violation,
    /// The original run's violation.
    pub original_violation: Violation,
    /// The original run's size.
    pub original: RunSize,
    /// The reproducer's size.
    pub shrunk: RunSize,
    /// Simulations run, the original included.
    pub runs: u64,
    /// True when no reduction applies any more (a local minimum); false when the budget ran out
    /// (or `progress` asked to stop) first.
    pub complete: bool,
}

/// Why a run could not be shrunk.
#[derive(Debug, Error)]
pub enum ShrinkError {
    /// The run passed: there is nothing to shrink.
    #[error("the run (seed {seed}) broke no invariant: nothing to shrink")]
    NoViolation {
        /// Its seed.
        seed: u64,
    },
    /// Replaying the recorded fault schedule did not break the same invariant. Every random
    /// stream but the nemesis's is untouched by a replay, so this points at a replay bug.
    #[error("replaying the recorded fault schedule did not reproduce {invariant}: {outcome}")]
    NotReproduced {
        /// The invariant the original run broke.
        invariant: Invariant,
        /// What the replay did instead.
        outcome: String,
    },
    /// The options (or a candidate derived from them) describe no runnable simulation.
    #[error("invalid simulation options: {0}")]
    Options(#[from] OptionsError),
}

/// Shrinks the failing run `options` describes (random nemesis or a fault schedule) to a small
/// run breaking the same invariant. `build` makes a simulation of the protocol for any options
/// (its node count included); `runs_max` bounds the simulations run; `progress` hears about each
/// one and may stop the search by returning false. Returns [`ShrinkError::NoViolation`] when the
/// run passes.
pub fn shrink<P: Protocol>(
    options: Options,
    build: impl FnMut(Options) -> Result<Simulation<P>, OptionsError>,
    runs_max: u64,
    progress: impl FnMut(&ShrinkProgress) -> bool,
) -> Result<Shrunk, ShrinkError> {
    let mut shrinker = Shrinker { build, progress, runs: 0, runs_max, stopped: false };
    let original = shrinker.trial(&options)?;
    let Some(original_violation) = original.violation.clone() else {
        return Err(ShrinkError::NoViolation { seed: options.seed });
    };
    let target = original_violation.invariant;
    shrinker.report(ShrinkStep::Original, true, original.size);
    let best = replay_recorded(&mut shrinker, options, &original, target)?;
    let mut search = Search { shrinker, target, events_max: original.size.events, best, kept: 0 };
    search.cut_end();
    let complete = search.run_passes();
    let best = search.best;
    Ok(Shrunk {
        violation: best.trial.violation.expect("the best run fails"),
        original_violation,
        original: original.size,
        shrunk: best.trial.size,
        options: best.options,
        runs: search.shrinker.runs,
        complete,
    })
}

/// Replays the `original` run of `options` from the fault schedule it recorded, which must break
/// the `target` invariant again: the starting point of the search.
fn replay_recorded<B, R, P>(
    shrinker: &mut Shrinker<B, R>,
    options: Options,
    original: &Trial,
    target: Invariant,
) -> Result<Best, ShrinkError>
where
    B: FnMut(Options) -> Result<Simulation<P>, OptionsError>,
    R: FnMut(&ShrinkProgress) -> bool,
    P: Protocol,
{
    // Spares are pinned, because their number would otherwise follow the fault kinds, which
    // simplification may change.
    let options = Options {
        spare_nodes: Some(options.spares()),
        fault_schedule: Some(original.schedule.clone()),
        ..options
    };
    let replay = shrinker.trial(&options)?;
    match &replay.violation {
        Some(violation) if violation.invariant == target => {}
        other => {
            let outcome = match other {
                Some(violation) => violation.to_string(),
                None => "no violation".to_string(),
            };
            return Err(ShrinkError::NotReproduced { invariant: target, outcome });
        }
    }
    shrinker.report(ShrinkStep::Replay, true, replay.size);
    Ok(Best { options, trial: replay })
}

/// One simulation's outcome, as the shrinker needs it.
struct Trial {
    violation: Option<Violation>,
    size: RunSize,
    /// The faults that started.
    schedule: Vec<ScheduledFault>,
}

/// Runs simulations within the budget and reports each.
struct Shrinker<B, R> {
    build: B,
    progress: R,
    runs: u64,
    runs_max: u64,
    /// Set when the budget ran out or `progress` asked to stop.
    stopped: bool,
}

impl<B, R> Shrinker<B, R>
where
    R: FnMut(&ShrinkProgress) -> bool,
{
    /// Runs `options` to the end (or the violation).
    fn trial<P: Protocol>(&mut self, options: &Options) -> Result<Trial, OptionsError>
    where
        B: FnMut(Options) -> Result<Simulation<P>, OptionsError>,
    {
        self.runs += 1;
        let mut simulation = (self.build)(options.clone())?;
        let violation = simulation.run().err();
        let schedule = simulation.fault_schedule().to_vec();
        let size = RunSize {
            nodes: options.nodes,
            spares: options.spares(),
            clients: options.clients,
            ops: options.ops,
            ops_acknowledged: simulation.ops_acknowledged(),
            faults: schedule.len(),
            fault_time_us: schedule.iter().filter_map(|fault| fault.duration_us).sum(),
            events: simulation.counters().events_processed,
            time_us: simulation.now_us(),
        };
        Ok(Trial { violation, size, schedule })
    }

    fn report(&mut self, step: ShrinkStep, kept: bool, best: RunSize) {
        let progress = ShrinkProgress { runs: self.runs, step, kept, best };
        if !(self.progress)(&progress) || self.runs >= self.runs_max {
            self.stopped = true;
        }
    }
}

/// The smallest failing run so far.
struct Best {
    options: Options,
    trial: Trial,
}

/// The greedy search: each method tries one kind of reduction and returns whether it kept any.
struct Search<B, R> {
    shrinker: Shrinker<B, R>,
    target: Invariant,
    /// A candidate with more events than the original is no reproducer worth having.
    events_max: u64,
    best: Best,
    /// Candidates kept so far.
    kept: u64,
}

impl<B, R, P> Search<B, R>
where
    B: FnMut(Options) -> Result<Simulation<P>, OptionsError>,
    R: FnMut(&ShrinkProgress) -> bool,
    P: Protocol,
{
    /// Runs the passes, round after round, until none keeps anything (returns true: a local
    /// minimum) or the budget runs out (false). Shape first: a smaller cluster is the biggest
    /// simplification, and it is found most easily while the run still has all its faults and
    /// operations to go wrong with.
    fn run_passes(&mut self) -> bool {
        let passes: [fn(&mut Self) -> bool; 7] = [
            Self::fewer_nodes,
            Self::fewer_clients,
            Self::drop_faults,
            Self::fewer_ops,
            Self::shorten_faults,
            Self::earlier_faults,
            Self::simpler_options,
        ];
        // For each pass, the value of `kept` when it last found nothing: until another pass
        // keeps something, running it again would try the very same candidates.
        let mut fruitless_at = [None; 7];
        while !self.shrinker.stopped {
            let mut ran = false;
            for (pass, fruitless) in passes.iter().zip(&mut fruitless_at) {
                if *fruitless == Some(self.kept) || self.shrinker.stopped {
                    continue;
                }
                ran = true;
                let kept_before = self.kept;
                if !pass(self) {
                    *fruitless = Some(kept_before);
                }
            }
            if !ran {
                return true;
            }
        }
        false
    }

    /// Runs `candidate`; keeps it (and then cuts it at its violation) if it breaks the target
    /// invariant within the event bound. Returns whether it was kept. Candidates that are not
    /// valid options (a reduction gone too far) are simply not kept.
    fn try_candidate(&mut self, step: ShrinkStep, candidate: Options) -> bool {
        if !self.try_exactly(step, candidate) {
            return false;
        }
        self.cut_end();
        true
    }

    /// Tries `candidate`, a change of the cluster's shape, under its own seed and then under
    /// [`SEEDS_PER_RESHAPE`] more.
    fn try_reshaped(&mut self, step: ShrinkStep, candidate: Options) -> bool {
        (0..=SEEDS_PER_RESHAPE).any(|offset| {
            let seed = candidate.seed.wrapping_add(offset);
            self.try_candidate(step, Options { seed, ..candidate.clone() })
        })
    }

    fn try_exactly(&mut self, step: ShrinkStep, candidate: Options) -> bool {
        if self.shrinker.stopped || candidate.validate().is_err() {
            return false;
        }
        let Ok(trial) = self.shrinker.trial(&candidate) else { return false };
        let kept = trial.violation.as_ref().is_some_and(|v| v.invariant == self.target)
            && trial.size.events <= self.events_max;
        if kept {
            self.best = Best { options: candidate, trial };
            self.kept += 1;
        }
        self.shrinker.report(step, kept, self.best.trial.size);
        kept
    }

    /// Cuts the best run at its violation: only the faults that started, and an op target one
    /// above the operations acknowledged when the violation struck (if it struck in the op
    /// phase). That is the same run, stopped at the violation; tried like any candidate, to be
    /// sure.
    fn cut_end(&mut self) {
        let options = &self.best.options;
        let trial = &self.best.trial;
        let mut cut = options.clone();
        cut.fault_schedule = Some(trial.schedule.clone());
        if trial.size.ops_acknowledged < options.ops {
            cut.ops = trial.size.ops_acknowledged + 1;
        }
        if cut != *options {
            self.try_exactly(ShrinkStep::CutEnd, cut);
        }
    }

    fn schedule(&self) -> &[ScheduledFault] {
        self.best.options.fault_schedule.as_deref().unwrap_or(&[])
    }

    /// The best options with `schedule` instead of theirs.
    fn with_schedule(&self, schedule: Vec<ScheduledFault>) -> Options {
        Options { fault_schedule: Some(schedule), ..self.best.options.clone() }
    }

    /// Drops chunks of faults: all, then halves, quarters, ..., single faults.
    fn drop_faults(&mut self) -> bool {
        let mut changed = false;
        let mut chunk = self.schedule().len();
        while chunk > 0 && !self.shrinker.stopped {
            let mut start = 0;
            while start < self.schedule().len() && !self.shrinker.stopped {
                let mut schedule = self.schedule().to_vec();
                let end = (start + chunk).min(schedule.len());
                schedule.drain(start..end);
                if self.try_candidate(ShrinkStep::DropFaults, self.with_schedule(schedule)) {
                    changed = true; // The faults from `start` on moved down: try there again.
                } else {
                    start += chunk;
                }
            }
            chunk = if chunk == 1 { 0 } else { chunk.div_ceil(2).min(chunk - 1) };
        }
        changed
    }

    /// Binary-searches a lower op target.
    fn fewer_ops(&mut self) -> bool {
        let mut changed = false;
        let (mut low, mut high) = (0, self.best.options.ops);
        while low < high && !self.shrinker.stopped {
            let middle = low + (high - low) / 2;
            let candidate = Options { ops: middle, ..self.best.options.clone() };
            if self.try_candidate(ShrinkStep::FewerOps, candidate) {
                changed = true;
                high = self.best.options.ops.min(middle);
            } else {
                low = middle + 1;
            }
        }
        changed
    }

    /// Tries one client, half as many, one fewer.
    fn fewer_clients(&mut self) -> bool {
        let clients = self.best.options.clients;
        let mut tries = vec![1, clients / 2, clients.saturating_sub(1)];
        tries.retain(|count| *count >= 1 && *count < clients);
        tries.dedup();
        for count in tries {
            let candidate = Options { clients: count, ..self.best.options.clone() };
            if self.try_reshaped(ShrinkStep::FewerClients, candidate) {
                return true;
            }
        }
        false
    }

    /// Takes out one voter (highest id first), then one spare, renumbering the ids above it.
    fn fewer_nodes(&mut self) -> bool {
        let mut changed = false;
        let mut voter = self.best.options.nodes;
        while voter >= 1 && self.best.options.nodes > 1 && !self.shrinker.stopped {
            let candidate = self.without_node(NodeId(voter as u64), true);
            if self.try_reshaped(ShrinkStep::FewerNodes, candidate) {
                changed = true;
            }
            voter = voter.min(self.best.options.nodes) - 1;
        }
        while self.best.options.spares() > 0 && !self.shrinker.stopped {
            let last = NodeId(self.best.options.total_nodes() as u64);
            let candidate = self.without_node(last, false);
            if !self.try_reshaped(ShrinkStep::FewerSpares, candidate) {
                break;
            }
            changed = true;
        }
        changed
    }

    /// The best options without node `removed` (a voter, or a spare), the faults adjusted.
    fn without_node(&self, removed: NodeId, voter: bool) -> Options {
        let schedule = self
            .schedule()
            .iter()
            .filter_map(|fault| {
                let action = fault.action.without_node(removed)?;
                Some(ScheduledFault { action, ..fault.clone() })
            })
            .collect();
        let mut options = self.with_schedule(schedule);
        if voter {
            options.nodes -= 1;
        } else {
            options.spare_nodes = Some(options.spares() - 1);
        }
        options
    }

    /// Halves every duration at once while that keeps failing, then each fault's alone.
    fn shorten_faults(&mut self) -> bool {
        let mut changed = false;
        let halve = |fault: &ScheduledFault| match fault.duration_us {
            Some(duration) if duration >= 2 * DURATION_MIN_US => {
                Some(ScheduledFault { duration_us: Some(duration / 2), ..fault.clone() })
            }
            _ => None,
        };
        loop {
            let halved: Vec<ScheduledFault> =
                self.schedule().iter().map(|fault| halve(fault).unwrap_or(fault.clone())).collect();
            if halved == self.schedule()
                || !self.try_candidate(ShrinkStep::ShortenFaults, self.with_schedule(halved))
            {
                break;
            }
            changed = true;
        }
        let mut index = 0;
        while index < self.schedule().len() && !self.shrinker.stopped {
            let mut schedule = self.schedule().to_vec();
            match halve(&schedule[index]) {
                Some(shorter) => schedule[index] = shorter,
                None => {
                    index += 1;
                    continue;
                }
            }
            if self.try_candidate(ShrinkStep::ShortenFaults, self.with_schedule(schedule)) {
                changed = true; // Try halving the same fault again (unless the cut dropped it).
            } else {
                index += 1;
            }
        }
        changed
    }

    /// Moves the whole schedule earlier, by half the time before its first fault, while that
    /// keeps failing: a violation that waited for a long calm start then comes sooner, after
    /// fewer operations (the cut after each success lowers the op target).
    fn earlier_faults(&mut self) -> bool {
        let mut changed = false;
        while !self.shrinker.stopped {
            let Some(first_us) = self.schedule().first().map(|fault| fault.at_us) else { break };
            let shift_us = first_us / 2;
            if shift_us < DURATION_MIN_US {
                break;
            }
            let schedule = self
                .schedule()
                .iter()
                .map(|fault| ScheduledFault { at_us: fault.at_us - shift_us, ..fault.clone() })
                .collect();
            if !self.try_candidate(ShrinkStep::EarlierFaults, self.with_schedule(schedule)) {
                break;
            }
            changed = true;
        }
        changed
    }

    /// Tries options a reader need not think about: no reads, exact clocks, no base loss or
    /// duplication, and only the fault kinds the schedule uses.
    fn simpler_options(&mut self) -> bool {
        let mut changed = false;
        for simplify in [no_reads, exact_clocks, calm_network, used_fault_kinds_only] {
            if let Some(candidate) = simplify(&self.best.options) {
                changed |= self.try_candidate(ShrinkStep::SimplerOptions, candidate);
            }
        }
        changed
    }
}

/// The options without client reads, if they had any.
fn no_reads(options: &Options) -> Option<Options> {
    (options.read_ratio > 0.0).then(|| Options { read_ratio: 0.0, ..options.clone() })
}

/// The options with every clock exact, if some drifted.
fn exact_clocks(options: &Options) -> Option<Options> {
    (options.clock_drift > 0.0).then(|| Options { clock_drift: 0.0, ..options.clone() })
}

/// The options without base message loss and duplication, if they had any.
fn calm_network(options: &Options) -> Option<Options> {
    (options.drop_probability > 0.0 || options.duplicate_probability > 0.0).then(|| Options {
        drop_probability: 0.0,
        duplicate_probability: 0.0,
        ..options.clone()
    })
}

/// The options enabling only the fault kinds their schedule uses (the enabled kinds still shape
/// the world: disk latency, torn writes on crashes), if they enabled others.
fn used_fault_kinds_only(options: &Options) -> Option<Options> {
    let kinds: Vec<_> = options.fault_schedule.iter().flatten().map(|f| f.action.fault()).collect();
    let used = FaultSet::of(&kinds);
    (options.faults != used).then(|| Options { faults: used, ..options.clone() })
}
