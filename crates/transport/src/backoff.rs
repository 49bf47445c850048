//! Reconnect delays: exponential, capped, with jitter from a seeded generator.

use std::time::Duration;

use conclave_core::{RandomSource, SeededRng};

/// The delay before a dialer's next attempt.
///
/// Invariant: `min <= current <= max`, and `min > 0` (checked by the config), so a dialer never
/// spins however fast its attempts fail.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    /// Seeded rather than global, as everywhere in Conclave; the seed differs per node pair so
    /// that the dialers of a restarted cluster spread out.
    rng: SeededRng,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration, seed: u64) -> Self {
        assert!(!min.is_zero() && min <= max, "backoff bounds checked by the config");
        Backoff { min, max, current: min, rng: SeededRng::new(seed) }
    }

    /// Starts again from the minimum, after a link that stayed up long enough to count as
    /// healthy.
    pub(crate) fn reset(&mut self) {
        self.current = self.min;
    }

    /// The next delay, between half and all of the current one; the current one then doubles.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let current = self.current;
        self.current = (current * 2).min(self.max);
        let half = current / 2;
        let jitter_nanos = self.rng.between(0, half.as_nanos() as u64 + 1);
        half + Duration::from_nanos(jitter_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_reset() {
        let (min, max) = (Duration::from_millis(20), Duration::from_millis(100));
        let mut backoff = Backoff::new(min, max, 1);
        let expected_caps = [20, 40, 80, 100, 100];
        for cap in expected_caps {
            let cap = Duration::from_millis(cap);
            let delay = backoff.next_delay();
            assert!(delay >= cap / 2 && delay <= cap, "{delay:?} outside {:?}..={cap:?}", cap / 2);
        }
        backoff.reset();
        assert!(backoff.next_delay() <= min);
    }
}
