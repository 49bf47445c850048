//! The simulator's agenda: events ordered by virtual time, ties broken by insertion order.
//!
//! Breaking ties by a sequence number (rather than by the event's contents, or not at all) is what
//! makes a run reproducible: two events scheduled for the same microsecond always fire in the order
//! they were scheduled, whatever they contain.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A min-queue of events keyed by `(time_us, insertion sequence)`.
pub(crate) struct EventQueue<E> {
    heap: BinaryHeap<Scheduled<E>>,
    /// The sequence number the next pushed event gets; strictly increasing, never reused.
    seq_next: u64,
}

/// One queued event with its ordering key.
struct Scheduled<E> {
    time_us: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.time_us, self.seq) == (other.time_us, other.seq)
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    /// Reversed, because `BinaryHeap` pops the greatest element and we want the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time_us, other.seq).cmp(&(self.time_us, self.seq))
    }
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub(crate) fn new() -> EventQueue<E> {
        EventQueue { heap: BinaryHeap::new(), seq_next: 0 }
    }

    /// Schedules `event` at virtual time `time_us`.
    pub(crate) fn push(&mut self, time_us: u64, event: E) {
        let seq = self.seq_next;
        self.seq_next += 1;
        self.heap.push(Scheduled { time_us, seq, event });
    }

    /// The time of the earliest event, if any.
    pub(crate) fn peek_time_us(&self) -> Option<u64> {
        self.heap.peek().map(|scheduled| scheduled.time_us)
    }

    /// Removes and returns the earliest event with its time.
    pub(crate) fn pop(&mut self) -> Option<(u64, E)> {
        self.heap.pop().map(|scheduled| (scheduled.time_us, scheduled.event))
    }

    /// Number of queued events.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order() {
        let mut queue = EventQueue::new();
        for (time, name) in [(30, "c"), (10, "a"), (20, "b"), (5, "first")] {
            queue.push(time, name);
        }
        assert_eq!(queue.peek_time_us(), Some(5));
        let order: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, vec![(5, "first"), (10, "a"), (20, "b"), (30, "c")]);
        assert!(queue.pop().is_none());
    }

    #[test]
    fn ties_fire_in_insertion_order() {
        let mut queue = EventQueue::new();
        for value in 0..100u32 {
            // Many events at two instants, interleaved: within an instant, insertion order holds.
            queue.push(u64::from(value % 2) * 7, value);
        }
        assert_eq!(queue.len(), 100);
        let order: Vec<u32> = std::iter::from_fn(|| queue.pop()).map(|(_, v)| v).collect();
        let evens: Vec<u32> = (0..100).filter(|v| v % 2 == 0).collect();
        let odds: Vec<u32> = (0..100).filter(|v| v % 2 == 1).collect();
        assert_eq!(order, [evens, odds].concat());
    }

    #[test]
    fn events_pushed_while_draining_keep_order() {
        let mut queue = EventQueue::new();
        queue.push(10, 1);
        queue.push(10, 2);
        let (_, first) = queue.pop().unwrap();
        assert_eq!(first, 1);
        // Scheduled "now" after an event already waiting at the same instant: it goes after it.
        queue.push(10, 3);
        assert_eq!(queue.pop().unwrap().1, 2);
        assert_eq!(queue.pop().unwrap().1, 3);
    }
}
