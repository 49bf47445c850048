//! The key-value store as the runtime's state machine.

use bytes::Bytes;
use conclave_core::Index;
use conclave_kv::KvStore;
use conclave_resp::Frame;
use conclave_runtime::{BoxError, SnapshotJob, StateMachine};

/// [`KvStore`] replicated by a group: a command's reply is what applying it returned.
#[derive(Debug, Default)]
pub struct KvMachine {
    /// The store.
    pub store: KvStore,
}

impl StateMachine for KvMachine {
    type Output = Frame;

    fn apply(&mut self, _index: Index, command: &[u8]) -> Frame {
        self.store.apply(command)
    }

    fn snapshot(&self) -> Bytes {
        self.store.snapshot()
    }

    /// Clones the store on the loop (values are reference-counted, so this copies the map's
    /// nodes, not the data) and encodes the clone on the snapshot thread.
    fn begin_snapshot(&self) -> SnapshotJob {
        let store = self.store.clone();
        Box::new(move || store.snapshot())
    }

    fn restore(&mut self, image: &[u8]) -> Result<(), BoxError> {
        self.store = KvStore::restore(image)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use conclave_kv::{plan, Plan};

    use super::*;

    fn apply_set(machine: &mut KvMachine, key: &'static str, value: &'static str) {
        let args: Vec<Bytes> = ["SET", key, value].map(Bytes::from).to_vec();
        let Some(Plan::Write(command)) = plan(&args, 1) else { panic!("SET plans a write") };
        assert_eq!(machine.apply(Index(1), &command), Frame::ok());
    }

    #[test]
    fn a_snapshot_job_encodes_the_state_as_of_when_it_was_begun() {
        let mut machine = KvMachine::default();
        apply_set(&mut machine, "a", "1");
        let job = machine.begin_snapshot();
        let expected = machine.snapshot();
        // Writes applied while the job waits for its thread are not in its image.
        apply_set(&mut machine, "a", "2");
        apply_set(&mut machine, "b", "3");
        let image = job();
        assert_eq!(image, expected);
        let mut restored = KvMachine::default();
        restored.restore(&image).unwrap();
        assert_eq!(restored.store.len(), 1);
        assert_ne!(restored.snapshot(), machine.snapshot());
    }
}
