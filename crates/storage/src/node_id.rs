//! The `node-id` file: which node a store belongs to.
//!
//! A store holds one node's votes and log. Started under another id, it would make that other
//! node claim votes it never cast and entries it never received; and `conclave wal repair --id N`
//! pointed at the wrong directory would take the wrong node out of the cluster. So a node writes
//! its id into the directory the first time it starts (an older directory gets it at its next
//! start), refuses to start when the file names another node, and repair checks it too.

use std::path::Path;

use conclave_core::NodeId;

use crate::error::{Corruption, CorruptionError, Result, StorageError};
use crate::fs::{self, Io};

/// The file's name in the store directory.
pub const NODE_ID_FILE: &str = "node-id";

/// The node the store in `dir` belongs to, or `None` when no node has claimed it yet. A file
/// that does not hold a node id is corruption, reported with its path.
pub fn owner(dir: &Path) -> Result<Option<NodeId>> {
    read_id(dir, NODE_ID_FILE)
}

/// Reads a file holding one node id in decimal, as `node-id` and `rebuilt-for` do.
pub(crate) fn read_id(dir: &Path, name: &str) -> Result<Option<NodeId>> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = fs::read_file(&path)?;
    let text = std::str::from_utf8(&bytes).unwrap_or_default().trim();
    match text.parse::<u64>() {
        Ok(id) if id > 0 => Ok(Some(NodeId(id))),
        _ => Err(CorruptionError::new(&path, 0, Corruption::BadHeader("not a node id")).into()),
    }
}

/// Claims the store in `dir` for `node`: records the id (written atomically and fsynced, with
/// the directory) when no node has claimed it, and fails with [`StorageError::OtherNode`] when
/// another node has.
pub fn claim(dir: &Path, node: NodeId) -> Result<()> {
    match owner(dir)? {
        Some(owner) if owner == node => Ok(()),
        Some(owner) => Err(StorageError::OtherNode { dir: dir.to_path_buf(), owner, node }),
        None => {
            Io::new(None).write_atomically(dir, NODE_ID_FILE, format!("{}\n", node.0).as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_claim_is_recorded_and_another_node_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(owner(dir.path()).unwrap(), None);
        claim(dir.path(), NodeId(2)).unwrap();
        assert_eq!(owner(dir.path()).unwrap(), Some(NodeId(2)));
        claim(dir.path(), NodeId(2)).unwrap();
        let error = claim(dir.path(), NodeId(3)).unwrap_err();
        assert!(
            matches!(error, StorageError::OtherNode { owner: NodeId(2), node: NodeId(3), .. }),
            "{error}"
        );
        assert_eq!(owner(dir.path()).unwrap(), Some(NodeId(2)));
        assert!(!dir.path().join("node-id.tmp").exists());
    }

    #[test]
    fn a_damaged_file_is_corruption_not_a_fresh_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(NODE_ID_FILE), "two\n").unwrap();
        assert!(matches!(owner(dir.path()), Err(StorageError::Corrupt(_))));
        assert!(matches!(claim(dir.path(), NodeId(2)), Err(StorageError::Corrupt(_))));
    }
}
