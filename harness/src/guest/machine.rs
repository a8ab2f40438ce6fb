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
use crate::failure::{Classify, Failure, FailureClass, Result};
use command_fds::{CommandFdExt, FdMapping};
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
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
    std::fs::create_dir_all(dir).infra(|| format!("cannot create {}", dir.display()))?;
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
    let (host, guest) = std::os::unix::net::UnixStream::pair().infra(|| "socketpair".into())?;
    host.set_nonblocking(true).infra(|| "socketpair".into())?;
    let host = UnixStream::from_std(host).infra(|| "socketpair".into())?;
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
    let stderr = std::fs::File::create(&stderr_path).infra(|| format!("cannot create {}", stderr_path.display()))?;
    let mut cmd = tokio::process::Command::new(&spec.qemu);
    // The pidfile puts the guest's directory on QEMU's command line: a
    // process listing then tells which run and cell a QEMU belongs to.
    cmd.args(spec.args())
        .arg("-pidfile")
        .arg(dir.join("qemu.pid"))
        .stdin(std::process::Stdio::null())
        .stdout(stderr.try_clone().infra(|| format!("cannot share {}", stderr_path.display()))?)
        .stderr(stderr)
        .process_group(0);
    crate::host::cmd::dies_with_harness(&mut cmd);
    cmd.fd_mappings(vec![
        FdMapping { parent_fd: con_guest, child_fd: CONSOLE_FD },
        FdMapping { parent_fd: res_guest, child_fd: RESULTS_FD },
        FdMapping { parent_fd: qmp_guest, child_fd: QMP_FD },
    ])
    .infra(|| "cannot hand QEMU its channels".into())?;
    let mut child = cmd.spawn().infra(|| format!("cannot start {}", spec.qemu))?;
    // The command owns our copies of the guest ends; while they stay open
    // the channels never see end-of-file when QEMU exits.
    drop(cmd);
    let pgid = child.id().map(|p| nix::unistd::Pid::from_raw(p as i32));
    // Whatever happens below, the process group dies with this guard.
    let _reaper = Reaper(pgid);

    let (stall_tx, mut stalls) = mpsc::unbounded_channel();
    let console = tokio::spawn({
        let path = dir.join("console.log");
        async move { super::console::pump(con_host, &path, super::console::LOG_CAP, stall_tx).await }
    });
    let (sig_tx, mut signals) = mpsc::unbounded_channel();
    // The UART runs both ways: answers to the guest's requests go back on it.
    let (res_read, mut res_write) = res_host.into_split();
    let results = tokio::spawn({
        let path = dir.join("channel.log");
        async move { super::channel::pump(res_read, &path, super::channel::CAP, sig_tx).await }
    });

    let stderr_tail =
        || crate::host::cmd::last_line(&std::fs::read_to_string(&stderr_path).unwrap_or_default()).to_string();
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
    let mut served = 0usize;
    // Progress is what the guest writes (its /init beats every 5 s): looked
    // at as the two logs' sizes, every few seconds.
    let quiet_limit = super::hang::quiet_limit();
    let logs = [dir.join("console.log"), dir.join("channel.log")];
    let written = || logs.iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum::<u64>();
    let (mut last_written, mut progressed) = (0u64, Instant::now());
    let mut look = tokio::time::interval(Duration::from_secs(5));
    let (mut signals_open, mut events_open, mut stalls_open) = (true, true, true);
    let ending = loop {
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
                    let answer = match refusal(&kind, &arg, served) {
                        Some(no) => no,
                        None => {
                            served += 1;
                            // The guest waits for this answer, the boot's deadline does not.
                            let within = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(30));
                            screendump(&qmp, dir, &arg, within).await
                        }
                    };
                    let _ = res_write.write_all(format!("ack {arg} {answer}\n").as_bytes()).await;
                }
                Some(_) => {}
                None => signals_open = false,
            },
            e = events.recv(), if events_open => match e {
                Some(Event { name, data }) => match name.as_str() {
                    "SHUTDOWN" => break Ending::Shutdown { reason: data["reason"].as_str().unwrap_or("unknown").to_string() },
                    // Whatever QEMU's panic action (pause, shutdown), the
                    // guest is done; the panic text is already on the
                    // console socket, written before pvpanic was told.
                    "GUEST_PANICKED" => break Ending::Panicked,
                    // QEMU paused the guest (a host I/O error on a drive,
                    // say): it will never report, waiting would only burn
                    // the timeout.
                    "STOP" => break Ending::Paused,
                    _ => {}
                },
                None => events_open = false,
            },
            s = stalls.recv(), if stalls_open => match s {
                // The kernel says it stopped making progress: nothing
                // after this is a measurement, and waiting would only
                // burn the timeout.
                Some(line) => break Ending::Stalled { line },
                None => stalls_open = false,
            },
            s = child.wait() => break Ending::QemuExited {
                status: s.map(|s| s.to_string()).unwrap_or_else(|_| "unknown status".into()),
            },
            _ = look.tick() => {
                let now = written();
                if now != last_written {
                    (last_written, progressed) = (now, Instant::now());
                } else if ready_at.is_some() && done.is_none() && progressed.elapsed() >= quiet_limit {
                    let symbols = super::hang::Symbols::load(&spec.kernel.with_file_name("System.map"));
                    let stuck_in = super::hang::locate(&qmp, spec.vcpus(), &symbols).await;
                    break Ending::Hung { quiet_s: progressed.elapsed().as_secs(), stuck_in };
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => break Ending::TimedOut,
        }
    };
    // After a guest shutdown QEMU exits by itself (-no-reboot); otherwise
    // ask it to quit, then make sure.
    let mut exited = matches!(ending, Ending::QemuExited { .. });
    if !exited && matches!(ending, Ending::Shutdown { .. }) {
        exited = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_ok_and(|r| r.is_ok());
    }
    if !exited {
        let _ = qmp.execute(&qapi::qmp::quit {}, Duration::from_secs(3)).await;
        if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
            drop(_reaper);
            let _ = child.wait().await;
        }
    }
    drop(qmp);
    // The channels close with QEMU; read them to their end so nothing the
    // guest said is lost.
    let console =
        tokio::time::timeout(Duration::from_secs(5), console).await.ok().and_then(|r| r.ok()).unwrap_or_default();
    run.transcript =
        tokio::time::timeout(Duration::from_secs(5), results).await.ok().and_then(|r| r.ok()).unwrap_or_default();
    let ending = match ending {
        Ending::TimedOut if done.is_some() => Ending::Shutdown {
            reason: format!(
                "did not power off within {POWER_OFF_GRACE:?} of reporting done; QEMU stopped by the harness"
            ),
        },
        e => e,
    };
    if let Ending::Shutdown { reason } = &ending {
        run.shutdown_reason = Some(reason.clone());
    }
    let seen = Seen {
        ready: ready_at.is_some() || run.transcript.ready.is_some(),
        done: done.is_some() || run.transcript.done.is_some(),
        console,
        channel_dropped: run.transcript.dropped,
        timeouts,
        console_path: dir.join("console.log"),
        stderr_path: stderr_path.clone(),
        stderr_tail: stderr_tail(),
    };
    match classify(&ending, &seen) {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// How a guest's life ended, as the harness saw it happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The guest powered off (QMP SHUTDOWN), with QEMU's reason.
    Shutdown { reason: String },
    /// pvpanic: the kernel panicked.
    Panicked,
    /// The kernel said on its console that it stopped making progress.
    Stalled { line: String },
    /// QEMU paused the guest (QMP STOP).
    Paused,
    /// The boot or workload deadline passed first.
    TimedOut,
    /// QEMU exited without the guest shutting down.
    QemuExited { status: String },
    /// The guest wrote nothing for `quiet_s` while it should have been
    /// reporting; its CPUs were in `stuck_in` (most seen first).
    Hung { quiet_s: u64, stuck_in: Vec<String> },
}

/// What the guest said and showed, besides how it ended.
#[derive(Debug, Clone)]
pub struct Seen {
    /// It reached init (`ready`) / finished its report (`done`).
    pub ready: bool,
    pub done: bool,
    pub console: super::console::Console,
    /// Bytes of the result channel past its cap.
    pub channel_dropped: u64,
    pub timeouts: Timeouts,
    pub console_path: PathBuf,
    pub stderr_path: PathBuf,
    pub stderr_tail: String,
}

/// The failure (or none) that an ending means. Pure: the unit tests feed
/// it recorded consoles.
pub fn classify(ending: &Ending, seen: &Seen) -> Option<Failure> {
    let console_path = seen.console_path.display();
    let last_console = seen.console.last_line.as_deref().unwrap_or("(nothing)");
    // The kernel itself gave up: a bug of the kernel under test once the
    // workload runs, a boot failure before.
    let kernel_failed = |how: &str, what: &str| {
        if seen.ready {
            Failure::new(
                FailureClass::Correctness,
                format!("kernel {how} during the workload: {what} (console: {console_path})"),
            )
        } else {
            Failure::new(FailureClass::Boot, format!("kernel {how} before init: {what} (console: {console_path})"))
        }
    };
    if let Ending::Hung { quiet_s, stuck_in } = ending {
        let where_ = match stuck_in.as_slice() {
            [] => "no CPU could be placed (no System.map, or QEMU gave no registers)".to_string(),
            fs => format!("its CPU was in `{}` (QEMU's registers, resolved with System.map)", fs.join("`, `")),
        };
        return Some(kernel_failed("hung", &format!("nothing written for {quiet_s} s; {where_}")));
    }
    if *ending == Ending::Panicked || seen.console.panic_line.is_some() {
        let what = seen.console.panic_line.as_deref().unwrap_or("pvpanic reported a guest panic");
        return Some(kernel_failed("panicked", what));
    }
    if let Ending::Stalled { line } = ending {
        return Some(kernel_failed("stalled", &format!("`{line}`")));
    }
    if seen.channel_dropped > 0 {
        return Some(Failure::new(
            FailureClass::Workload,
            format!(
                "guest sent more than {} MiB on its result channel ({} bytes past it dropped; channel: {}/channel.log)",
                super::channel::CAP >> 20,
                seen.channel_dropped,
                seen.console_path.parent().map(|p| p.display().to_string()).unwrap_or_default()
            ),
        ));
    }
    match ending {
        Ending::Paused => {
            return Some(Failure::infra(format!(
                "QEMU paused the guest (QMP STOP; see {} and the console: {console_path})",
                seen.stderr_path.display()
            )))
        }
        Ending::TimedOut => {
            // The kernel's own words, when it said something went wrong,
            // say more than the last line it printed.
            let said = seen.console.diagnosis().map(|d| format!("; the kernel said: `{d}`")).unwrap_or_default();
            return Some(if seen.ready {
                Failure::new(
                    FailureClass::Workload,
                    format!(
                        "guest did not finish within {:?} (last console line: `{last_console}`{said}; console: {console_path})",
                        seen.timeouts.run
                    ),
                )
            } else {
                Failure::new(
                    FailureClass::Boot,
                    format!(
                        "guest did not reach init within {:?} (last console line: `{last_console}`{said}; console: {console_path})",
                        seen.timeouts.boot
                    ),
                )
            });
        }
        Ending::QemuExited { status } if !seen.done => {
            return Some(Failure::infra(format!(
                "QEMU exited unexpectedly ({status}): {} [{}]",
                seen.stderr_tail,
                seen.stderr_path.display()
            )))
        }
        _ => {}
    }
    if !seen.ready {
        return Some(Failure::new(
            FailureClass::Boot,
            format!(
                "guest stopped before reaching init (last console line: `{last_console}`; console: {console_path})"
            ),
        ));
    }
    if !seen.done {
        return Some(Failure::new(
            FailureClass::Workload,
            format!("guest powered off before reporting done (console: {console_path})"),
        ));
    }
    None
}

/// At most this many requests a boot: each can write a file of the
/// framebuffer's size, and a guest is not trusted to stop asking.
const MAX_REQUESTS: usize = 16;

/// Why a guest's request is refused without being carried out, if it is:
/// everything but a well-named screendump, and anything past the limit.
fn refusal(kind: &str, arg: &str, served: usize) -> Option<String> {
    if served >= MAX_REQUESTS {
        return Some(format!("error no more than {MAX_REQUESTS} requests a boot"));
    }
    match kind {
        "screendump"
            if !arg.is_empty()
                && arg.len() <= 64
                && arg.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            None
        }
        "screendump" => Some("error a screendump's name is 1-64 of [A-Za-z0-9_-]".into()),
        _ => Some(format!("error unknown request `{kind} {arg}`")),
    }
}

/// Carry out an admitted request (a screendump is the only kind
/// `refusal` admits) within `within`; the answer's first word is `ok` or
/// `error`.
async fn screendump(qmp: &Qmp, dir: &Path, name: &str, within: Duration) -> String {
    let file = dir.join(format!("{name}.ppm"));
    let cmd = qapi::qmp::screendump { filename: file.display().to_string(), device: None, head: None, format: None };
    match qmp.execute(&cmd, within).await {
        Ok(_) => format!("ok {}", file.display()),
        Err(e) => format!("error {}", e.message),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::console::Console;

    fn seen(console: &str, ready: bool, done: bool) -> Seen {
        Seen {
            ready,
            done,
            console: Console::of(console),
            channel_dropped: 0,
            timeouts: Timeouts { boot: Duration::from_secs(60), run: Duration::from_secs(300) },
            console_path: "/r/g/console.log".into(),
            stderr_path: "/r/g/qemu.stderr".into(),
            stderr_tail: "qemu-system-x86_64: terminating on signal 9".into(),
        }
    }

    const CLEAN: &str = include_str!("fixtures/console-x86-clean.txt");
    const PANIC: &str = include_str!("fixtures/console-x86-sysrq-panic.txt");
    const STALL: &str = include_str!("fixtures/console-x86-rcu-stall.txt");
    const SHUTDOWN: Ending = Ending::Shutdown { reason: String::new() };

    fn class(e: &Ending, s: &Seen) -> Option<FailureClass> {
        classify(e, s).map(|f| f.class)
    }

    #[test]
    fn a_hang_is_the_kernel_s_and_names_where_its_cpu_was() {
        let hung = Ending::Hung { quiet_s: 61, stuck_in: vec!["bounce_spin_forever".into(), "cpu_relax".into()] };
        let f = classify(&hung, &seen(CLEAN, true, false)).unwrap();
        assert_eq!(f.class, FailureClass::Correctness);
        assert_eq!(
            f.message,
            "kernel hung during the workload: nothing written for 61 s; its CPU was in `bounce_spin_forever`, `cpu_relax` (QEMU's registers, resolved with System.map) (console: /r/g/console.log)"
        );
        let blind = Ending::Hung { quiet_s: 60, stuck_in: vec![] };
        assert!(classify(&blind, &seen(CLEAN, true, false)).unwrap().message.contains("no CPU could be placed"));
    }

    #[test]
    fn a_clean_boot_that_reported_everything_passes() {
        let s = seen(CLEAN, true, true);
        assert_eq!(classify(&Ending::Shutdown { reason: "guest-shutdown".into() }, &s).map(|f| f.message), None);
        // QEMU gone before its SHUTDOWN event reached us: what counts is the report.
        assert_eq!(class(&Ending::QemuExited { status: "exit status: 0".into() }, &s), None);
    }

    #[test]
    fn a_panic_is_the_kernel_s_fault_during_the_workload_and_a_boot_failure_before() {
        let f = classify(&Ending::Panicked, &seen(PANIC, true, false)).unwrap();
        assert_eq!(f.class, FailureClass::Correctness);
        assert!(
            f.message.starts_with("kernel panicked during the workload: [    1.290671] Kernel panic - not syncing: sysrq triggered crash (console: /r/g/console.log)"),
            "{}",
            f.message
        );
        assert_eq!(class(&Ending::Panicked, &seen(PANIC, false, false)), Some(FailureClass::Boot));
        // The console's panic line decides even when QEMU's event was lost.
        assert_eq!(class(&SHUTDOWN, &seen(PANIC, true, false)), Some(FailureClass::Correctness));
        let f = classify(&Ending::Panicked, &seen(CLEAN, true, false)).unwrap();
        assert!(f.message.contains("pvpanic reported a guest panic"), "{}", f.message);
    }

    #[test]
    fn a_stall_quotes_the_kernel_and_a_timeout_quotes_its_diagnosis() {
        let line = Console::of(STALL).diagnosis().unwrap().to_string();
        assert_eq!(line, "[    5.631940] rcu: INFO: rcu_sched self-detected stall on CPU");
        let f = classify(&Ending::Stalled { line: line.clone() }, &seen(STALL, true, false)).unwrap();
        assert_eq!(f.class, FailureClass::Correctness);
        assert!(f.message.starts_with(&format!("kernel stalled during the workload: `{line}`")), "{}", f.message);
        let f = classify(&Ending::TimedOut, &seen(STALL, true, false)).unwrap();
        assert_eq!(f.class, FailureClass::Workload);
        assert!(f.message.contains(&format!("; the kernel said: `{line}`")), "{}", f.message);
        let f = classify(&Ending::TimedOut, &seen(CLEAN, false, false)).unwrap();
        assert_eq!(f.class, FailureClass::Boot);
        assert!(
            f.message.starts_with(
                "guest did not reach init within 60s (last console line: `[    1.469438] reboot: Power down`; console:"
            ),
            "{}",
            f.message
        );
    }

    #[test]
    fn the_harness_s_side_is_infrastructure_and_a_silent_guest_is_its_own() {
        assert_eq!(class(&Ending::Paused, &seen(CLEAN, true, false)), Some(FailureClass::Infrastructure));
        let f =
            classify(&Ending::QemuExited { status: "signal: 9 (SIGKILL)".into() }, &seen(CLEAN, true, false)).unwrap();
        assert_eq!(f.class, FailureClass::Infrastructure);
        assert!(f
            .message
            .contains("(signal: 9 (SIGKILL)): qemu-system-x86_64: terminating on signal 9 [/r/g/qemu.stderr]"));
        assert_eq!(class(&SHUTDOWN, &seen(CLEAN, false, false)), Some(FailureClass::Boot));
        assert_eq!(class(&SHUTDOWN, &seen("", false, false)).unwrap(), FailureClass::Boot);
        assert!(classify(&SHUTDOWN, &seen("", false, false))
            .unwrap()
            .message
            .contains("last console line: `(nothing)`"));
        assert_eq!(class(&SHUTDOWN, &seen(CLEAN, true, false)), Some(FailureClass::Workload));
        let mut flood = seen(CLEAN, true, true);
        flood.channel_dropped = 1;
        assert_eq!(class(&SHUTDOWN, &flood), Some(FailureClass::Workload));
    }

    #[test]
    fn a_guest_s_requests_are_bounded_in_number_and_name() {
        assert_eq!(refusal("screendump", "final", 0), None);
        assert!(refusal("screendump", "final", MAX_REQUESTS).unwrap().starts_with("error no more than 16"));
        assert!(refusal("screendump", "../../etc/x", 0).is_some());
        assert!(refusal("screendump", &"a".repeat(65), 0).is_some());
        assert!(refusal("reboot", "now", 0).unwrap().contains("unknown request"));
    }
}
