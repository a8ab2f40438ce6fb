//! Shared by the integration tests: the real binary, and one lock so tests
//! that build kernels or boot guests never run at once (two cores).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bounce() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bounce"))
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Held for the whole of a heavy test; the lock lives in the user's cache so
/// separate test binaries (and a `bounce matrix` in another terminal) share it.
pub fn heavy_lock() -> bounce::lock::Lock {
    bounce::lock::Lock::exclusive(&bounce::paths::cache_root().join("locks/heavy-tests.lock")).unwrap()
}

/// QEMU processes whose command line mentions `needle` (the harness puts
/// each guest's directory there, through -pidfile).
pub fn qemu_pids_mentioning(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.starts_with("qemu-system") && cmd.contains(needle) {
            out.push(pid);
        }
    }
    out
}
