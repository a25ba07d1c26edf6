//! Who may use the cache at once: one `<cache>/.lock` file, locked shared by every normal run
//! (plan, apply, inspect, verify) and exclusively by garbage collection, which deletes blobs
//! that another run might be about to push (pitfall P17: `flock(2)`, advisory, per open file
//! description; not reliable on NFS).
//!
//! The short read-modify-write of `index.json` is serialised by a second file,
//! `<cache>/index.json.lock`, locked exclusively for just that moment: a process that already
//! holds `.lock` shared could not also take it exclusively without waiting on itself.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::sync::Arc;

use super::{io_err, StoreError};

/// How a process holds the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Normal runs: any number at once.
    Shared,
    /// Garbage collection: alone.
    Exclusive,
}

/// A held lock on `<cache>/.lock`; released when the last clone is dropped (the file closes).
#[derive(Debug, Clone)]
pub struct CacheLock {
    /// Never read: holding the open file is what holds the flock.
    _file: Arc<File>,
    mode: LockMode,
}

impl CacheLock {
    /// Takes the lock. A shared lock waits while a garbage collection runs; an exclusive one
    /// fails at once when any other process uses the cache, rather than stalling their runs.
    pub fn acquire(root: &Path, mode: LockMode) -> Result<CacheLock, StoreError> {
        let path = root.join(".lock");
        let file = open(&path)?;
        match mode {
            LockMode::Shared => match file.try_lock_shared() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    tracing::info!("waiting for a garbage collection of the cache to finish");
                    file.lock_shared().map_err(io_err(&path))?;
                }
                Err(TryLockError::Error(e)) => return Err(io_err(&path)(e)),
            },
            LockMode::Exclusive => match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(StoreError::Busy {
                        path: root.to_path_buf(),
                    })
                }
                Err(TryLockError::Error(e)) => return Err(io_err(&path)(e)),
            },
        }
        Ok(CacheLock {
            _file: Arc::new(file),
            mode,
        })
    }

    pub fn mode(&self) -> LockMode {
        self.mode
    }
}

/// Runs `f` while holding `<cache>/index.json.lock` exclusively.
pub(super) fn with_index_lock<T>(
    root: &Path,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let path = root.join("index.json.lock");
    let file = open(&path)?;
    file.lock().map_err(io_err(&path))?;
    let result = f();
    let _ = file.unlock();
    result
}

fn open(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_is_refused_while_shared_is_held_and_shared_locks_coexist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = CacheLock::acquire(dir.path(), LockMode::Shared).expect("first shared");
        let b = CacheLock::acquire(dir.path(), LockMode::Shared).expect("second shared");
        assert!(matches!(
            CacheLock::acquire(dir.path(), LockMode::Exclusive),
            Err(StoreError::Busy { .. })
        ));
        drop((a, b));
        let gc = CacheLock::acquire(dir.path(), LockMode::Exclusive).expect("exclusive");
        assert_eq!(gc.mode(), LockMode::Exclusive);
    }
}
