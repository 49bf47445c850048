//! The application side of a group: what committed commands are applied to.

use bytes::Bytes;
use conclave_core::Index;

use crate::error::BoxError;

/// Builds a state machine's image off the group's loop; see [`StateMachine::begin_snapshot`].
pub type SnapshotJob = Box<dyn FnOnce() -> Bytes + Send>;

/// A deterministic state machine replicated by a consensus group.
///
/// Every node applies the same commands in the same order, so `apply` must depend on nothing but
/// its state and the command: no clock, no randomness, no IO. Its output is what the proposing
/// client receives as the command's reply.
pub trait StateMachine: Send + 'static {
    /// What applying a command returns to the client that proposed it.
    type Output: Send + 'static;

    /// Applies one committed command at log position `index`.
    fn apply(&mut self, index: Index, command: &[u8]) -> Self::Output;

    /// An image of the whole state, from which [`StateMachine::restore`] rebuilds it: taken to
    /// compact the log, and sent to followers that lag behind the compacted log.
    fn snapshot(&self) -> Bytes;

    /// A point-in-time copy of the state that builds the same image as
    /// [`StateMachine::snapshot`] later, on another thread: the group's loop calls this (holding
    /// the state lock only as long as it runs) and hands the job to a snapshot thread, so
    /// serialising a large state never stalls heartbeats, replication or commits.
    ///
    /// The default serialises at once, which stalls the loop for as long as `snapshot` takes;
    /// a state machine whose state can be copied cheaply (reference-counted values, structural
    /// sharing) should override it with a copy and defer the encoding to the job.
    fn begin_snapshot(&self) -> SnapshotJob {
        let image = self.snapshot();
        Box::new(move || image)
    }

    /// Replaces the state with an image taken by [`StateMachine::snapshot`]. A damaged image is
    /// refused with the state machine's own error; the node then stops rather than serve a
    /// state it cannot trust.
    fn restore(&mut self, image: &[u8]) -> Result<(), BoxError>;
}
