//! The network workload: iperf3 both ways (its JSON) and the verified
//! stream both ways (the guest's bounce-stream and the host's checker).

use super::data_failure;
use super::services::Report;
use crate::failure::{Failure, FailureClass, Result};
use crate::guest::channel::Transcript;
use std::collections::BTreeMap;

fn iperf(t: &Transcript, section: &str) -> Result<serde_json::Value> {
    let s =
        t.section(section).ok_or_else(|| Failure::new(FailureClass::Workload, format!("no `{section}` section")))?;
    let v: serde_json::Value = serde_json::from_str(&s.lines.join("\n"))
        .map_err(|e| Failure::new(FailureClass::Workload, format!("{section}: iperf3's JSON does not parse ({e})")))?;
    if let Some(err) = v["error"].as_str() {
        return Err(Failure::new(FailureClass::Workload, format!("{section}: iperf3: {err}")));
    }
    Ok(v)
}

/// `key: value` lines of bounce-stream's output.
fn stream_output(t: &Transcript, section: &str) -> Result<BTreeMap<String, String>> {
    let s =
        t.section(section).ok_or_else(|| Failure::new(FailureClass::Workload, format!("no `{section}` section")))?;
    Ok(s.lines
        .iter()
        .filter_map(|l| l.split_once(": ").map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect())
}

pub fn metrics(t: &Transcript, _services: &Report) -> Result<BTreeMap<String, f64>> {
    let mut m = BTreeMap::new();
    for (dir, section) in [("up", "iperf-up"), ("down", "iperf-down")] {
        let v = iperf(t, section)?;
        let end = &v["end"];
        if let Some(bps) = end["sum_received"]["bits_per_second"].as_f64() {
            m.insert(format!("iperf_{dir}_mbps"), bps / 1e6);
        }
        if let Some(r) = end["sum_sent"]["retransmits"].as_f64() {
            m.insert(format!("iperf_{dir}_retransmits"), r);
        }
    }
    // With parallel streams: iperf3's load beside the second verified
    // stream (informational: it shares the NIC with that stream).
    if t.section("iperf-load").is_some() {
        if let Some(bps) = iperf(t, "iperf-load")?["end"]["sum_received"]["bits_per_second"].as_f64() {
            m.insert("iperf_load_mbps".into(), bps / 1e6);
        }
    }
    let loaded = t.section("stream-down-loaded").map(|_| "down-loaded");
    for dir in ["up", "down"].into_iter().chain(loaded) {
        let o = stream_output(t, &format!("stream-{dir}"))?;
        let bytes: f64 = o.get("bytes").and_then(|b| b.parse().ok()).unwrap_or(0.0);
        let secs: f64 = o.get("seconds").and_then(|b| b.parse().ok()).unwrap_or(0.0);
        if secs > 0.0 {
            m.insert(format!("stream_{}_mbps", dir.replace('-', "_")), bytes * 8.0 / secs / 1e6);
        }
    }
    Ok(m)
}

/// Every byte both ways arrived as sent: every transfer the checker saw
/// (the second `down` one ran beside iperf3's parallel streams), and
/// each guest section's own verdict.
pub fn check(t: &Transcript, services: &Report) -> Result<()> {
    // Small frames (under the NICs' copybreak) only where the guest sent
    // them: runs from before they existed have no such section.
    let small = t.section("stream-down-small").map(|_| "down-small");
    for dir in ["up", "down"].into_iter().chain(small) {
        let verdicts: Vec<_> = services.stream.iter().filter(|v| v.direction == dir).collect();
        if verdicts.is_empty() {
            return Err(Failure::new(
                FailureClass::Workload,
                format!("network: the stream checker saw no `{dir}` transfer (did the guest reach its peer address?)"),
            ));
        }
        if let Some(v) = verdicts.iter().find(|v| !v.ok()) {
            return Err(data_failure(format!(
                "network: the {dir} stream arrived corrupted: {} ({} of {} bytes)",
                v.said, v.received, v.expected
            )));
        }
    }
    let loaded = t.section("stream-down-loaded").map(|_| "down-loaded");
    for dir in ["up", "down"].into_iter().chain(small).chain(loaded) {
        let o = stream_output(t, &format!("stream-{dir}"))?;
        let result = o.get("result").map(String::as_str).unwrap_or("(none)");
        if !result.starts_with("ok ") {
            return Err(data_failure(format!("network: the guest's {dir} stream says `{result}`")));
        }
    }
    if loaded.is_some() && services.stream.iter().filter(|v| v.direction == "down").count() < 2 {
        return Err(Failure::new(
            FailureClass::Workload,
            "network: the stream checker saw one `down` transfer; the guest sent a second beside iperf3's streams",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::stream::Verdict;

    fn transcript(down_result: &str) -> Transcript {
        Transcript::parse(&transcript_text(down_result))
    }

    fn transcript_text(down_result: &str) -> String {
        let iperf = |bps: f64| {
            format!(
                r#"{{"start":{{}},"end":{{"sum_sent":{{"bits_per_second":{bps},"retransmits":3}},"sum_received":{{"bits_per_second":{bps}}}}}}}"#
            )
        };
        format!(
            "@@bounce begin iperf-up\n{}\n@@bounce end iperf-up rc=0\n@@bounce begin iperf-down\n{}\n@@bounce end iperf-down rc=0\n@@bounce begin stream-up\nresult: ok 8388608\nbytes: 8388608\nseconds: 2.0\n@@bounce end stream-up rc=0\n@@bounce begin stream-down\nresult: {down_result}\nbytes: 8388608\nseconds: 4.0\n@@bounce end stream-down rc=0\n",
            iperf(95e6),
            iperf(120e6)
        )
    }

    fn verdict(dir: &str, said: &str, mismatch_at: Option<u64>) -> Verdict {
        Verdict { direction: dir.into(), expected: 8388608, received: 8388608, mismatch_at, said: said.into() }
    }

    #[test]
    fn throughput_both_ways() {
        let m = metrics(&transcript("ok 8388608"), &Report::default()).unwrap();
        assert_eq!(m["iperf_up_mbps"], 95.0);
        assert_eq!(m["iperf_down_retransmits"], 3.0);
        assert!((m["stream_up_mbps"] - 33.554432).abs() < 1e-9);
    }

    #[test]
    fn small_frames_are_checked_where_the_guest_sent_them() {
        let mut t = transcript("ok 8388608");
        let good = Report { stream: vec![verdict("up", "ok 8388608", None), verdict("down", "ok 8388608", None)] };
        assert!(check(&t, &good).is_ok(), "a run from before small frames");
        t = Transcript::parse(&format!(
            "{}@@bounce begin stream-down-small\nresult: ok 65536\nbytes: 65536\nseconds: 1.5\n@@bounce end stream-down-small rc=0\n",
            transcript_text("ok 8388608")
        ));
        let e = check(&t, &good).unwrap_err();
        assert!(e.message.contains("saw no `down-small` transfer"), "{}", e.message);
        let mut bad = good.clone();
        bad.stream.push(verdict("down-small", "mismatch at 61", Some(61)));
        let e = check(&t, &bad).unwrap_err();
        assert_eq!(e.class, FailureClass::Correctness);
        assert!(e.message.contains("the down-small stream arrived corrupted: mismatch at 61"), "{}", e.message);
        let mut ok = good.clone();
        ok.stream.push(verdict("down-small", "ok 65536", None));
        assert!(check(&t, &ok).is_ok());
    }

    #[test]
    fn a_corrupted_stream_either_way_fails() {
        let good = Report { stream: vec![verdict("up", "ok 8388608", None), verdict("down", "ok 8388608", None)] };
        assert!(check(&transcript("ok 8388608"), &good).is_ok());
        let bad_up =
            Report { stream: vec![verdict("up", "mismatch at 4096", Some(4096)), verdict("down", "ok 8388608", None)] };
        let e = check(&transcript("ok 8388608"), &bad_up).unwrap_err();
        assert_eq!(e.class, FailureClass::Correctness);
        assert!(e.message.contains("up stream arrived corrupted: mismatch at 4096"), "{}", e.message);
        let bad_down =
            Report { stream: vec![verdict("up", "ok 8388608", None), verdict("down", "mismatch at 77", Some(77))] };
        assert!(check(&transcript("mismatch at 77"), &bad_down).unwrap_err().message.contains("down stream"));
        assert_eq!(check(&transcript("ok 1"), &Report::default()).unwrap_err().class, FailureClass::Workload);
    }

    #[test]
    fn the_stream_beside_parallel_streams_is_checked_too() {
        let text = format!(
            "{}@@bounce begin stream-down-loaded\nresult: ok 8388608\nbytes: 8388608\nseconds: 8.0\n@@bounce end stream-down-loaded rc=0\n@@bounce begin iperf-load\n{}\n@@bounce end iperf-load rc=0\n",
            transcript_text("ok 8388608"),
            r#"{"start":{},"end":{"sum_sent":{"bits_per_second":4e8},"sum_received":{"bits_per_second":4e8}}}"#
        );
        let t = Transcript::parse(&text);
        let m = metrics(&t, &Report::default()).unwrap();
        assert_eq!((m["stream_down_loaded_mbps"], m["iperf_load_mbps"]), (8.388608, 400.0));
        let one = Report { stream: vec![verdict("up", "ok 8388608", None), verdict("down", "ok 8388608", None)] };
        assert!(check(&t, &one).unwrap_err().message.contains("saw one `down` transfer"));
        let mut two = one.clone();
        two.stream.push(verdict("down", "mismatch at 9000", Some(9000)));
        let e = check(&t, &two).unwrap_err();
        assert_eq!(e.class, FailureClass::Correctness);
        assert!(e.message.contains("the down stream arrived corrupted: mismatch at 9000"), "{}", e.message);
        two.stream[2] = verdict("down", "ok 8388608", None);
        assert!(check(&t, &two).is_ok());
    }
}
