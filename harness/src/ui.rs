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

/// A bar counting `len` units; hidden (and silent) off a terminal, where
/// callers report milestones with `line` instead.
pub fn bar(len: u64, unit: &str) -> ProgressBar {
    let pb = if interactive() { multi().add(ProgressBar::new(len)) } else { ProgressBar::hidden() };
    let tmpl = format!("{{spinner}} {{msg:32}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{elapsed}} ETA {{eta}}");
    pb.set_style(ProgressStyle::with_template(&tmpl).unwrap().progress_chars("=> "));
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
