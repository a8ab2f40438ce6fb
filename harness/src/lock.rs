//! Advisory file locks: two harness processes (or two test binaries) that
//! want the same cache entry or the same CPU-bound resource take turns.

use crate::failure::{Failure, Result};
use std::fs::{File, OpenOptions};
use std::path::Path;

pub struct Lock {
    _file: File,
}

impl Lock {
    /// Blocks until the lock is ours; released on drop (or process death).
    pub fn exclusive(path: &Path) -> Result<Lock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::infra(format!("cannot create {}: {e}", dir.display())))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Failure::infra(format!("cannot open lock {}: {e}", path.display())))?;
        file.lock().map_err(|e| Failure::infra(format!("cannot lock {}: {e}", path.display())))?;
        Ok(Lock { _file: file })
    }
}
