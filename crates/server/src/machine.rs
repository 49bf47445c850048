//! The key-value store and the user table as the runtime's state machine.
//!
//! A log entry whose first byte is [`acl::ENTRY_TAG`](crate::acl) changes the user table;
//! every other entry is the key-value store's. A snapshot holds both:
//!
//! ```text
//! image    = magic "CNSM"  version:u8 (= 2)  kv_len:u64le kv_image  acl_len:u64le acl_image
//!            checksum:8 bytes (the first 8 bytes of SHA-256 over everything before it)
//! ```
//!
//! Version 1 images, written before users were replicated, are a bare key-value image (magic
//! "CKVS"): they are still read, with the user table as a new cluster has it.

use bytes::{BufMut, Bytes, BytesMut};
use conclave_core::Index;
use conclave_kv::KvStore;
use conclave_resp::Frame;
use conclave_runtime::{BoxError, SnapshotJob, StateMachine};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::acl::{self, Users};

const MAGIC: &[u8; 4] = b"CNSM";
const VERSION: u8 = 2;
const CHECKSUM_LEN: usize = 8;

/// [`KvStore`] and [`Users`] replicated by a group: a command's reply is what applying it
/// returned.
#[derive(Debug)]
pub struct KvMachine {
    /// The store.
    pub store: KvStore,
    /// The users and their permissions.
    pub users: Users,
    /// Counts changes to `users`, so that connections re-check their user (and close when it
    /// was deleted or disabled) as soon as a change is applied, idle ones included.
    acl_changes: watch::Sender<u64>,
}

impl Default for KvMachine {
    fn default() -> KvMachine {
        KvMachine {
            store: KvStore::default(),
            users: Users::default(),
            acl_changes: watch::channel(0).0,
        }
    }
}

impl KvMachine {
    /// A receiver that wakes whenever the user table changes.
    pub fn watch_users(&self) -> watch::Receiver<u64> {
        self.acl_changes.subscribe()
    }

    fn users_changed(&self) {
        self.acl_changes.send_modify(|n| *n += 1);
    }
}

/// Why a state machine image could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum MachineImageError {
    /// Not an image this release reads, or damaged.
    #[error("the snapshot image is damaged or of an unknown format: {0}")]
    Malformed(&'static str),
    /// The key-value part is damaged.
    #[error(transparent)]
    Kv(#[from] conclave_kv::SnapshotError),
    /// The user table is damaged.
    #[error(transparent)]
    Acl(#[from] acl::AclImageError),
}

impl StateMachine for KvMachine {
    type Output = Frame;

    fn apply(&mut self, _index: Index, command: &[u8]) -> Frame {
        if command.first() == Some(&acl::ENTRY_TAG) {
            let reply = self.users.apply(command);
            if !matches!(reply, Frame::Error(_)) {
                self.users_changed();
            }
            return reply;
        }
        self.store.apply(command)
    }

    fn snapshot(&self) -> Bytes {
        encode(&self.store.snapshot(), &self.users.image())
    }

    /// Clones the store on the loop (O(1): its maps are persistent and share their nodes) and
    /// takes the small user table's image, and encodes the clone on the snapshot thread.
    fn begin_snapshot(&self) -> SnapshotJob {
        let store = self.store.clone();
        let users = self.users.image();
        Box::new(move || encode(&store.snapshot(), &users))
    }

    fn restore(&mut self, image: &[u8]) -> Result<(), BoxError> {
        let (store, mut users) = decode(image)?;
        users.succeed(&self.users);
        self.store = store;
        self.users = users;
        self.users_changed();
        Ok(())
    }
}

/// An image of the current version: the store's and the user table's, with a checksum.
fn encode(kv: &[u8], users: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(kv.len() + users.len() + 32);
    out.put_slice(MAGIC);
    out.put_u8(VERSION);
    out.put_u64_le(kv.len() as u64);
    out.put_slice(kv);
    out.put_u64_le(users.len() as u64);
    out.put_slice(users);
    let checksum = Sha256::digest(&out);
    out.put_slice(&checksum[..CHECKSUM_LEN]);
    out.freeze()
}

/// Reads an image of either version.
fn decode(image: &[u8]) -> Result<(KvStore, Users), MachineImageError> {
    if image.starts_with(b"CKVS") {
        return Ok((KvStore::restore(image)?, Users::default()));
    }
    if image.len() < MAGIC.len() + 1 + CHECKSUM_LEN || &image[..MAGIC.len()] != MAGIC {
        return Err(MachineImageError::Malformed("unknown magic bytes"));
    }
    if image[MAGIC.len()] != VERSION {
        return Err(MachineImageError::Malformed("unknown version"));
    }
    let (covered, checksum) = image.split_at(image.len() - CHECKSUM_LEN);
    if Sha256::digest(covered)[..CHECKSUM_LEN] != *checksum {
        return Err(MachineImageError::Malformed("checksum mismatch"));
    }
    let mut rest = &covered[MAGIC.len() + 1..];
    let kv = part(&mut rest)?;
    let users = part(&mut rest)?;
    if !rest.is_empty() {
        return Err(MachineImageError::Malformed("trailing bytes"));
    }
    Ok((KvStore::restore(kv)?, Users::restore(users)?))
}

/// A `len:u64le bytes` part from the front of `rest`.
fn part<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], MachineImageError> {
    let truncated = MachineImageError::Malformed("truncated");
    let (len, tail) = rest.split_first_chunk::<8>().ok_or(truncated)?;
    let len = usize::try_from(u64::from_le_bytes(*len)).unwrap_or(usize::MAX);
    if tail.len() < len {
        return Err(MachineImageError::Malformed("truncated"));
    }
    let (part, tail) = tail.split_at(len);
    *rest = tail;
    Ok(part)
}

#[cfg(test)]
mod tests {
    use conclave_kv::{plan, Plan};

    use super::*;

    fn apply(machine: &mut KvMachine, line: &str) -> Frame {
        let args: Vec<Bytes> = line.split(' ').map(|w| Bytes::from(w.to_owned())).collect();
        match acl::plan_write(&args, 0) {
            Some(conclave_kv::Plan::Write(command)) => machine.apply(Index(1), &command),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn users_and_keys_survive_a_snapshot() {
        let mut machine = KvMachine::default();
        let mut changes = machine.watch_users();
        assert_eq!(apply(&mut machine, "SET k v"), Frame::ok());
        assert_eq!(apply(&mut machine, "ACL SETUSER alice on >pw ~k* +get"), Frame::ok());
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        let image = machine.snapshot();
        let mut restored = KvMachine::default();
        restored.restore(&image).unwrap();
        assert_eq!(restored.users, machine.users);
        assert_eq!(restored.store, machine.store);
        assert_eq!(restored.snapshot(), image);
        let mut damaged = image.to_vec();
        damaged[10] ^= 1;
        assert!(KvMachine::default().restore(&damaged).is_err());
        assert!(KvMachine::default().restore(&image[..image.len() - 1]).is_err());
    }

    #[test]
    fn version_1_images_are_still_read() {
        let mut store = KvStore::new();
        let args: Vec<Bytes> = ["SET", "k", "v"].map(Bytes::from).to_vec();
        let Some(conclave_kv::Plan::Write(set)) = conclave_kv::plan(&args, 0) else { panic!() };
        store.apply(&set);
        let mut machine = KvMachine::default();
        machine.restore(&store.snapshot()).unwrap();
        assert_eq!(machine.store, store);
        assert_eq!(machine.users, Users::default());
    }

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

    #[test]
    fn a_snapshot_job_carries_the_users_too() {
        let mut machine = KvMachine::default();
        assert_eq!(apply(&mut machine, "ACL SETUSER alice on >pw ~k* +get"), Frame::ok());
        let image = machine.begin_snapshot()();
        assert_eq!(image, machine.snapshot());
        let mut restored = KvMachine::default();
        restored.restore(&image).unwrap();
        assert_eq!(restored.users, machine.users);
    }
}
