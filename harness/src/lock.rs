//! Advisory file locks: two harness processes (or two test binaries) that
//! want the same cache entry or the same CPU-bound resource take turns.

use crate::failure::{Classify, Failure, Result};
use std::fs::{File, OpenOptions};
use std::path::Path;

pub struct Lock {
    _file: File,
}

impl Lock {
    /// Blocks until the lock is ours; released on drop (or process death).
    pub fn exclusive(path: &Path) -> Result<Lock> {
        let file = open(path)?;
        file.lock().infra(|| format!("cannot lock {}", path.display()))?;
        Ok(Lock { _file: file })
    }

    /// Like `exclusive`, for a lock another run may hold for a long time:
    /// says once what it waits for, and gives up after `timeout` with an
    /// error that names the lock.
    pub async fn exclusive_waiting(path: &Path, what: &str, timeout: std::time::Duration) -> Result<Lock> {
        let file = open(path)?;
        let start = std::time::Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Failure::infra(format!("cannot lock {}: {e}", path.display())))
                }
            }
            if start.elapsed() >= timeout {
                return Err(Failure::infra(format!(
                    "gave up after {} s waiting for {} ({what}); see `pgrep -a bounce`",
                    timeout.as_secs(),
                    path.display()
                )));
            }
            if !said {
                crate::ui::line(format!("waiting for {} ({what})", path.display()));
                said = true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

/// The lock file, made (with its folder) if it is not there yet.
fn open(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).infra(|| format!("cannot create {}", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .infra(|| format!("cannot open lock {}", path.display()))
}
