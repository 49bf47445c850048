//! The sticky failed state. Once a write or fsync fails, the store cannot know what reached the
//! disk: Linux may already have dropped the dirty pages and cleared the error, so a retried fsync
//! can succeed without the data (PostgreSQL's "fsyncgate", 2018). Continuing would acknowledge
//! writes that a crash then loses, so every later call fails until the store is reopened and has
//! re-read what is really on disk.

use crate::error::{Result, StorageError};

/// Healthy, or failed with the first error's text.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failure: Option<String>,
}

impl Health {
    /// Refuses every call after a failure.
    pub(crate) fn check(&self) -> Result<()> {
        match &self.failure {
            None => Ok(()),
            Some(cause) => Err(StorageError::Failed { cause: cause.clone() }),
        }
    }

    /// Records `error` as the cause of failure if it is an IO error (operating errors such as a
    /// refused append leave the disk untouched and the store healthy).
    pub(crate) fn observe(&mut self, error: &StorageError) {
        if matches!(error, StorageError::Io { .. }) && self.failure.is_none() {
            tracing::error!(%error, "storage write or fsync failed; refusing all further use until reopened");
            self.failure = Some(error.to_string());
        }
    }

    /// True once failed.
    pub(crate) fn is_failed(&self) -> bool {
        self.failure.is_some()
    }
}
