//! Everything a guest, a list or a user hands the harness is untrusted:
//! property tests feed every parser of such input generated text (built
//! from the tokens the real formats use, so the cases reach past the first
//! line) and require no panic, and numbers a run can store. A fixed budget
//! of cases runs in CI; PROPTEST_CASES raises it.

use bounce::guest::channel::Transcript;
use bounce::workload::{services::Report, GuestOutput, Workload};
use proptest::prelude::*;
use std::path::Path;

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Pieces of what guests really print, in any order, with junk between.
fn guest_text() -> impl Strategy<Value = String> {
    let sections = prop::sample::select(vec![
        "meminfo-boot",
        "meminfo-end",
        "swiotlb-boot",
        "swiotlb-end",
        "dmesg",
        "bounced",
        "oom",
        "cmdline",
        "dmabench",
        "dmabench-sweep",
        "growth",
        "growth-before",
        "growth-after",
        "growth-transient",
        "storage-disk",
        "fio-seq-4k",
        "fio-seq-4k-json",
        "fio-rand-1m-json",
        "iperf-down",
        "iperf-up",
        "stream-down",
        "stream-up",
        "drm",
    ]);
    let numbers = prop::sample::select(vec![
        "0",
        "1",
        "-1",
        "nan",
        "inf",
        "-inf",
        "1e999",
        "18446744073709551615",
        "9223372036854775808",
        "3.5",
        "",
        "x",
    ]);
    let piece = prop_oneof![
        (sections.clone(), numbers.clone()).prop_map(|(s, t)| format!("@@bounce begin {s} t={t}\n")),
        (sections, numbers.clone(), numbers.clone()).prop_map(|(s, rc, t)| format!("@@bounce end {s} rc={rc} t={t}\n")),
        numbers.clone().prop_map(|rc| format!("@@bounce done rc={rc}\n")),
        Just("@@bounce ready storage\n".to_string()),
        Just("@@bounce request screendump final\n".to_string()),
        (prop::sample::select(vec!["io_tlb_nslabs", "io_tlb_used", "io_tlb_used_hiwater", "io_tlb_transient_nslabs"]), numbers.clone())
            .prop_map(|(k, v)| format!("{k} {v}\n")),
        (prop::sample::select(vec!["MemTotal:", "MemAvailable:", "headroom_mib", "device virtio0", "lost", "peak", "rises"]), numbers.clone())
            .prop_map(|(k, v)| format!("{k} {v} kB\n")),
        (prop::sample::select(vec!["average map latency(us)", "standard deviation map latency", "average unmap latency(us)", "mode:", "frames:", "seconds:", "final:", "prime:"]), numbers.clone())
            .prop_map(|(k, v)| format!("{k}:{v}\n")),
        numbers.clone().prop_map(|v| format!("{{\"jobs\":[{{\"jobname\":\"seq-4k\",\"error\":0,\"read\":{{\"bw\":{v},\"iops\":{v},\"clat_ns\":{{\"percentile\":{{\"50.000000\":{v}}}}}}},\"write\":{{\"bw\":{v}}}}}]}}\n")),
        numbers.prop_map(|v| format!("{{\"end\":{{\"sum_received\":{{\"bits_per_second\":{v}}},\"sum_sent\":{{\"retransmits\":{v}}}}}}}\n")),
        Just("[    1.0] swiotlb buffer is full (sz: 1048576 bytes), total 512 (slots), used 505 (slots)\n".to_string()),
        Just("[    2.0] rcu: INFO: rcu_sched self-detected stall on CPU\n".to_string()),
        Just("{\n".to_string()),
        "\\PC{0,40}\n",
    ];
    prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every shipped workload judges any transcript without a panic, and
    /// keeps only finite numbers (JSON has no NaN: a run must read back).
    #[test]
    fn workloads_judge_any_guest_output(text in guest_text(), dynamic in any::<bool>()) {
        let t = Transcript::parse(&text);
        let dir = tempfile::tempdir().unwrap();
        let report = Report::default();
        for name in bounce::yaml::names(&root().join("workloads")) {
            let w = Workload::load(&root(), &name).unwrap();
            let ev = w.evaluate(&GuestOutput { transcript: &t, dir: dir.path(), services: &report, dynamic });
            for (k, v) in &ev.metrics {
                prop_assert!(v.is_finite(), "{name}: {k} = {v}");
            }
        }
    }

    #[test]
    fn the_result_channel_and_the_console_split_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = Transcript::parse(&text);
        let mut lines = bounce::guest::console::Lines::default();
        lines.feed(&bytes, |l| { let _ = bounce::guest::console::stall(l); });
        let _ = bounce::guest::console::Console::of(&text).diagnosis();
    }

    #[test]
    fn screendumps_of_any_bytes(mut bytes in prop::collection::vec(any::<u8>(), 0..400), w in 0u32..5000, h in 0u32..5000, max in 0u32..70000) {
        let _ = bounce::workload::drm::read_ppm(&bytes);
        let mut ppm = format!("P6\n{w} {h}\n{max}\n").into_bytes();
        ppm.append(&mut bytes);
        let _ = bounce::workload::drm::read_ppm(&ppm);
    }

    /// A matrix file with any one byte changed loads or is refused with an
    /// input error (exit 2), never a panic.
    #[test]
    fn matrix_files_with_a_byte_changed(at in any::<prop::sample::Index>(), b in any::<u8>()) {
        let good = std::fs::read(root().join("nightly.yaml")).unwrap();
        let mut text = good.clone();
        let i = at.index(text.len());
        text[i] = b;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.yaml");
        std::fs::write(&f, &text).unwrap();
        if let Err(e) = bounce::matrix::Matrix::load(&root(), &f) {
            prop_assert_eq!(e.class, bounce::failure::FailureClass::Input, "{}", e.message);
        }
    }

}

proptest! {
    // Fewer cases: each runs git mailsplit twice.
    #![proptest_config(ProptestConfig { cases: 100, failure_persistence: None, ..ProptestConfig::default() })]

    /// Patch series from a list: any text as an mbox, or a real series with
    /// lines dropped, loads or is refused, never a panic.
    #[test]
    fn patch_series_of_any_text(junk in "\\PC{0,300}", drop in prop::collection::vec(any::<prop::sample::Index>(), 0..4)) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("junk.mbox");
        std::fs::write(&f, &junk).unwrap();
        let _ = bounce::kernel::series::Series::load(&bounce::kernel::series::SeriesSource::Path(f.clone()));
        let real = std::fs::read_to_string(root().join("kernels/patches/defect-slow-series.mbox")).unwrap();
        let mut lines: Vec<&str> = real.lines().collect();
        for d in &drop {
            if !lines.is_empty() {
                let i = d.index(lines.len());
                lines.remove(i);
            }
        }
        std::fs::write(&f, lines.join("\n")).unwrap();
        let _ = bounce::kernel::series::Series::load(&bounce::kernel::series::SeriesSource::Path(f));
    }
}
