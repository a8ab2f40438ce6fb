//! Running host commands with errors a user can act on.

use crate::failure::{Classify, Failure, Result};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Render a command the way a user would type it, for error messages and
/// reproducer lines.
pub fn display(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    shlex::try_join(parts.iter().map(String::as_str)).unwrap_or_else(|_| parts.join(" "))
}

/// The last line of `text` with anything on it, trimmed: what a failed
/// command's stderr (or a stopped build's log) says last.
pub fn last_line(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
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

/// How long a host command may take before it is called stuck: apt-get
/// on a slow mirror and git on a kernel tree take minutes, never this.
pub const LIMIT: Duration = Duration::from_secs(30 * 60);

/// For a question to a local tool (`dpkg-query`, `qemu --version`).
pub const QUICK: Duration = Duration::from_secs(60);

/// Run to completion within `limit` and return what it printed, whatever
/// its exit status. A command still running then (a mirror that stopped
/// answering, a prompt nobody sees) is killed, and the error says which
/// command and after how long.
pub fn output(cmd: &mut Command, limit: Duration) -> Result<Output> {
    output_from(cmd, Stdio::null(), limit)
}

/// [`output`], with `stdin` as the command's standard input.
pub fn output_from(cmd: &mut Command, stdin: Stdio, limit: Duration) -> Result<Output> {
    let shown = display(cmd);
    let child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::infra(format!("cannot run `{shown}`: {e} (is it installed? try `bounce doctor`)")))?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(r) => r.infra(|| format!("`{shown}`")),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            Err(Failure::infra(format!("`{shown}` did not finish within {} s and was killed", limit.as_secs())))
        }
    }
}

/// Run to completion (within LIMIT); a non-zero exit becomes an
/// infrastructure failure that quotes the command and the last line it
/// printed on stderr.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let shown = display(cmd);
    let out = output(cmd, LIMIT)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Failure::infra(format!("`{shown}` failed ({}): {}", out.status, last_line(&err))));
    }
    Ok(out)
}

/// Run and return trimmed stdout.
pub fn stdout(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_past_its_limit_is_killed_and_named() {
        let t = std::time::Instant::now();
        let e = output(Command::new("sleep").arg("30"), Duration::from_millis(300)).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(10));
        assert_eq!(e.message, "`sleep 30` did not finish within 0 s and was killed");
        let o = output(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]), LIMIT).unwrap();
        assert_eq!((o.status.code(), &o.stdout[..], &o.stderr[..]), (Some(3), &b"out\n"[..], &b"err\n"[..]));
        let e = run(Command::new("sh").args(["-c", "echo first >&2; echo why >&2; exit 3"])).unwrap_err();
        assert!(e.message.ends_with("failed (exit status: 3): why"), "{}", e.message);
    }
}
