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
