//! The kernel's own diagnosis of a guest that stopped making progress,
//! read from the console as it streams: a stalled guest otherwise costs
//! the whole workload timeout and says only that it did not finish.

use regex::Regex;
use std::sync::OnceLock;

/// Lines the kernel prints when it has stopped making progress. Each ends
/// the boot at once: nothing after them is a measurement.
const STALLS: &[&str] = &[
    // rcu: INFO: rcu_sched self-detected stall on CPU
    // rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:
    r"rcu: INFO: \S+ (self-)?detected stall",
    // watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [fio:123]
    r"BUG: soft lockup - CPU#\d+ stuck",
    r"Watchdog detected hard LOCKUP on cpu \d+",
    // INFO: task fio:123 blocked for more than 120 seconds.
    r"INFO: task \S+ blocked for more than \d+ seconds",
];

/// What else the kernel says when something went wrong, quoted when a
/// guest times out.
const COMPLAINTS: &[&str] = &[r"\bOops\b", r"\bBUG: ", r"WARNING: CPU: \d+ PID: \d+", r"kernel BUG at"];

fn compiled(set: &'static [&'static str], cell: &'static OnceLock<Vec<Regex>>) -> &'static [Regex] {
    cell.get_or_init(|| set.iter().map(|p| Regex::new(p).expect("a valid pattern")).collect())
}

fn stalls() -> &'static [Regex] {
    static R: OnceLock<Vec<Regex>> = OnceLock::new();
    compiled(STALLS, &R)
}

fn complaints() -> &'static [Regex] {
    static R: OnceLock<Vec<Regex>> = OnceLock::new();
    compiled(COMPLAINTS, &R)
}

/// The stall a console line reports, trimmed of its timestamp's padding.
pub fn stall(line: &str) -> Option<String> {
    stalls().iter().any(|r| r.is_match(line)).then(|| line.trim().to_string())
}

/// The kernel's last word on what went wrong in `console`, if it said one:
/// a stall, else an oops, BUG or WARNING.
pub fn diagnosis(console: &str) -> Option<String> {
    let lines: Vec<&str> = console.lines().collect();
    lines.iter().rev().find_map(|l| stall(l)).or_else(|| {
        lines.iter().rev().find(|l| complaints().iter().any(|r| r.is_match(l))).map(|l| l.trim().to_string())
    })
}

/// Splits a byte stream into lines and hands each complete one to `f`.
#[derive(Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    pub fn feed(&mut self, bytes: &[u8], mut f: impl FnMut(&str)) {
        for &b in bytes {
            if b == b'\n' {
                f(&String::from_utf8_lossy(&self.partial));
                self.partial.clear();
            } else if self.partial.len() < 4096 {
                // A console line longer than this is noise; its start is enough.
                self.partial.push(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as 6.12 prints them (kernel/rcu/tree_stall.h,
    /// kernel/watchdog.c, kernel/hung_task.c).
    #[test]
    fn the_kernel_s_stall_reports_are_recognised_and_ordinary_lines_are_not() {
        for l in [
            "[   12.345678] rcu: INFO: rcu_sched self-detected stall on CPU",
            "[   12.345678] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
            "[   30.000001] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [fio:123]",
            "[  243.1] INFO: task fio:211 blocked for more than 120 seconds.",
        ] {
            assert_eq!(stall(l).as_deref(), Some(l.trim()), "{l}");
        }
        for l in [
            "[    0.1] rcu: Hierarchical RCU implementation.",
            "[    0.2] rcu: RCU calculated value of scheduler-enlistment delay is 100 jiffies.",
            "[    1.0] swiotlb buffer is full (sz: 1048576 bytes), total 512 (slots), used 505 (slots)",
        ] {
            assert_eq!(stall(l), None, "{l}");
        }
    }

    #[test]
    fn a_diagnosis_prefers_a_stall_and_else_the_last_complaint() {
        let c = "boot\n[ 1.0] WARNING: CPU: 0 PID: 1 at x\n[ 2.0] rcu: INFO: rcu_sched self-detected stall on CPU\n[ 3.0] more\n";
        assert_eq!(diagnosis(c).as_deref(), Some("[ 2.0] rcu: INFO: rcu_sched self-detected stall on CPU"));
        assert_eq!(
            diagnosis("a\n[ 1.0] WARNING: CPU: 0 PID: 1 at x\nb\n").as_deref(),
            Some("[ 1.0] WARNING: CPU: 0 PID: 1 at x")
        );
        assert_eq!(diagnosis("all is well\n"), None);
    }

    #[test]
    fn lines_come_whole_across_reads() {
        let mut l = Lines::default();
        let mut got = Vec::new();
        l.feed(b"rcu: INFO: rcu_sched self-det", |s| got.push(s.to_string()));
        l.feed(b"ected stall on CPU\nnext", |s| got.push(s.to_string()));
        assert_eq!(got, ["rcu: INFO: rcu_sched self-detected stall on CPU"]);
    }
}
