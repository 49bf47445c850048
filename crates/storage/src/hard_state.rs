//! The hard state file (`hard-state`): term, vote and commit, replaced atomically on every save.

use std::path::Path;

use conclave_core::{HardState, Index, NodeId, Term};

use crate::error::{CorruptionError, Result, StorageError};
use crate::fs::{self, Io};
use crate::sealed::{self, Reader};

/// The file's name in the store directory.
pub(crate) const HARD_STATE_FILE: &str = "hard-state";
const MAGIC: &[u8; 4] = b"CVHS";

fn encode(hard_state: &HardState) -> Vec<u8> {
    let mut body = Vec::with_capacity(25);
    body.extend_from_slice(&hard_state.term.0.to_le_bytes());
    body.push(u8::from(hard_state.vote.is_some()));
    body.extend_from_slice(&hard_state.vote.map_or(0, |v| v.0).to_le_bytes());
    body.extend_from_slice(&hard_state.commit.0.to_le_bytes());
    sealed::seal(MAGIC, &body)
}

/// Decodes a hard state file's bytes.
pub(crate) fn decode(bytes: &[u8], path: &Path) -> Result<HardState, CorruptionError> {
    let corrupt = |reason| CorruptionError::new(path, 0, reason);
    let mut reader = Reader::new(sealed::unseal(MAGIC, bytes).map_err(corrupt)?);
    let term = Term(reader.u64().map_err(corrupt)?);
    let has_vote = reader.u8().map_err(corrupt)?;
    let vote = reader.u64().map_err(corrupt)?;
    let commit = Index(reader.u64().map_err(corrupt)?);
    reader.finish().map_err(corrupt)?;
    let vote = match has_vote {
        0 => None,
        1 => Some(NodeId(vote)),
        _ => {
            return Err(corrupt(crate::error::Corruption::BadHeader(
                "vote flag is neither 0 nor 1",
            )))
        }
    };
    Ok(HardState { term, vote, commit })
}

/// Makes `hard_state` durable before returning (temp file, fsync, rename, directory fsync).
pub(crate) fn save(io: &Io, dir: &Path, hard_state: &HardState) -> Result<()> {
    io.write_atomically(dir, HARD_STATE_FILE, &encode(hard_state))
}

/// The saved hard state, or the default (term 0, no vote, commit 0) when none was ever saved.
pub(crate) fn load(dir: &Path) -> Result<HardState> {
    let path = dir.join(HARD_STATE_FILE);
    if !path.exists() {
        return Ok(HardState::default());
    }
    decode(&fs::read_file(&path)?, &path).map_err(StorageError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_and_without_a_vote() {
        for vote in [None, Some(NodeId(3))] {
            let hard_state = HardState { term: Term(9), vote, commit: Index(41) };
            assert_eq!(decode(&encode(&hard_state), Path::new("h")).unwrap(), hard_state);
        }
    }
}
