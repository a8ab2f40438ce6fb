//! The terminal: progress bars when stderr is a terminal, plain lines when
//! it is not (CI logs), one place for both.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::OnceLock;

fn multi() -> &'static MultiProgress {
    static M: OnceLock<MultiProgress> = OnceLock::new();
    M.get_or_init(MultiProgress::new)
}

pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// A status line that survives both modes: indicatif's own println prints
/// nothing when its bars are hidden.
pub fn line(msg: impl AsRef<str>) {
    let msg = msg.as_ref();
    multi().suspend(|| eprintln!("bounce: {msg}"));
}

/// A kernel build's bar: compiled objects against the count of the last
/// full build of the same config. The ETA starts from that build's time
/// and follows the real rate once a tenth is done. An incremental build
/// has no count to expect: a spinner with the objects so far. Hidden (and
/// silent) off a terminal, where callers report milestones with `line`.
pub fn build_bar(expected: Option<u64>, last_seconds: Option<f64>) -> ProgressBar {
    let Some(len) = expected else {
        let pb = if interactive() { multi().add(ProgressBar::new_spinner()) } else { ProgressBar::hidden() };
        pb.set_style(ProgressStyle::with_template("{spinner} {msg:40} {pos} objects {elapsed}").unwrap());
        pb.enable_steady_tick(std::time::Duration::from_millis(250));
        return pb;
    };
    let pb = if interactive() { multi().add(ProgressBar::new(len)) } else { ProgressBar::hidden() };
    let style =
        ProgressStyle::with_template("{spinner} {msg:40} [{bar:30}] {pos}/{len} objects {elapsed} ETA {last_eta}")
            .unwrap()
            .progress_chars("=> ")
            .with_key("last_eta", move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let done = state.fraction() as f64;
                let eta = match last_seconds {
                    Some(last) if done < 0.1 => {
                        std::time::Duration::from_secs_f64((last - state.elapsed().as_secs_f64()).max(0.0))
                    }
                    _ => state.eta(),
                };
                let _ = write!(w, "{}", humantime::format_duration(std::time::Duration::from_secs(eta.as_secs())));
            });
    pb.set_style(style);
    pb.enable_steady_tick(std::time::Duration::from_millis(250));
    pb
}

/// A spinner for a guest: its message is the guest's state.
pub fn spinner() -> ProgressBar {
    let pb = if interactive() { multi().add(ProgressBar::new_spinner()) } else { ProgressBar::hidden() };
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap());
    pb.enable_steady_tick(std::time::Duration::from_millis(250));
    pb
}

/// A command's result on stdout (a report, a table, a listing). A reader
/// that stops reading (`bounce report RUN | head`) ends the harness
/// quietly with 141, as SIGPIPE ends other tools, not with a panic. The
/// harness keeps SIGPIPE ignored: a guest's socket closing under a write
/// must be an error it handles, not its death.
pub fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = writeln!(o, "{text}").and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
    }
}

/// `println!` through [`out`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => { $crate::ui::out(&format!($($arg)*)) };
}
