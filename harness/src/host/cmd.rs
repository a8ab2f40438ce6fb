//! Running host commands with errors a user can act on.

use crate::failure::{Failure, Result};
use std::process::{Command, Output};

/// Render a command the way a user would type it, for error messages and
/// reproducer lines.
pub fn display(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    shlex::try_join(parts.iter().map(String::as_str)).unwrap_or_else(|_| parts.join(" "))
}

/// A child that must not outlive the harness, even one killed outright
/// (SIGKILL, the OOM killer): the kernel sends it SIGKILL when the harness
/// goes. `kill_on_drop` covers every ending the harness lives through.
pub fn dies_with_harness(cmd: &mut tokio::process::Command) -> &mut tokio::process::Command {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    cmd.kill_on_drop(true)
}

/// Run to completion; a non-zero exit becomes an infrastructure failure that
/// quotes the command and the last line it printed on stderr.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let shown = display(cmd);
    let out = cmd
        .output()
        .map_err(|e| Failure::infra(format!("cannot run `{shown}`: {e} (is it installed? try `bounce doctor`)")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        return Err(Failure::infra(format!("`{shown}` failed ({}): {last}", out.status)));
    }
    Ok(out)
}

/// Run and return trimmed stdout.
pub fn stdout(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
