//! Running a guest to its end, whatever that end is.
//!
//! States: Booting -> Running (the guest's init said `ready` on the result
//! channel) -> Finished (it said `done` and powered off), or Failed with a
//! class: boot (never reached init, or panicked first), workload (timed out
//! or stopped reporting), correctness (the kernel panicked under the
//! workload), infrastructure (QEMU would not start or died).

use super::channel::{Signal, Transcript};
use super::qemu::{GuestSpec, CONSOLE_FD, QMP_FD, RESULTS_FD};
use super::qmp::{Event, Qmp};
use crate::failure::{Failure, FailureClass, Result};
use command_fds::{CommandFdExt, FdMapping};
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Building,
    Booting,
    Running,
    Finished,
    Failed,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Building => "building",
            State::Booting => "booting",
            State::Running => "running",
            State::Finished => "finished",
            State::Failed => "failed",
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From QEMU's start to the guest's `ready`.
    pub boot: Duration,
    /// From `ready` to `done`.
    pub run: Duration,
}

/// Everything a guest left behind. `failure` is None only for Finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestRun {
    pub state: State,
    pub failure: Option<Failure>,
    #[serde(skip)]
    pub transcript: Transcript,
    pub boot_s: Option<f64>,
    pub total_s: f64,
    pub shutdown_reason: Option<String>,
    pub qemu_version: String,
    pub console_log: PathBuf,
    pub reproducer: String,
}

/// A day: a longer timeout is a typo, and deadlines must not overflow.
pub const MAX_TIMEOUT_S: u64 = 86_400;

const PANIC_LINE: &str = "Kernel panic - not syncing";
/// How long a guest that reported `done` may take to power off.
const POWER_OFF_GRACE: Duration = Duration::from_secs(30);

/// Boot `spec`, collect its channels into `dir`, and return how it ended.
/// `on_state` sees every transition. Only a failure to even set up the
/// guest's files is an `Err`; everything QEMU or the guest does is in the
/// returned `GuestRun`.
pub async fn run(
    spec: &GuestSpec,
    dir: &Path,
    timeouts: Timeouts,
    on_state: &(dyn Fn(State) + Sync),
) -> Result<GuestRun> {
    std::fs::create_dir_all(dir).map_err(|e| Failure::infra(format!("cannot create {}: {e}", dir.display())))?;
    let console_log = dir.join("console.log");
    let started = Instant::now();
    on_state(State::Booting);
    let mut run = GuestRun {
        state: State::Booting,
        failure: None,
        transcript: Transcript::default(),
        boot_s: None,
        total_s: 0.0,
        shutdown_reason: None,
        qemu_version: String::new(),
        console_log: console_log.clone(),
        reproducer: spec.reproducer(),
    };
    let outcome = drive(spec, dir, timeouts, on_state, &mut run, started).await;
    run.total_s = started.elapsed().as_secs_f64();
    if let Err(f) = outcome {
        run.state = State::Failed;
        run.failure = Some(f);
    } else {
        run.state = State::Finished;
    }
    on_state(run.state);
    let _ = std::fs::write(dir.join("guest.json"), serde_json::to_string_pretty(&run).unwrap());
    Ok(run)
}

fn pair() -> Result<(UnixStream, OwnedFd)> {
    let (host, guest) =
        std::os::unix::net::UnixStream::pair().map_err(|e| Failure::infra(format!("socketpair: {e}")))?;
    host.set_nonblocking(true).map_err(|e| Failure::infra(e.to_string()))?;
    let host = UnixStream::from_std(host).map_err(|e| Failure::infra(e.to_string()))?;
    Ok((host, guest.into()))
}

async fn drive(
    spec: &GuestSpec,
    dir: &Path,
    timeouts: Timeouts,
    on_state: &(dyn Fn(State) + Sync),
    run: &mut GuestRun,
    started: Instant,
) -> Result<()> {
    let (con_host, con_guest) = pair()?;
    let (res_host, res_guest) = pair()?;
    let (qmp_host, qmp_guest) = pair()?;
    let stderr_path = dir.join("qemu.stderr");
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| Failure::infra(e.to_string()))?;
    let mut cmd = tokio::process::Command::new(&spec.qemu);
    // The pidfile puts the guest's directory on QEMU's command line: a
    // process listing then tells which run and cell a QEMU belongs to.
    cmd.args(spec.args())
        .arg("-pidfile")
        .arg(dir.join("qemu.pid"))
        .stdin(std::process::Stdio::null())
        .stdout(stderr.try_clone().map_err(|e| Failure::infra(e.to_string()))?)
        .stderr(stderr)
        .process_group(0);
    crate::host::cmd::dies_with_harness(&mut cmd);
    cmd.fd_mappings(vec![
        FdMapping { parent_fd: con_guest, child_fd: CONSOLE_FD },
        FdMapping { parent_fd: res_guest, child_fd: RESULTS_FD },
        FdMapping { parent_fd: qmp_guest, child_fd: QMP_FD },
    ])
    .map_err(|e| Failure::infra(e.to_string()))?;
    let mut child = cmd.spawn().map_err(|e| Failure::infra(format!("cannot start {}: {e}", spec.qemu)))?;
    // The command owns our copies of the guest ends; while they stay open
    // the channels never see end-of-file when QEMU exits.
    drop(cmd);
    let pgid = child.id().map(|p| nix::unistd::Pid::from_raw(p as i32));
    // Whatever happens below, the process group dies with this guard.
    let _reaper = Reaper(pgid);

    let (stall_tx, mut stalls) = mpsc::unbounded_channel();
    let console = tokio::spawn(pump_console(con_host, dir.join("console.log"), stall_tx));
    let (sig_tx, mut signals) = mpsc::unbounded_channel();
    // The UART runs both ways: answers to the guest's requests go back on it.
    let (res_read, mut res_write) = res_host.into_split();
    let results = tokio::spawn(pump_results(res_read, dir.join("channel.log"), sig_tx));

    let stderr_tail = || {
        std::fs::read_to_string(&stderr_path)
            .unwrap_or_default()
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .to_string()
    };
    let (qmp, mut events) = match Qmp::connect(qmp_host, Duration::from_secs(30)).await {
        Ok(q) => q,
        Err(e) => {
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            let why = match status {
                Ok(Ok(s)) => format!("QEMU exited at start ({s}): {}", stderr_tail()),
                _ => format!("{} ({})", e.message, stderr_tail()),
            };
            return Err(Failure::infra(format!("{why} [{}]", stderr_path.display())));
        }
    };
    run.qemu_version = qmp.qemu_version.clone();

    let mut ready_at: Option<Instant> = None;
    let mut done: Option<Instant> = None;
    let mut panicked = false;
    let mut shutdown: Option<String> = None;
    let mut exited: Option<std::process::ExitStatus> = None;
    let mut timed_out = false;
    let mut stopped = false;
    let mut stalled: Option<String> = None;
    let (mut signals_open, mut events_open, mut stalls_open) = (true, true, true);
    loop {
        let deadline = match ready_at {
            None => started + timeouts.boot,
            // Reported: it has only to power off. One that hangs there (a
            // device stuck in I/O at shutdown) has still said everything.
            Some(_) if done.is_some() => done.unwrap() + POWER_OFF_GRACE,
            Some(r) => r + timeouts.run,
        };
        tokio::select! {
            s = signals.recv(), if signals_open => match s {
                Some(Signal::Ready(_)) if ready_at.is_none() => {
                    ready_at = Some(Instant::now());
                    run.boot_s = Some(started.elapsed().as_secs_f64());
                    run.state = State::Running;
                    on_state(State::Running);
                }
                Some(Signal::Done(_)) => done = Some(Instant::now()),
                Some(Signal::Request(kind, arg)) => {
                    let answer = answer(&qmp, dir, &kind, &arg).await;
                    let _ = res_write.write_all(format!("ack {arg} {answer}\n").as_bytes()).await;
                }
                Some(_) => {}
                None => signals_open = false,
            },
            e = events.recv(), if events_open => match e {
                Some(Event { name, data }) => match name.as_str() {
                    "SHUTDOWN" => { shutdown = Some(data["reason"].as_str().unwrap_or("unknown").to_string()); break; }
                    "GUEST_PANICKED" => {
                        // Whatever QEMU's panic action (pause, shutdown), the
                        // guest is done; the panic text is already on the
                        // console socket, written before pvpanic was told.
                        panicked = true;
                        break;
                    }
                    // QEMU paused the guest (a host I/O error on a drive,
                    // say): it will never report, waiting would only burn
                    // the timeout.
                    "STOP" => { stopped = true; break; }
                    _ => {}
                },
                None => events_open = false,
            },
            s = stalls.recv(), if stalls_open => match s {
                // The kernel says it stopped making progress: nothing
                // after this is a measurement, and waiting would only
                // burn the timeout.
                Some(line) => { stalled = Some(line); break; }
                None => stalls_open = false,
            },
            s = child.wait() => { exited = s.ok(); break; }
            _ = tokio::time::sleep_until(deadline.into()) => { timed_out = true; break; }
        }
    }
    run.shutdown_reason = shutdown.clone();
    // After a guest shutdown QEMU exits by itself (-no-reboot); otherwise
    // ask it to quit, then make sure.
    if exited.is_none() && shutdown.is_some() {
        exited = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.ok().and_then(|r| r.ok());
    }
    if exited.is_none() {
        let _ = qmp.execute(&qapi::qmp::quit {}, Duration::from_secs(3)).await;
        exited = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
            Ok(Ok(s)) => Some(s),
            _ => {
                drop(_reaper);
                child.wait().await.ok()
            }
        };
    }
    drop(qmp);
    // The channels close with QEMU; read them to their end so nothing the
    // guest said is lost.
    let console_text =
        tokio::time::timeout(Duration::from_secs(5), console).await.ok().and_then(|r| r.ok()).unwrap_or_default();
    run.transcript =
        tokio::time::timeout(Duration::from_secs(5), results).await.ok().and_then(|r| r.ok()).unwrap_or_default();
    if timed_out && done.is_some() {
        run.shutdown_reason = Some(format!(
            "did not power off within {POWER_OFF_GRACE:?} of reporting done; QEMU stopped by the harness"
        ));
        timed_out = false;
    }
    let done = done.is_some() || run.transcript.done.is_some();
    let panic_line = console_text.lines().find(|l| l.contains(PANIC_LINE)).map(str::to_string);
    panicked |= panic_line.is_some();
    let console_path = dir.join("console.log").display().to_string();
    let last_console =
        console_text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(nothing)").trim().to_string();
    let ready = ready_at.is_some() || run.transcript.ready.is_some();

    // The kernel itself gave up: a bug of the kernel under test once the
    // workload runs, a boot failure before.
    let kernel_failed = |how: &str, what: &str| {
        if ready {
            Failure::new(
                FailureClass::Correctness,
                format!("kernel {how} during the workload: {what} (console: {console_path})"),
            )
        } else {
            Failure::new(FailureClass::Boot, format!("kernel {how} before init: {what} (console: {console_path})"))
        }
    };
    if panicked {
        let what = panic_line.unwrap_or_else(|| "pvpanic reported a guest panic".into());
        return Err(kernel_failed("panicked", &what));
    }
    if let Some(line) = stalled {
        return Err(kernel_failed("stalled", &format!("`{line}`")));
    }
    if stopped {
        return Err(Failure::infra(format!(
            "QEMU paused the guest (QMP STOP; see {} and the console: {console_path})",
            stderr_path.display()
        )));
    }
    if timed_out {
        // The kernel's own words, when it said something went wrong,
        // say more than the last line it printed.
        let said =
            super::stall::diagnosis(&console_text).map(|d| format!("; the kernel said: `{d}`")).unwrap_or_default();
        return Err(if ready {
            Failure::new(
                FailureClass::Workload,
                format!(
                    "guest did not finish within {:?} (last console line: `{last_console}`{said}; console: {console_path})",
                    timeouts.run
                ),
            )
        } else {
            Failure::new(FailureClass::Boot, format!("guest did not reach init within {:?} (last console line: `{last_console}`{said}; console: {console_path})", timeouts.boot))
        });
    }
    if shutdown.is_none() && !done {
        let status = exited.map(|s| s.to_string()).unwrap_or_else(|| "unknown status".into());
        return Err(Failure::infra(format!(
            "QEMU exited unexpectedly ({status}): {} [{}]",
            stderr_tail(),
            stderr_path.display()
        )));
    }
    if !ready {
        return Err(Failure::new(
            FailureClass::Boot,
            format!(
                "guest stopped before reaching init (last console line: `{last_console}`; console: {console_path})"
            ),
        ));
    }
    if !done {
        return Err(Failure::new(
            FailureClass::Workload,
            format!("guest powered off before reporting done (console: {console_path})"),
        ));
    }
    Ok(())
}

/// Carry out a guest's request; the answer's first word is `ok` or `error`.
async fn answer(qmp: &Qmp, dir: &Path, kind: &str, arg: &str) -> String {
    match kind {
        "screendump" if arg.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
            let file = dir.join(format!("{arg}.ppm"));
            let cmd =
                qapi::qmp::screendump { filename: file.display().to_string(), device: None, head: None, format: None };
            match qmp.execute(&cmd, Duration::from_secs(30)).await {
                Ok(_) => format!("ok {}", file.display()),
                Err(e) => format!("error {}", e.message),
            }
        }
        _ => format!("error unknown request `{kind} {arg}`"),
    }
}

/// Kills the guest's process group when dropped.
struct Reaper(Option<nix::unistd::Pid>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Copy the console to its log; return the text for panic detection.
/// Each stall the kernel reports goes to `stalls` as it streams.
async fn pump_console(mut sock: UnixStream, path: PathBuf, stalls: mpsc::UnboundedSender<String>) -> String {
    let mut file = match tokio::fs::File::create(&path).await {
        Ok(f) => f,
        Err(_) => return String::new(),
    };
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    let mut lines = super::stall::Lines::default();
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = file.write_all(&buf[..n]).await;
                all.extend_from_slice(&buf[..n]);
                lines.feed(&buf[..n], |l| {
                    if let Some(s) = super::stall::stall(l) {
                        let _ = stalls.send(s);
                    }
                });
            }
        }
    }
    let _ = file.flush().await;
    String::from_utf8_lossy(&all).into_owned()
}

async fn pump_results(
    sock: tokio::net::unix::OwnedReadHalf,
    path: PathBuf,
    signals: mpsc::UnboundedSender<Signal>,
) -> Transcript {
    let mut t = Transcript::default();
    let mut file = tokio::fs::File::create(&path).await.ok();
    let mut reader = BufReader::new(sock);
    let mut raw = Vec::new();
    // Bytes, not `lines()`: one corrupt byte on the UART must not end the stream.
    while matches!(reader.read_until(b'\n', &mut raw).await, Ok(n) if n > 0) {
        let line = String::from_utf8_lossy(&raw).trim_end_matches(['\n', '\r']).to_string();
        raw.clear();
        if let Some(f) = file.as_mut() {
            let _ = f.write_all(line.as_bytes()).await;
            let _ = f.write_all(b"\n").await;
        }
        let _ = signals.send(t.feed(&line));
    }
    if let Some(f) = file.as_mut() {
        let _ = f.flush().await;
    }
    t
}
