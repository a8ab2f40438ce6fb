//! The result channel: the guest's second UART (port I/O, so it never goes
//! through the DMA API and cannot disturb what it reports), carrying framed
//! sections of raw output. The guest stays dumb; every parser lives on the
//! host, where it can be tested against fixtures.
//!
//! ```text
//! @@bounce ready WORKLOAD
//! @@bounce begin NAME t=UPTIME
//! ...raw lines...
//! @@bounce end NAME rc=N t=UPTIME
//! @@bounce request KIND ARG      (the guest waits for "ack ARG ..." on the same UART)
//! @@bounce done rc=N
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// What a guest may send on the channel in one boot (a real one sends
/// under 100 KiB); past it the rest is read and dropped, and the boot fails.
pub const CAP: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub lines: Vec<String>,
    pub rc: Option<i32>,
    /// The guest's uptime (seconds, its own clock) at the section's begin
    /// and end, where the guest said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub began_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_s: Option<f64>,
}

/// What one line of the channel means to the guest's state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    Ready(String),
    Begin(String, Option<f64>),
    End(String, i32, Option<f64>),
    /// The guest asks the harness to do something (a QMP screendump) and
    /// waits for the answer on the UART.
    Request(String, String),
    Done(i32),
    Line(String),
}

pub fn classify(line: &str) -> Signal {
    let line = line.trim_end_matches('\r');
    let Some(rest) = line.strip_prefix("@@bounce ") else {
        return Signal::Line(line.to_string());
    };
    let words: Vec<&str> = rest.split_whitespace().collect();
    let mut w = words.iter().copied();
    let rc = |s: Option<&str>| s.and_then(|s| s.strip_prefix("rc=")).and_then(|n| n.parse().ok());
    // Finite and non-negative only: a guest's word is not trusted.
    let uptime =
        || words.iter().find_map(|x| x.strip_prefix("t=")?.parse::<f64>().ok()).filter(|t| t.is_finite() && *t >= 0.0);
    match (w.next(), w.next(), w.next()) {
        (Some("ready"), Some(name), _) => Signal::Ready(name.to_string()),
        (Some("begin"), Some(name), _) => Signal::Begin(name.to_string(), uptime()),
        (Some("end"), Some(name), r) => Signal::End(name.to_string(), rc(r).unwrap_or(-1), uptime()),
        (Some("done"), r, _) => Signal::Done(rc(r).unwrap_or(-1)),
        (Some("request"), Some(kind), Some(arg)) => Signal::Request(kind.to_string(), arg.to_string()),
        _ => Signal::Line(line.to_string()),
    }
}

/// Accumulates sections as lines arrive.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Transcript {
    pub ready: Option<String>,
    pub done: Option<i32>,
    pub sections: BTreeMap<String, Section>,
    /// Section names in the order the guest opened them.
    #[serde(default)]
    pub order: Vec<String>,
    #[serde(skip)]
    open: Option<String>,
    /// Bytes past the cap, read and dropped.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Read the channel to its end: each line to `path` and through the
/// transcript, its signal to `signals`, up to `cap` bytes (a line can be
/// no longer than what is left of it).
pub async fn pump(
    sock: impl tokio::io::AsyncRead + Unpin,
    path: &Path,
    cap: u64,
    signals: tokio::sync::mpsc::UnboundedSender<Signal>,
) -> Transcript {
    let mut t = Transcript::default();
    let mut file = tokio::fs::File::create(path).await.ok();
    let mut reader = BufReader::new(sock);
    let mut raw = Vec::new();
    let mut read = 0u64;
    // Bytes, not `lines()`: one corrupt byte on the UART must not end the stream.
    while read < cap {
        match (&mut reader).take(cap - read).read_until(b'\n', &mut raw).await {
            Ok(n) if n > 0 => read += n as u64,
            _ => break,
        }
        let line = String::from_utf8_lossy(&raw).trim_end_matches(['\n', '\r']).to_string();
        raw.clear();
        if let Some(f) = file.as_mut() {
            let _ = f.write_all(line.as_bytes()).await;
            let _ = f.write_all(b"\n").await;
        }
        let _ = signals.send(t.feed(&line));
    }
    // Past the cap: drained, so the guest never blocks on a full UART.
    let mut sink = [0u8; 8192];
    while let Ok(n) = reader.read(&mut sink).await {
        if n == 0 {
            break;
        }
        t.dropped += n as u64;
    }
    if let Some(f) = file.as_mut() {
        let _ = f.flush().await;
    }
    t
}

impl Transcript {
    pub fn feed(&mut self, line: &str) -> Signal {
        let sig = classify(line);
        match &sig {
            Signal::Ready(w) => self.ready = Some(w.clone()),
            Signal::Begin(name, t) => {
                self.sections.insert(name.clone(), Section { lines: Vec::new(), rc: None, began_s: *t, ended_s: None });
                self.order.push(name.clone());
                self.open = Some(name.clone());
            }
            Signal::End(name, rc, t) => {
                if let Some(s) = self.sections.get_mut(name) {
                    s.rc = Some(*rc);
                    s.ended_s = *t;
                }
                self.open = None;
            }
            Signal::Done(rc) => self.done = Some(*rc),
            Signal::Request(..) => {}
            Signal::Line(l) => {
                if let Some(s) = self.open.as_ref().and_then(|n| self.sections.get_mut(n)) {
                    s.lines.push(l.clone());
                }
            }
        }
        sig
    }

    pub fn parse(text: &str) -> Transcript {
        let mut t = Transcript::default();
        for l in text.lines() {
            t.feed(l);
        }
        t
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.get(name)
    }

    /// The last section that failed, with its last line: what a user
    /// needs to read first when a workload exits non-zero.
    pub fn failed_step(&self) -> Option<(&str, &str)> {
        self.order
            .iter()
            .rev()
            .filter_map(|n| self.sections.get(n).map(|s| (n, s)))
            .find(|(_, s)| s.rc.is_some_and(|rc| rc != 0))
            .map(|(n, s)| {
                (
                    n.as_str(),
                    s.lines.iter().rev().find(|l| !l.trim().is_empty()).map(String::as_str).unwrap_or("(no output)"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_guest_that_floods_the_channel_is_cut_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let (mut guest, host) = tokio::io::duplex(1 << 16);
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let log = dir.path().join("channel.log");
        let pump = tokio::spawn({
            let log = log.clone();
            async move { pump(host, &log, 1000, tx).await }
        });
        guest.write_all(b"@@bounce ready x\n@@bounce begin flood\n").await.unwrap();
        // One endless line, then more lines: none may grow past the cap.
        guest.write_all(&vec![b'y'; 50_000]).await.unwrap();
        guest.write_all(b"\n@@bounce done rc=0\n").await.unwrap();
        drop(guest);
        let t = pump.await.unwrap();
        assert_eq!(t.ready.as_deref(), Some("x"));
        assert!(t.dropped > 48_000, "{}", t.dropped);
        assert_eq!(t.done, None, "nothing past the cap counts");
        let kept: usize = t.sections["flood"].lines.iter().map(String::len).sum();
        assert!(kept < 1000, "{kept}");
        assert!(std::fs::metadata(&log).unwrap().len() < 1100);
    }

    #[test]
    fn frames_sections_with_return_codes() {
        let t = Transcript::parse(
            "noise\n@@bounce ready memory\n@@bounce begin meminfo\r\nMemTotal: 1 kB\n@@bounce request screendump final\n@@bounce end meminfo rc=0\nstray\n@@bounce begin x\n@@bounce end x rc=3\n@@bounce done rc=0\n",
        );
        assert_eq!(classify("@@bounce request screendump final"), Signal::Request("screendump".into(), "final".into()));
        assert_eq!(t.ready.as_deref(), Some("memory"));
        assert_eq!(t.done, Some(0));
        assert_eq!(t.section("meminfo").unwrap().lines, vec!["MemTotal: 1 kB"]);
        assert_eq!(t.section("x").unwrap().rc, Some(3));
        assert!(t.section("stray").is_none());
        assert_eq!(t.failed_step(), Some(("x", "(no output)")));
    }

    #[test]
    fn markers_carry_the_guest_s_uptime_when_it_is_a_time() {
        let t = Transcript::parse(
            "@@bounce begin a t=1.50\n@@bounce end a rc=0 t=4.25\n@@bounce begin b t=nan\n@@bounce end b rc=1 t=-3\n@@bounce begin c\n@@bounce end c rc=0\n",
        );
        let a = t.section("a").unwrap();
        assert_eq!((a.rc, a.began_s, a.ended_s), (Some(0), Some(1.5), Some(4.25)));
        let b = t.section("b").unwrap();
        assert_eq!((b.rc, b.began_s, b.ended_s), (Some(1), None, None));
        assert_eq!(t.section("c").unwrap().began_s, None);
    }

    #[test]
    fn truncated_stream_has_no_done() {
        let t = Transcript::parse("@@bounce ready m\n@@bounce begin dmesg\nline\n");
        assert_eq!(t.done, None);
        assert_eq!(t.section("dmesg").unwrap().rc, None);
    }
}
