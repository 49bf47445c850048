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
