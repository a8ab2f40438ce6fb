//! Running host commands with errors a user can act on.

use crate::failure::{Failure, Result};
use std::process::{Command, Output};

/// Render a command the way a user would type it, for error messages and
/// reproducer lines.
pub fn display(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(char::is_whitespace) {
            parts.push(format!("'{a}'"));
        } else {
            parts.push(a.into_owned());
        }
    }
    parts.join(" ")
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
