//! The DMA-API conformance workload: the harness's `dmacheck` driver
//! (kernels/patches/harness/, built into every 6.12 variant) runs its
//! cases once per min_align_mask and prints one line per failed case and
//! a total per run. Parsed and judged here.

use super::data_failure;
use crate::failure::{Failure, FailureClass, Result};
use crate::guest::channel::Transcript;
use std::collections::BTreeMap;

/// One run of the driver (one min_align_mask): its sections are
/// `dmacheck-mask-MASK`.
struct Run<'a> {
    mask: &'a str,
    lines: &'a [String],
    total: Totals,
}

#[derive(Default, Clone, Copy)]
struct Totals {
    cases: u64,
    failed: u64,
    refused: u64,
    bounced: u64,
}

/// `total: cases 936 failed 0 refused 0 bounced 936`
fn totals(line: &str) -> Option<Totals> {
    let w: Vec<&str> = line.strip_prefix("total:")?.split_whitespace().collect();
    let get = |k: &str| w.iter().position(|x| *x == k).and_then(|i| w.get(i + 1)).and_then(|v| v.parse().ok());
    Some(Totals { cases: get("cases")?, failed: get("failed")?, refused: get("refused")?, bounced: get("bounced")? })
}

fn runs(t: &Transcript) -> Result<Vec<Run<'_>>> {
    let mut out = Vec::new();
    for (name, s) in &t.sections {
        let Some(mask) = name.strip_prefix("dmacheck-mask-") else { continue };
        if let Some(rc) = s.rc.filter(|rc| *rc != 0) {
            let why = s.lines.last().map(|l| format!(": {l}")).unwrap_or_default();
            return Err(Failure::new(
                FailureClass::Workload,
                format!("dmacheck (min_align_mask {mask}) could not run, rc={rc}{why}"),
            ));
        }
        let total = s.lines.iter().rev().find_map(|l| totals(l)).ok_or_else(|| {
            Failure::new(FailureClass::Workload, format!("dmacheck (min_align_mask {mask}) printed no total"))
        })?;
        out.push(Run { mask, lines: &s.lines, total });
    }
    if out.is_empty() {
        let why = t.section("dmacheck-bind").and_then(|s| s.lines.last()).map(|l| format!(": {l}")).unwrap_or_default();
        return Err(Failure::new(FailureClass::Workload, format!("dmacheck reported no run{why}")));
    }
    Ok(out)
}

pub fn metrics(t: &Transcript) -> Result<BTreeMap<String, f64>> {
    let mut sum = Totals::default();
    for r in runs(t)? {
        sum.cases += r.total.cases;
        sum.failed += r.total.failed;
        sum.refused += r.total.refused;
        sum.bounced += r.total.bounced;
    }
    Ok(BTreeMap::from([
        ("cases".into(), sum.cases as f64),
        ("cases_failed".into(), sum.failed as f64),
        ("mappings_refused".into(), sum.refused as f64),
        ("mappings_bounced".into(), sum.bounced as f64),
    ]))
}

/// Every case must pass; a dynamic kernel must refuse no mapping (it
/// grows, or makes a transient pool, instead); a fixed one may, and its
/// log says so. With the transient probe asked for, a dynamic kernel's
/// probe must have reached a transient pool: one that found the pools
/// never full, or grown before the probe, judged nothing.
pub fn check(t: &Transcript, dynamic: bool, transient: bool) -> Result<()> {
    let runs = runs(t)?;
    for r in &runs {
        if r.total.failed > 0 {
            let first = r.lines.iter().find(|l| l.starts_with("FAIL ")).map(|l| l.trim()).unwrap_or("(no FAIL line)");
            return Err(data_failure(format!(
                "dmacheck (min_align_mask {}): {} of {} cases failed; first: {first}",
                r.mask, r.total.failed, r.total.cases
            )));
        }
        if r.total.cases == 0 {
            return Err(Failure::new(
                FailureClass::Workload,
                format!("dmacheck (min_align_mask {}) ran no case", r.mask),
            ));
        }
    }
    if dynamic && transient {
        let said: Vec<&str> =
            runs.iter().flat_map(|r| r.lines.iter()).filter_map(|l| l.trim().strip_prefix("transient: ")).collect();
        if !said.iter().any(|l| l.starts_with("reached")) {
            let why =
                said.first().map(|l| format!(": {l}")).unwrap_or_else(|| ": it printed no `transient:` line".into());
            return Err(Failure::new(
                FailureClass::Workload,
                format!("dmacheck's transient probe judged nothing (no mapping got a transient pool){why}"),
            ));
        }
    }
    if dynamic {
        if let Some(r) = runs.iter().find(|r| r.total.refused > 0) {
            return Err(data_failure(format!(
                "dmacheck (min_align_mask {}): a dynamic kernel refused {} of {} mappings (it should have grown its pool)",
                r.mask, r.total.refused, r.total.cases
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(body0: &str, body1: &str) -> Transcript {
        Transcript::parse(&format!(
            "@@bounce begin dmacheck-mask-0 t=1.0\ndmacheck threads=2 dma_bits=32 min_align_mask=0 force=1 max_mapping=262144\n{body0}@@bounce end dmacheck-mask-0 rc=0 t=2.0\n@@bounce begin dmacheck-mask-0xfff t=2.0\n{body1}@@bounce end dmacheck-mask-0xfff rc=0 t=3.0\n"
        ))
    }

    const CLEAN: &str =
        "thread 0: cases 476 failed 0 refused 0 bounced 480\ntotal: cases 952 failed 0 refused 0 bounced 960\n";

    #[test]
    fn totals_add_up_over_the_masks() {
        let t = transcript(CLEAN, CLEAN);
        let m = metrics(&t).unwrap();
        assert_eq!(m["cases"], 1904.0);
        assert_eq!(m["mappings_bounced"], 1920.0);
        assert_eq!(m["cases_failed"], 0.0);
        assert!(check(&t, true, false).is_ok());
    }

    #[test]
    fn a_failed_case_is_named_with_its_first_differing_byte() {
        let bad = "FAIL thread=1 page dir=from size=4097 offset=67: CPU side after unmap: byte 2048 is 0x5a, expected 0x5b\nthread 1: cases 476 failed 3 refused 0 bounced 480\ntotal: cases 952 failed 3 refused 0 bounced 960\n";
        let e = check(&transcript(CLEAN, bad), false, false).unwrap_err();
        assert_eq!(e.class, FailureClass::Correctness);
        assert_eq!(
            e.message,
            "dmacheck (min_align_mask 0xfff): 3 of 952 cases failed; first: FAIL thread=1 page dir=from size=4097 offset=67: CPU side after unmap: byte 2048 is 0x5a, expected 0x5b"
        );
    }

    #[test]
    fn refusals_fail_a_dynamic_kernel_only() {
        let full = "total: cases 952 failed 0 refused 12 bounced 940\n";
        let t = transcript(CLEAN, full);
        assert!(check(&t, false, false).is_ok());
        let e = check(&t, true, false).unwrap_err();
        assert!(e.message.contains("a dynamic kernel refused 12 of 952 mappings"), "{}", e.message);
        assert_eq!(metrics(&t).unwrap()["mappings_refused"], 12.0);
    }

    #[test]
    fn the_transient_probe_fails_a_refusal_and_must_reach_a_transient_pool() {
        let reached = "transient: reached, 1029 mappings (131080 KiB) held, the last at 0x000000007c3ff800 in a transient pool\nthread 0: cases 469 failed 0 refused 0 bounced 469\ntotal: cases 469 failed 0 refused 0 bounced 469\n";
        assert!(check(&transcript(CLEAN, reached), true, true).is_ok());
        // Recorded from 6.12-dynamic on sev-emulated, the upstream bug.
        let refused = "FAIL thread=0 single dir=to size=4096 offset=2048: refused though swiotlb can grow: every pool full (1029 held, 131080 KiB), a page-aligned mapping got a transient pool, this one none\nthread 0: cases 469 failed 1 refused 0 bounced 468\ntotal: cases 469 failed 1 refused 0 bounced 468\n";
        let e = check(&transcript(CLEAN, refused), true, true).unwrap_err();
        assert_eq!(e.class, FailureClass::Correctness);
        assert!(e.message.contains("offset=2048: refused though swiotlb can grow"), "{}", e.message);
        let never = "transient: not reached, 4096 mappings (1048576 KiB) held and no transient pool made\ntotal: cases 468 failed 0 refused 0 bounced 468\n";
        let e = check(&transcript(CLEAN, never), true, true).unwrap_err();
        assert_eq!(e.class, FailureClass::Workload);
        assert!(e.message.ends_with("judged nothing (no mapping got a transient pool): not reached, 4096 mappings (1048576 KiB) held and no transient pool made"), "{}", e.message);
        assert!(check(&transcript(CLEAN, CLEAN), true, true)
            .unwrap_err()
            .message
            .contains("printed no `transient:` line"));
        // A fixed kernel skips the probe; not asked for, nothing is required.
        let skipped =
            "transient: skipped, this device's swiotlb cannot grow\ntotal: cases 468 failed 0 refused 0 bounced 468\n";
        assert!(check(&transcript(CLEAN, skipped), false, true).is_ok());
        assert!(check(&transcript(CLEAN, CLEAN), true, false).is_ok());
    }

    #[test]
    fn a_driver_that_never_bound_or_stopped_short_is_a_workload_failure() {
        let t = Transcript::parse(
            "@@bounce begin dmacheck-bind\nno dmacheck driver in this kernel\n@@bounce end dmacheck-bind rc=1\n",
        );
        let e = metrics(&t).unwrap_err();
        assert_eq!(e.class, FailureClass::Workload);
        assert!(e.message.contains("no dmacheck driver in this kernel"), "{}", e.message);
        let t = transcript("thread 0: cases 3", CLEAN);
        assert!(metrics(&t).unwrap_err().message.contains("printed no total"));
    }
}
