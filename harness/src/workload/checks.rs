//! Correctness around every workload: the kernel log, the swiotlb counters,
//! and proof that the cell bounced at all.

use super::parse::{swiotlb_counters, swiotlb_pools};
use super::{GuestOutput, Workload};
use crate::failure::{Failure, FailureClass};
use crate::guest::channel::Transcript;
use regex::Regex;
use std::sync::OnceLock;

pub use crate::results::Finding;

/// (rule name, pattern). Kept narrow: a rule that fires on a healthy boot
/// teaches users to ignore it.
const RULES: &[(&str, &str)] = &[
    ("panic", r"Kernel panic - not syncing"),
    // The debug kernels' checkers (kernels/config/debug.config), named
    // before the generic BUG/WARNING rules that would also take some.
    ("atomic-sleep", r"BUG: sleeping function called from invalid context|BUG: scheduling while atomic"),
    (
        "lockdep",
        r"WARNING: (possible circular locking dependency|possible recursive locking|inconsistent lock state|possible irq lock inversion dependency|[A-Z]+-safe -> [A-Z]+-unsafe lock order detected|suspicious unlock balance|bad unlock balance|held lock freed|lock held when returning to user space|Nested lock was not taken)",
    ),
    ("rcu-usage", r"WARNING: suspicious RCU usage"),
    ("kmemleak", r"kmemleak: \d+ new suspected memory leaks?|unreferenced object 0x[0-9a-f]+"),
    // An error names the driver and device ("DMA-API: e1000 0000:00:03.0:
    // device driver frees ..."); the dma-debug's own notices do not.
    ("dma-api", r"DMA-API: (\S+ \S+: |exceeded \d+ overlapping mappings|.*out of memory)"),
    ("oops", r"\bOops\b|general protection fault|kernel BUG at|\bBUG: "),
    ("warn", r"WARNING: CPU: \d+ PID: \d+"),
    ("sanitizer", r"\b(KASAN|UBSAN|KFENCE): "),
    ("swiotlb-full", r"swiotlb buffer is full"),
    ("swiotlb-overflow", r"Buffer overflow detected|swiotlb addr .* overflow|DMA addr .* overflow"),
    ("swiotlb-pool", r"software IO TLB: Failed to allocate"),
    ("dma-map-failed", r"dma_map_single failed"),
    ("oom-kill", r"Out of memory: Killed process|invoked oom-killer"),
    ("io-error", r"I/O error, dev \S+|Buffer I/O error"),
    ("hung-task", r"blocked for more than \d+ seconds"),
    ("rcu-stall", r"rcu: INFO: \S+ (self-)?detected stall"),
    ("soft-lockup", r"soft lockup - CPU#\d+ stuck|hard LOCKUP"),
];

fn rules() -> &'static [(String, Regex)] {
    static R: OnceLock<Vec<(String, Regex)>> = OnceLock::new();
    R.get_or_init(|| RULES.iter().map(|(n, p)| (n.to_string(), Regex::new(p).unwrap())).collect())
}

/// Every kernel log line a rule matches, each with the workload's reason
/// when it declared the line as expected on this kind of kernel.
pub fn scan_log(lines: &[String], w: &Workload, dynamic: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    for line in lines {
        if let Some((rule, _)) = rules().iter().find(|(_, re)| re.is_match(line)) {
            let expected_because = w
                .expected_log
                .iter()
                .find(|e| e.on.matches(dynamic) && line.contains(&e.pattern))
                .map(|e| e.why.clone());
            out.push(Finding { rule: rule.clone(), line: line.trim().to_string(), expected_because });
        }
    }
    out
}

/// The kernel's counters are u64s printed as-is; an underflow shows as a
/// value near 2^64 (the bug fixed by a1255ccab8ec).
const UNDERFLOW: u64 = 1 << 62;

pub fn counter_problems(t: &Transcript) -> Vec<String> {
    let mut out = Vec::new();
    let (Some(boot), Some(end)) = (t.section("swiotlb-boot"), t.section("swiotlb-end")) else {
        return out;
    };
    // The pools the kernel lists must add up to what it counts: a pool
    // counted and not listed (or listed twice) is lost to, or shared by,
    // the slot search.
    let (boot_pools, end_pools) = (swiotlb_pools(&boot.lines), swiotlb_pools(&end.lines));
    let boot = swiotlb_counters(&boot.lines);
    let end = swiotlb_counters(&end.lines);
    for (when, pools, c) in [("at boot", boot_pools, &boot), ("at the end", end_pools, &end)] {
        if let (Some(pools), Some(n)) = (pools, c.get("io_tlb_nslabs")) {
            let listed: u64 = pools.iter().map(|p| p.slabs).sum();
            if listed != *n {
                out.push(format!("io_tlb_nslabs {n} {when}, but the {} pools listed hold {listed} slabs", pools.len()));
            }
        }
    }
    for (when, c) in [("at boot", &boot), ("at the end", &end)] {
        for (k, v) in c.iter() {
            if *v >= UNDERFLOW {
                out.push(format!("{k} = {v} {when}: the counter underflowed"));
            }
        }
        let (n, u, tr) =
            (c.get("io_tlb_nslabs"), c.get("io_tlb_used"), c.get("io_tlb_transient_nslabs").copied().unwrap_or(0));
        if let (Some(n), Some(u)) = (n, u) {
            if *u < UNDERFLOW && *u > n.saturating_add(tr) {
                out.push(format!("io_tlb_used {u} > io_tlb_nslabs {n} + transient {tr} {when}"));
            }
        }
    }
    // A dynamic kernel (it has transient pools) whose demand passed its
    // pool must have had the background worker add one: transient pools
    // only bridge until it does.
    if let (Some(n0), Some(n1), Some(hi), Some(_)) = (
        boot.get("io_tlb_nslabs"),
        end.get("io_tlb_nslabs"),
        end.get("io_tlb_used_hiwater"),
        end.get("io_tlb_transient_nslabs"),
    ) {
        if hi > n0 && n1 <= n0 && *hi < UNDERFLOW {
            out.push(format!(
                "the pool ran out ({hi} slabs in use at most, {n0} at boot) and no pool was added (io_tlb_nslabs still {n1}): the background worker did not grow it"
            ));
        }
    }
    if let (Some(b), Some(e)) = (boot.get("io_tlb_used"), end.get("io_tlb_used")) {
        if b != e && *e < UNDERFLOW {
            out.push(format!("io_tlb_used did not return to its idle value after the workload: {b} at boot, {e} at the end (a leaked mapping?)"));
        }
    }
    out
}

/// Judge a finished run. Returns the first failure and every log finding.
pub fn judge(out: &GuestOutput, w: &Workload) -> (Option<Failure>, Vec<Finding>) {
    let t = out.transcript;
    let findings = t.section("dmesg").map(|s| scan_log(&s.lines, w, out.dynamic)).unwrap_or_default();
    if t.section("dmesg").is_none() {
        return (Some(Failure::new(FailureClass::Workload, "guest reported no kernel log")), findings);
    }
    if let Some(f) = findings.iter().find(|f| f.expected_because.is_none()) {
        return (
            Some(Failure::new(FailureClass::Correctness, format!("kernel log ({}): {}", f.rule, f.line))),
            findings,
        );
    }
    if let Some(p) = counter_problems(t).into_iter().next() {
        return (Some(Failure::new(FailureClass::Correctness, format!("swiotlb counters: {p}"))), findings);
    }
    if w.must_bounce && !bounced(t) {
        return (
            Some(Failure::new(
                FailureClass::Correctness,
                format!(
                    "workload `{}` was meant to bounce, but nothing went through swiotlb (no swiotlb_bounced event, io_tlb_used_hiwater 0)",
                    w.name
                ),
            )),
            findings,
        );
    }
    (None, findings)
}

/// Did anything go through the pool? The tracepoint says so directly; the
/// high-water mark is the fallback on a kernel without it.
fn bounced(t: &Transcript) -> bool {
    if super::parse::common(t).get("bounce_events").is_some_and(|n| *n > 0.0) {
        return true;
    }
    t.section("swiotlb-end")
        .map(|s| swiotlb_counters(&s.lines))
        .and_then(|c| c.get("io_tlb_used_hiwater").copied())
        .unwrap_or(0)
        > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::workload::services::Report;
    use std::path::Path;

    fn workload() -> Workload {
        Workload::load(&crate::paths::project_root(), "growth").unwrap()
    }

    fn judge_on(t: &Transcript, w: &Workload, dynamic: bool) -> (Option<Failure>, Vec<Finding>) {
        let report = Report::default();
        super::judge(&GuestOutput { transcript: t, dir: Path::new("/nonexistent"), services: &report, dynamic }, w)
    }

    fn judge(t: &Transcript, w: &Workload) -> (Option<Failure>, Vec<Finding>) {
        judge_on(t, w, false)
    }

    fn transcript(dmesg: &str, boot: &str, end: &str) -> Transcript {
        Transcript::parse(&format!(
            "@@bounce begin swiotlb-boot\n{boot}@@bounce end swiotlb-boot rc=0\n@@bounce begin swiotlb-end\n{end}@@bounce end swiotlb-end rc=0\n@@bounce begin dmesg\n{dmesg}@@bounce end dmesg rc=0\n"
        ))
    }

    const OK: &str = "io_tlb_nslabs 128\nio_tlb_used 0\nio_tlb_used_hiwater 64\n";

    #[test]
    fn clean_run_passes() {
        let t = transcript("[    0.1] software IO TLB: area num 1.\n", OK, OK);
        assert_eq!(judge(&t, &workload()).0.map(|f| f.message), None);
    }

    #[test]
    fn warn_fails_but_declared_lines_do_not() {
        let t = transcript(
            "[ 3.0] map_benchmark 0000:00:03.0: swiotlb buffer is full (sz: 262144 bytes), total 128 (slots), used 128 (slots)\n[ 3.1] WARNING: CPU: 1 PID: 77 at kernel/dma/swiotlb.c:900 swiotlb_tbl_map_single+0x1/0x2\n",
            OK,
            OK,
        );
        let (f, findings) = judge(&t, &workload());
        let f = f.unwrap();
        assert_eq!(f.class, FailureClass::Correctness);
        assert!(f.message.starts_with("kernel log (warn): [ 3.1] WARNING: CPU: 1"), "{}", f.message);
        assert_eq!(findings.len(), 2);
        assert!(findings[0].expected_because.is_some());
    }

    /// The debug kernels' reports, in the kernel's own words (6.12), each
    /// named by its own rule rather than a generic BUG/WARNING.
    #[test]
    fn the_debug_kernels_reports_are_named() {
        for (line, rule) in [
            ("[ 5.1] BUG: sleeping function called from invalid context at mm/page_alloc.c:4466", "atomic-sleep"),
            ("[ 5.1] BUG: scheduling while atomic: kworker/0:1/21/0x00000002", "atomic-sleep"),
            ("[ 5.2] WARNING: possible circular locking dependency detected", "lockdep"),
            ("[ 5.2] WARNING: inconsistent lock state", "lockdep"),
            // Recorded: a GFP_KERNEL allocation under a softirq-safe lock
            // (defect-gfp), lockdep's word before might_sleep's.
            ("[    6.133557] WARNING: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected", "lockdep"),
            ("[ 5.3] WARNING: suspicious RCU usage", "rcu-usage"),
            ("[ 9.0] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)", "kmemleak"),
            // Recorded: the debug kernel's first catch was in dmacheck itself.
            (
                "[   11.124531] DMA-API: dmacheck 0000:00:02.0: mapping sg segment longer than device claims to support [len=87381] [max=65536]",
                "dma-api",
            ),
        ] {
            let t = transcript(&format!("{line}\n"), OK, OK);
            let f = judge(&t, &workload()).0.unwrap_or_else(|| panic!("{line} passed"));
            assert_eq!(f.class, FailureClass::Correctness);
            assert!(f.message.starts_with(&format!("kernel log ({rule}): ")), "{line}: {}", f.message);
        }
        // The checkers' own notices on a healthy boot are not findings.
        for line in [
            "[ 0.0] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
            "[ 1.1] DMA-API: preallocated 65536 debug entries",
            "[ 1.1] DMA-API: debugging enabled by kernel config",
            "[ 3.2] DMA-API: dma_debug_entry pool grown to 2 (200%)",
            "[ 0.9] kmemleak: Kernel memory leak detector initialized (mem pool available: 15788)",
        ] {
            let t = transcript(&format!("{line}\n"), OK, OK);
            assert_eq!(judge(&t, &workload()).0.map(|f| f.message), None, "{line}");
        }
    }

    #[test]
    fn a_dynamic_pool_that_ran_out_and_never_grew_fails() {
        let boot = "io_tlb_nslabs 512\nio_tlb_used 0\nio_tlb_transient_nslabs 0\n";
        let grown = "io_tlb_nslabs 1024\nio_tlb_used 0\nio_tlb_transient_nslabs 0\nio_tlb_used_hiwater 900\n";
        assert!(counter_problems(&transcript("", boot, grown)).is_empty());
        let stuck = "io_tlb_nslabs 512\nio_tlb_used 0\nio_tlb_transient_nslabs 0\nio_tlb_used_hiwater 900\n";
        let p = counter_problems(&transcript("", boot, stuck));
        assert_eq!(p, ["the pool ran out (900 slabs in use at most, 512 at boot) and no pool was added (io_tlb_nslabs still 512): the background worker did not grow it"]);
        // A fixed kernel (no transient counter) cannot grow: nothing to say.
        let fixed = "io_tlb_nslabs 512\nio_tlb_used 0\nio_tlb_used_hiwater 512\n";
        assert!(counter_problems(&transcript("", "io_tlb_nslabs 512\nio_tlb_used 0\n", fixed)).is_empty());
    }

    #[test]
    fn listed_pools_must_add_up_to_the_counted_slabs() {
        let boot = "pool slabs 512 areas 1 start 0x0000000080000000\nio_tlb_nslabs 512\nio_tlb_used 0\nio_tlb_transient_nslabs 0\n";
        let grown = "pool slabs 512 areas 1 start 0x80000000\npool slabs 512 areas 1 start 0x90000000\nio_tlb_nslabs 1024\nio_tlb_used 0\nio_tlb_transient_nslabs 0\nio_tlb_used_hiwater 900\n";
        assert!(counter_problems(&transcript("", boot, grown)).is_empty());
        let lost = grown.replace("io_tlb_nslabs 1024", "io_tlb_nslabs 1536");
        assert_eq!(
            counter_problems(&transcript("", boot, &lost)),
            ["io_tlb_nslabs 1536 at the end, but the 2 pools listed hold 1024 slabs"]
        );
        // A kernel that lists no pools (no harness patch) is not judged on them.
        assert!(counter_problems(&transcript(
            "",
            "io_tlb_nslabs 512\nio_tlb_used 0\n",
            "io_tlb_nslabs 512\nio_tlb_used 0\n"
        ))
        .is_empty());
    }

    #[test]
    fn underflowed_and_leaked_counters_fail() {
        let t = transcript("", OK, "io_tlb_nslabs 128\nio_tlb_used 18446744073709551615\nio_tlb_used_hiwater 1\n");
        assert!(judge(&t, &workload()).0.unwrap().message.contains("underflowed"));
        let t = transcript("", OK, "io_tlb_nslabs 128\nio_tlb_used 3\nio_tlb_used_hiwater 1\n");
        assert!(judge(&t, &workload()).0.unwrap().message.contains("did not return to its idle value"));
        let t = transcript(
            "",
            OK,
            "io_tlb_nslabs 128\nio_tlb_used 200\nio_tlb_transient_nslabs 64\nio_tlb_used_hiwater 1\n",
        );
        let msgs = counter_problems(&t);
        assert!(msgs.iter().any(|m| m.contains("> io_tlb_nslabs 128 + transient 64")), "{msgs:?}");
    }

    /// Lines kept from real guests of this harness (6.12, TCG), as the
    /// scanner's fixtures.
    const REAL_FULL: &str = "[    9.843071] map_benchmark 0000:00:02.0: swiotlb buffer is full (sz: 262144 bytes), total 128 (slots), used 128 (slots)\n";
    const REAL_MAP_FAILED: &str = "[    9.844212] map_benchmark 0000:00:02.0: dma_map_single failed\n";

    #[test]
    fn a_full_pool_is_expected_of_a_fixed_kernel_only() {
        let t = transcript(&format!("{REAL_FULL}{REAL_MAP_FAILED}"), OK, OK);
        assert_eq!(judge_on(&t, &workload(), false).0.map(|f| f.message), None);
        let f = judge_on(&t, &workload(), true).0.unwrap();
        assert_eq!(f.class, FailureClass::Correctness);
        assert!(f.message.starts_with("kernel log (swiotlb-full): [    9.843071] map_benchmark"), "{}", f.message);
    }

    fn fixture(name: &str) -> Vec<String> {
        let p = crate::paths::project_root().join("harness/src/workload/fixtures").join(name);
        std::fs::read_to_string(p).unwrap().lines().map(str::to_string).collect()
    }

    fn load(name: &str) -> Workload {
        Workload::load(&crate::paths::project_root(), name).unwrap()
    }

    /// Whole kernel logs of real guests of this harness (6.12, TCG).
    #[test]
    fn real_logs_healthy_or_with_declared_lines_have_no_unexpected_finding() {
        for (file, workload, dynamic) in [
            ("dmesg-x86-storage-clean.txt", "storage", true),
            ("dmesg-arm64-network-clean.txt", "network", true),
            ("dmesg-x86-oom-probe.txt", "memory", true),
            ("dmesg-x86-fixed-pool-full.txt", "growth", false),
        ] {
            let found = scan_log(&fixture(file), &load(workload), dynamic);
            let unexpected: Vec<&Finding> = found.iter().filter(|f| f.expected_because.is_none()).collect();
            assert!(unexpected.is_empty(), "{file}: {unexpected:?}");
        }
        // The OOM probe's kills are found, and declared.
        let oom = scan_log(&fixture("dmesg-x86-oom-probe.txt"), &load("memory"), true);
        assert!(oom.iter().filter(|f| f.rule == "oom-kill").count() >= 2, "{oom:?}");
        // Another workload has not declared them: there they fail the cell.
        let oom = scan_log(&fixture("dmesg-x86-oom-probe.txt"), &load("storage"), true);
        assert!(oom.iter().any(|f| f.rule == "oom-kill" && f.expected_because.is_none()));
        // A full pool is what a fixed kernel does; a dynamic one must grow.
        let full = scan_log(&fixture("dmesg-x86-fixed-pool-full.txt"), &load("growth"), true);
        assert!(full.iter().any(|f| f.rule == "swiotlb-full" && f.expected_because.is_none()));
    }

    #[test]
    fn io_errors_and_oopses_are_findings() {
        let w = Workload::load(&crate::paths::project_root(), "storage").unwrap();
        for (line, rule) in [
            (
                "[   12.001] I/O error, dev sda, sector 2048 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 0",
                "io-error",
            ),
            ("[   13.5] BUG: kernel NULL pointer dereference, address: 0000000000000008", "oops"),
            (
                "[   14.2] swiotlb_tbl_map_single: Buffer overflow detected (1024 > 512), probably bad device",
                "swiotlb-overflow",
            ),
            ("[   15.0] UBSAN: array-index-out-of-bounds in kernel/dma/swiotlb.c:1234:5", "sanitizer"),
        ] {
            let f = scan_log(&[line.to_string()], &w, true);
            assert_eq!(f.len(), 1, "{line}");
            assert_eq!(f[0].rule, rule, "{line}");
            assert!(f[0].expected_because.is_none());
        }
    }

    #[test]
    fn a_cell_that_did_not_bounce_fails() {
        let t = transcript("", OK, "io_tlb_nslabs 128\nio_tlb_used 0\nio_tlb_used_hiwater 0\n");
        assert!(judge(&t, &workload()).0.unwrap().message.contains("meant to bounce"));
    }
}
