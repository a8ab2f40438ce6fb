//! The guest's console as it streams: copied to its log up to a bound,
//! and read line by line for what the ending of a boot needs (the panic
//! line, the kernel's own diagnosis of a stall, the last line), so no
//! console, however long, is held in memory. A stalled guest is stopped
//! the moment the kernel says so; it otherwise costs the whole workload
//! timeout and says only that it did not finish.

use regex::Regex;
use std::path::Path;
use std::sync::OnceLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// The line that `panic()` prints first.
const PANIC_LINE: &str = "Kernel panic - not syncing";

/// A console log stops growing here (about 500 times a real boot's); the
/// rest is still read, scanned and counted.
pub const LOG_CAP: u64 = 16 << 20;

/// What a boot's ending needs of its console, kept line by line.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Console {
    pub panic_line: Option<String>,
    pub last_line: Option<String>,
    last_stall: Option<String>,
    last_complaint: Option<String>,
    /// Bytes read, and of those, bytes past the log's cap.
    pub bytes: u64,
    pub dropped: u64,
}

impl Console {
    /// Take one whole line; returns the stall it reports, if any.
    pub fn line(&mut self, l: &str) -> Option<String> {
        let t = l.trim();
        if !t.is_empty() && t != super::hang::HEARTBEAT {
            self.last_line = Some(t.to_string());
        }
        if self.panic_line.is_none() && l.contains(PANIC_LINE) {
            self.panic_line = Some(l.to_string());
        }
        let s = stall(l);
        if s.is_some() {
            self.last_stall = s.clone();
        } else if complaints().iter().any(|r| r.is_match(l)) {
            self.last_complaint = Some(t.to_string());
        }
        s
    }

    /// The kernel's last stall, else its last oops, BUG or WARNING.
    pub fn diagnosis(&self) -> Option<&str> {
        self.last_stall.as_deref().or(self.last_complaint.as_deref())
    }

    /// A whole recorded console (fixtures, tests).
    pub fn of(text: &str) -> Console {
        let mut c = Console::default();
        for l in text.lines() {
            c.line(l);
        }
        c.bytes = text.len() as u64;
        c
    }
}

/// Copy the console socket to `path` up to `cap` bytes and scan every
/// line; each stall goes to `stalls` as it streams.
pub async fn pump(
    mut sock: impl tokio::io::AsyncRead + Unpin,
    path: &Path,
    cap: u64,
    stalls: tokio::sync::mpsc::UnboundedSender<String>,
) -> Console {
    let mut file = tokio::fs::File::create(path).await.ok();
    let mut c = Console::default();
    let mut lines = Lines::default();
    let mut buf = [0u8; 8192];
    loop {
        let n = match sock.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let keep = cap.saturating_sub(c.bytes).min(n as u64) as usize;
        if let Some(f) = file.as_mut() {
            let _ = f.write_all(&buf[..keep]).await;
            if keep < n && c.dropped == 0 {
                let _ = f
                    .write_all(
                        format!(
                            "\n[bounce: console log cut at {cap} bytes; the rest was read and scanned, not kept]\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        }
        c.bytes += n as u64;
        c.dropped += (n - keep) as u64;
        lines.feed(&buf[..n], |l| {
            if let Some(s) = c.line(l) {
                let _ = stalls.send(s);
            }
        });
    }
    lines.finish(|l| {
        c.line(l);
    });
    if let Some(f) = file.as_mut() {
        let _ = f.flush().await;
    }
    c
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

    /// The last line, if the stream ended without its newline.
    pub fn finish(&mut self, mut f: impl FnMut(&str)) {
        if !self.partial.is_empty() {
            f(&String::from_utf8_lossy(&self.partial));
            self.partial.clear();
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
        assert_eq!(Console::of(c).diagnosis(), Some("[ 2.0] rcu: INFO: rcu_sched self-detected stall on CPU"));
        assert_eq!(
            Console::of("a\n[ 1.0] WARNING: CPU: 0 PID: 1 at x\nb\n").diagnosis(),
            Some("[ 1.0] WARNING: CPU: 0 PID: 1 at x")
        );
        assert_eq!(Console::of("all is well\n").diagnosis(), None);
    }

    #[tokio::test]
    async fn a_flood_is_cut_in_the_log_but_scanned_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let (mut guest, host) = tokio::io::duplex(1 << 16);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let pump = tokio::spawn({
            let log = log.clone();
            async move { pump(host, &log, 4096, tx).await }
        });
        for i in 0..2000 {
            guest.write_all(format!("[ {i}.0] noise line {i}\n").as_bytes()).await.unwrap();
        }
        guest.write_all(b"[ 9.0] rcu: INFO: rcu_sched self-detected stall on CPU\n").await.unwrap();
        guest.write_all(b"[ 9.1] Kernel panic - not syncing: soft lockup\nlast words").await.unwrap();
        drop(guest);
        let c = pump.await.unwrap();
        assert!(std::fs::metadata(&log).unwrap().len() < 4096 + 200);
        assert!(std::fs::read_to_string(&log).unwrap().contains("[bounce: console log cut at 4096 bytes"));
        assert!(c.dropped > 30_000 && c.bytes == c.dropped + 4096, "{c:?}");
        assert_eq!(c.panic_line.as_deref(), Some("[ 9.1] Kernel panic - not syncing: soft lockup"));
        assert_eq!(c.last_line.as_deref(), Some("last words"));
        assert_eq!(rx.recv().await.as_deref(), Some("[ 9.0] rcu: INFO: rcu_sched self-detected stall on CPU"));
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
