//! Setting a damaged store aside so that its node can be rebuilt from its peers.
//!
//! Nothing is deleted: every file of the store moves into a `damaged-STAMP` folder inside the
//! store directory (a rename within one file system, so it works even when the directory is a
//! mount point), where an operator can still inspect it. What stays behind is an empty log and
//! a hard state that keeps the saved term and vote but no commit index: the node must never vote
//! twice in a term it already voted in, and it no longer holds the entries a commit index would
//! point at. Deciding when this is safe (the node removed from the cluster first, then re-added
//! as a learner) is the caller's job; `docs/SECURITY.md` explains the procedure.

use std::fs::File;
use std::path::{Path, PathBuf};

use conclave_core::{HardState, Index, NodeId};

use crate::error::{Result, StorageError};
use crate::fs::{self, Io};
use crate::hard_state::{self, HARD_STATE_FILE};
use crate::log::{lock_dir, LOCK_FILE};
use crate::node_id::{read_id, NODE_ID_FILE};

/// The prefix of the folders damaged files are moved into.
pub const DAMAGED_PREFIX: &str = "damaged-";
/// The file naming the node an emptied store was set aside for. The cluster took that node out
/// and back in as a learner; the same directory started under another id would be a voter with
/// an empty log, the very danger the procedure avoids, so a node checks it on start.
pub const REBUILT_FOR_FILE: &str = "rebuilt-for";

/// What [`set_aside`] moved, and what it kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetAside {
    /// The folder now holding the damaged files.
    pub folder: PathBuf,
    /// The names of the files moved into it, sorted.
    pub files: Vec<String>,
    /// The hard state written into the emptied store: the old term and vote, commit 0.
    pub kept: HardState,
}

/// A store directory whose lock is held, so that no node opens it while the cluster is being
/// told to let its node go: the check that the node is stopped and the moving of its files then
/// see the same state.
#[derive(Debug)]
pub struct HeldStore {
    dir: PathBuf,
    _lock: File,
}

/// Takes the lock of the store in `dir`; fails with [`StorageError::Locked`] while a node holds
/// it.
pub fn hold(dir: &Path) -> Result<HeldStore> {
    Ok(HeldStore { dir: dir.to_path_buf(), _lock: lock_dir(dir)? })
}

/// [`hold`] then [`HeldStore::set_aside`].
pub fn set_aside(dir: &Path, stamp: &str, node: NodeId) -> Result<SetAside> {
    hold(dir)?.set_aside(stamp, node)
}

impl HeldStore {
    /// Moves every file of the store into `dir/damaged-STAMP/` and leaves an empty store holding
    /// only the saved term and vote, and a `rebuilt-for` file naming `node`; the lock is released
    /// at the end.
    ///
    /// Refuses, moving nothing, when the hard state itself is damaged (the node's votes would be
    /// lost: it must not come back under the same id) or the folder already exists. When a step
    /// fails part way, the files already moved are moved back, so that the store is as it was
    /// and the repair can be run again; [`StorageError::SetAsideSplit`] says which are still in
    /// the folder if even that fails.
    pub fn set_aside(self, stamp: &str, node: NodeId) -> Result<SetAside> {
        self.set_aside_with(stamp, node, &mut |from, to| std::fs::rename(from, to))
    }

    /// [`HeldStore::set_aside`] with the rename given, so that tests can make one fail.
    fn set_aside_with(
        self,
        stamp: &str,
        node: NodeId,
        rename: &mut Rename<'_>,
    ) -> Result<SetAside> {
        let dir = self.dir.as_path();
        let saved = hard_state::load(dir)?;
        let original = dir.join(HARD_STATE_FILE);
        let original = if original.exists() { Some(fs::read_file(&original)?) } else { None };
        let io = Io::new(None);
        let folder = dir.join(format!("{DAMAGED_PREFIX}{stamp}"));
        std::fs::create_dir(&folder)
            .map_err(|e| StorageError::io("create directory", &folder, e))?;
        let files: Vec<String> = fs::list_files(dir)?
            .into_iter()
            .filter(|name| name != LOCK_FILE && name != NODE_ID_FILE)
            .collect();
        // Commit 0: the entries it counted are gone, and a node learns its commit index again
        // from the leader. Term and vote stay: they are promises made to candidates.
        let kept = HardState { commit: Index(0), ..saved };
        let mut moved: Vec<&str> = Vec::new();
        let mut replaced = false;
        let outcome = (|| {
            // The hard state is never absent, whatever the crash point: a copy of it goes into
            // the folder, then the kept one replaces it atomically (commit 0 beside a whole log
            // is still a sound store), and only then does the log move.
            if let Some(bytes) = &original {
                io.write_atomically(&folder, HARD_STATE_FILE, bytes)?;
            }
            hard_state::save(&io, dir, &kept)?;
            replaced = true;
            for name in files.iter().filter(|name| *name != HARD_STATE_FILE) {
                let from = dir.join(name);
                rename(&from, &folder.join(name))
                    .map_err(|e| StorageError::io("rename", &from, e))?;
                moved.push(name);
            }
            io.sync_dir(&folder)?;
            io.sync_dir(dir)?;
            io.write_atomically(dir, REBUILT_FOR_FILE, format!("{}\n", node.0).as_bytes())
        })();
        match outcome {
            Ok(()) => Ok(SetAside { folder, files, kept }),
            Err(cause) => {
                let original = original.as_deref().filter(|_| replaced);
                Err(put_back(dir, &folder, &moved, original, cause, rename))
            }
        }
    }
}

/// How files are moved (`std::fs::rename`, or a failing twin in tests).
type Rename<'a> = dyn FnMut(&Path, &Path) -> std::io::Result<()> + 'a;

/// Undoes a set-aside that failed with `cause` after moving `moved` into `folder`: moves them
/// back, writes the original `hard_state` back over the kept one if it was replaced, drops the `rebuilt-for` file and the
/// folder. Returns `cause` when the store is whole again.
fn put_back(
    dir: &Path,
    folder: &Path,
    moved: &[&str],
    hard_state: Option<&[u8]>,
    cause: StorageError,
    rename: &mut Rename<'_>,
) -> StorageError {
    let mut stranded = Vec::new();
    let mut undo = None;
    if let Some(bytes) = hard_state {
        if let Err(error) = Io::new(None).write_atomically(dir, HARD_STATE_FILE, bytes) {
            stranded.push(HARD_STATE_FILE.to_owned());
            undo = Some(error.to_string());
        }
    }
    for name in moved {
        if let Err(error) = rename(&folder.join(name), &dir.join(name)) {
            stranded.push((*name).to_owned());
            undo.get_or_insert(error.to_string());
        }
    }
    if let Some(undo) = undo {
        return StorageError::SetAsideSplit {
            folder: folder.to_path_buf(),
            files: stranded,
            cause: cause.to_string(),
            undo,
        };
    }
    if !moved.contains(&REBUILT_FOR_FILE) {
        let _ = std::fs::remove_file(dir.join(REBUILT_FOR_FILE));
    }
    let _ = std::fs::remove_file(folder.join(HARD_STATE_FILE));
    let _ = std::fs::remove_dir(folder);
    let _ = Io::new(None).sync_dir(dir);
    cause
}

/// The node the store in `dir` was last set aside for, if it ever was. A file that does not hold
/// a node id is corruption, reported with its path.
pub fn rebuilt_for(dir: &Path) -> Result<Option<NodeId>> {
    read_id(dir, REBUILT_FOR_FILE)
}

/// True when `name` is the store's hard state file (to tell a damaged hard state from a damaged
/// log in a [`crate::Report`]'s problems).
pub fn is_hard_state_file(path: &Path) -> bool {
    path.file_name().is_some_and(|name| name == HARD_STATE_FILE)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use conclave_core::{Entry, NodeId, Term};

    use super::*;
    use crate::{FileStore, LogStore, Options};

    /// A store of several segments, so that a set-aside makes several moves.
    fn store(dir: &Path) {
        let options = Options { segment_bytes_max: 256, ..Options::default() };
        let mut store = FileStore::open(dir, &options).unwrap();
        let entries: Vec<Entry> = (1..=20)
            .map(|i| Entry::command(Index(i), Term(3), Bytes::from(format!("value-{i}"))))
            .collect();
        store.append(&entries).unwrap();
        store.sync().unwrap();
        let hard_state = HardState { term: Term(4), vote: Some(NodeId(2)), commit: Index(20) };
        store.save_hard_state(&hard_state).unwrap();
    }

    #[test]
    fn moves_every_file_and_keeps_term_and_vote_only() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path());
        let before = fs::list_files(dir.path()).unwrap();
        assert_eq!(rebuilt_for(dir.path()).unwrap(), None);
        let report = set_aside(dir.path(), "20260101T000000Z", NodeId(3)).unwrap();
        assert_eq!(report.folder, dir.path().join("damaged-20260101T000000Z"));
        let expected: Vec<String> = before.into_iter().filter(|n| n != LOCK_FILE).collect();
        assert_eq!(report.files, expected);
        assert_eq!(fs::list_files(&report.folder).unwrap(), expected);
        let recovered = FileStore::open(dir.path(), &Options::default()).unwrap().load().unwrap();
        assert!(recovered.state.entries.is_empty());
        assert!(recovered.state.snapshot.is_none());
        let kept = HardState { term: Term(4), vote: Some(NodeId(2)), commit: Index(0) };
        assert_eq!(recovered.state.hard_state, kept);
        assert_eq!(rebuilt_for(dir.path()).unwrap(), Some(NodeId(3)));
        // The new files make a healthy store; the folder beside them is not part of it.
        let report = crate::inspect(dir.path()).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        std::fs::write(dir.path().join(REBUILT_FOR_FILE), "three\n").unwrap();
        assert!(matches!(rebuilt_for(dir.path()), Err(StorageError::Corrupt(_))));
    }

    #[test]
    fn a_crash_at_any_move_keeps_term_and_vote() {
        let files = {
            let dir = tempfile::tempdir().unwrap();
            store(dir.path());
            fs::list_files(dir.path()).unwrap().len()
        };
        for crash_at in 1..=files {
            let dir = tempfile::tempdir().unwrap();
            store(dir.path());
            std::fs::write(dir.path().join(NODE_ID_FILE), "3\n").unwrap();
            let mut calls = 0;
            // The process dies right after the move numbered `crash_at`: nothing after it runs,
            // no undo either.
            let mut crash = |from: &Path, to: &Path| {
                calls += 1;
                std::fs::rename(from, to)?;
                if calls == crash_at {
                    panic!("crash after move {crash_at}");
                }
                Ok(())
            };
            let held = hold(dir.path()).unwrap();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                held.set_aside_with("x", NodeId(3), &mut crash)
            }));
            if outcome.is_ok() {
                continue;
            }
            let saved = hard_state::load(dir.path()).unwrap();
            assert_eq!((saved.term, saved.vote), (Term(4), Some(NodeId(2))), "crash at {crash_at}");
            assert!(dir.path().join(NODE_ID_FILE).exists(), "crash at {crash_at}");
        }
    }

    #[test]
    fn a_move_failing_part_way_puts_everything_back() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path());
        let before = fs::list_files(dir.path()).unwrap();
        assert!(before.len() >= 3, "the lock and at least two files: {before:?}");
        let mut calls = 0;
        let mut fail_second = |from: &Path, to: &Path| {
            calls += 1;
            if calls == 2 {
                return Err(std::io::Error::other("injected"));
            }
            std::fs::rename(from, to)
        };
        let error =
            hold(dir.path()).unwrap().set_aside_with("x", NodeId(3), &mut fail_second).unwrap_err();
        assert!(error.to_string().contains("injected"), "{error}");
        assert_eq!(fs::list_files(dir.path()).unwrap(), before);
        assert!(!dir.path().join("damaged-x").exists());
        assert_eq!(rebuilt_for(dir.path()).unwrap(), None);
        let recovered = FileStore::open(dir.path(), &Options::default()).unwrap().load().unwrap();
        assert_eq!(recovered.state.entries.len(), 20);
        assert_eq!(recovered.state.hard_state.commit, Index(20));
    }

    #[test]
    fn a_failed_put_back_names_the_stranded_files() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path());
        let mut calls = 0;
        let mut fail_from_the_second = |from: &Path, to: &Path| {
            calls += 1;
            if calls >= 2 {
                return Err(std::io::Error::other("injected"));
            }
            std::fs::rename(from, to)
        };
        let error = hold(dir.path())
            .unwrap()
            .set_aside_with("x", NodeId(3), &mut fail_from_the_second)
            .unwrap_err();
        let StorageError::SetAsideSplit { folder, files, .. } = &error else { panic!("{error}") };
        assert_eq!(folder, &dir.path().join("damaged-x"));
        assert_eq!(files.len(), 1);
        assert!(folder.join(&files[0]).exists(), "{error}");
    }

    #[test]
    fn refuses_a_store_in_use_and_moves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path());
        let open = FileStore::open(dir.path(), &Options::default()).unwrap();
        let error = set_aside(dir.path(), "x", NodeId(1)).unwrap_err();
        assert!(matches!(error, StorageError::Locked { .. }), "{error}");
        drop(open);
        assert!(!dir.path().join("damaged-x").exists());
    }

    #[test]
    fn refuses_a_damaged_hard_state_and_moves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path());
        let path = dir.path().join(HARD_STATE_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[10] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
        let error = set_aside(dir.path(), "x", NodeId(1)).unwrap_err();
        assert!(
            matches!(&error, StorageError::Corrupt(c) if is_hard_state_file(&c.file)),
            "{error}"
        );
        assert!(!dir.path().join("damaged-x").exists());
    }
}
