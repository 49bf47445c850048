//! A simulated client: one operation in flight at a time, retried until acknowledged.
//!
//! The client is a small state machine; the simulation drives it (it owns the nodes the client
//! proposes to). Its decisions use the client's own random stream, so adding a client does not
//! change what the network or the nemesis do.

use bytes::Bytes;
use conclave_core::{NodeId, Proposal, RandomSource, ReadId, ReadMode, SeededRng};

/// Delay before retrying at the leader a refusal named: short, since the hint is probably right.
pub(crate) const RETRY_HINTED_US: u64 = 1_000;
/// Delay range before retrying at a random node when no leader is known: long enough for an
/// election to make progress, so clients do not spin while there is no leader.
pub(crate) const RETRY_BLIND_MIN_US: u64 = 10_000;
pub(crate) const RETRY_BLIND_MAX_US: u64 = 50_000;

/// The command bytes of operation `op` of `client`: unique across the run, so the checker can tell
/// every write apart.
pub(crate) fn command_value(client: u32, op: u64) -> String {
    format!("c{client}-{op}")
}

/// An operation a client is trying to get applied.
#[derive(Clone, Debug)]
pub(crate) struct Op {
    /// Its number within the client.
    pub(crate) seq: u64,
    /// The command bytes.
    pub(crate) value: Bytes,
    /// When the client first invoked it, for latency.
    pub(crate) started_us: u64,
    /// True for a read (then `value` is empty).
    pub(crate) read: bool,
}

/// Where a client is in its loop.
#[derive(Clone, Debug)]
pub(crate) enum ClientState {
    /// No operation in hand; the next wake-up starts a fresh one.
    Idle,
    /// An operation that definitely has not taken effect, to propose again at the next wake-up.
    Retrying(Op),
    /// Proposed to `node`, waiting for it to apply `proposal.index`; a crash of `node` ends the
    /// wait.
    Pending { op: Op, node: NodeId, proposal: Proposal },
    /// Reading from `node`, waiting for read `id` to be served.
    Reading { op: Op, node: NodeId, id: ReadId },
    /// The op phase is over and nothing is in flight.
    Done,
}

/// One simulated client.
pub(crate) struct Client {
    /// 0-based; also the prefix of its command values.
    pub(crate) id: u32,
    pub(crate) rng: SeededRng,
    /// The next operation number.
    pub(crate) op_next: u64,
    /// The node to try next.
    pub(crate) target: NodeId,
    pub(crate) state: ClientState,
    /// The generation of the one wake-up event that counts. Each scheduled wake-up carries the
    /// generation it was scheduled with; bumping this cancels every older one without searching
    /// the event queue.
    pub(crate) wake_generation: u64,
}

impl Client {
    /// A client with its own random stream, starting at a random node.
    pub(crate) fn new(id: u32, mut rng: SeededRng, nodes: usize) -> Client {
        let target = NodeId(rng.between(1, nodes as u64 + 1));
        Client { id, rng, op_next: 0, target, state: ClientState::Idle, wake_generation: 0 }
    }

    /// Starts a fresh operation at `now_us`: a read with probability `read_ratio`, else a write.
    pub(crate) fn op_new(&mut self, now_us: u64, read_ratio: f64) -> Op {
        let seq = self.op_next;
        self.op_next += 1;
        if read_ratio > 0.0 && self.rng.chance(read_ratio) {
            return Op { seq, value: Bytes::new(), started_us: now_us, read: true };
        }
        Op { seq, value: Bytes::from(command_value(self.id, seq)), started_us: now_us, read: false }
    }

    /// How to read this time: ReadIndex or lease, even odds; and whether to ask a random node
    /// (usually a follower, which forwards to the leader) rather than the current target.
    pub(crate) fn read_plan(&mut self, nodes: usize) -> ReadMode {
        if self.rng.chance(1.0 / 3.0) {
            self.retarget_random(nodes);
        }
        if self.rng.chance(0.5) {
            ReadMode::ReadIndex
        } else {
            ReadMode::Lease
        }
    }

    /// Cancels any scheduled wake-up and returns the generation for the next one.
    pub(crate) fn rearm(&mut self) -> u64 {
        self.wake_generation += 1;
        self.wake_generation
    }

    /// Picks a random node to try next, when the last one was no help.
    pub(crate) fn retarget_random(&mut self, nodes: usize) {
        self.target = NodeId(self.rng.between(1, nodes as u64 + 1));
    }

    /// A delay for retrying without a leader hint.
    pub(crate) fn blind_retry_delay_us(&mut self) -> u64 {
        self.rng.between(RETRY_BLIND_MIN_US, RETRY_BLIND_MAX_US + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_get_unique_values_and_targets_stay_in_the_cluster() {
        let mut client = Client::new(3, SeededRng::new(1), 5);
        let a = client.op_new(10, 0.0);
        let b = client.op_new(20, 0.0);
        assert_eq!((a.seq, &a.value[..]), (0, &b"c3-0"[..]));
        assert_eq!((b.seq, &b.value[..], b.started_us), (1, &b"c3-1"[..], 20));
        for _ in 0..100 {
            client.retarget_random(5);
            assert!((1..=5).contains(&client.target.0));
        }
        assert_eq!(client.rearm(), 1);
        assert_eq!(client.rearm(), 2);
    }
}
