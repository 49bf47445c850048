//! The shared history: every client appends its invocations and completions here, under one
//! lock, so the order of events is a real-time order the checker can trust.

use std::sync::Mutex;
use std::time::Instant;

use conclave_check::Event;

/// Events in the order they happened, stamped with nanoseconds since the run began.
pub struct Recorder {
    start: Instant,
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// An empty history whose clock starts now.
    pub fn new() -> Recorder {
        Recorder { start: Instant::now(), events: Mutex::new(Vec::new()) }
    }

    /// Appends an event, giving it its index and time. Taking the time under the lock keeps the
    /// times increasing along with the order.
    pub fn record(&self, event: Event) {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let index = events.len() as u64;
        let time = self.start.elapsed().as_nanos() as u64;
        let mut event = event.at(time);
        event.index = Some(index);
        events.push(event);
    }

    /// Milliseconds since the run began, for the nemesis log.
    pub fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The events so far.
    pub fn snapshot(&self) -> Vec<Event> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}
