//! The guest matrix of the seed's three situations, for real: emulated
//! SEV, arm64 with RAM above 4 GiB, the arm64 "embedded device", and the
//! x86 32-bit-DMA guest, each with the fixed and the dynamic kernel.

mod common;
use common::*;

const SHORT_DMABENCH: &str = "dmabench: {sweep_threads: [1], sweep_granules: [1], sweep_dirs: [to]}";

#[test]
fn every_profile_boots_both_kernels_and_runs_memory_and_dmabench() {
    let _lock = heavy_lock();
    let r = run_matrix(&format!(
        r#"
repetitions: 1
kernels: [6.12-fixed, 6.12-dynamic]
profiles: [sev-emulated, arm64, arm64-embedded]
workloads: [memory, dmabench]
params:
  memory: {{oom_probe: 0}}
  {SHORT_DMABENCH}
swiotlb:
  default: ""
compare:
  - {{axis: kernel, base: 6.12-fixed, new: 6.12-dynamic}}
"#
    ));
    assert_eq!(r.code, Some(0), "{}\n{}", r.out, r.err);
    assert_eq!(r.cells.len(), 12);
    r.assert_all_passed();
    for k in ["6.12-fixed", "6.12-dynamic"] {
        // SEV sizing (6 % of 2 GiB: 62976 slabs, which the kernel rounds up
        // to a power of two over its areas) with everything forced through.
        let sev = format!("{k}.sev-emulated.memory.default");
        assert_eq!(r.value(&sev, "memory.swiotlb_nslabs"), 65536.0);
        assert!(r.cell(&sev).emulated);
        assert!(r.guest_file(&sev, "console.log").contains("swiotlb=62976,force"));
        // arm64 with RAM above 4 GiB maps the full pool (ZONE_DMA32 kept).
        assert_eq!(r.value(&format!("{k}.arm64.memory.default"), "memory.swiotlb_nslabs"), 32768.0);
        // The embedded model's fixed 32 MiB pool (why not 64: see the profile).
        assert_eq!(r.value(&format!("{k}.arm64-embedded.memory.default"), "memory.swiotlb_nslabs"), 16384.0);
        for p in ["sev-emulated", "arm64", "arm64-embedded"] {
            let id = format!("{k}.{p}.dmabench.default");
            assert!(r.value(&id, "dmabench.used_hiwater_slabs") > 0.0, "{id} did not bounce");
            assert_eq!(r.cell(&id).swiotlb_dynamic, k == "6.12-dynamic");
        }
    }
    assert!(r.out.contains("sev-emulated [emulated]"), "{}", r.out);
    assert!(r.out.contains("profile arm64-embedded: MODELLED"), "{}", r.out);
}

/// The seed's embedded-device scenario: a large fixed pool against a
/// 1 MiB one on a 512 MiB arm64 guest, in MemTotal and in OOM headroom.
#[test]
fn the_embedded_profile_shows_the_memory_a_small_pool_gives_back() {
    let _lock = heavy_lock();
    let r = run_matrix(
        r#"
repetitions: 1
kernels: [6.12-dynamic]
profiles: [arm64-embedded]
workloads: [memory]
params:
  memory: {oom_step_mib: 4}
swiotlb:
  default: ""
  1mib: "swiotlb=512,1"
compare:
  - {axis: swiotlb, base: default, new: 1mib}
"#,
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.out, r.err);
    r.assert_all_passed();
    let v = |s: &str, m: &str| r.value(&format!("6.12-dynamic.arm64-embedded.memory.{s}"), &format!("memory.{m}"));
    // 32 MiB - 1 MiB goes back to the system.
    let total_gain_mib = (v("1mib", "mem_total_kib") - v("default", "mem_total_kib")) / 1024.0;
    assert!((29.0..=33.0).contains(&total_gain_mib), "MemTotal gain {total_gain_mib} MiB");
    // The bisection resolves to 4 MiB a side. The gain is at least most of
    // the 31 MiB, and measured larger: 4 boots a side gave a median of
    // +40 MiB (the OOM kill came at 42 MiB more anon RSS), so the ceiling
    // only catches nonsense, not that surplus.
    let headroom_gain = v("1mib", "oom_headroom_mib") - v("default", "oom_headroom_mib");
    assert!((21.0..=56.0).contains(&headroom_gain), "OOM headroom gain {headroom_gain} MiB");
    assert!(r.out.contains("oom_headroom_mib"), "{}", r.out);
}

/// The devices chosen for their 32-bit masks really bounce: I/O through
/// them lands in swiotlb, and what went through came back intact.
#[test]
fn storage_and_network_bounce_through_32_bit_devices_and_verify() {
    let _lock = heavy_lock();
    let r = run_matrix(
        r#"
repetitions: 1
kernels: [6.12-dynamic]
profiles: [dma32, arm64]
workloads: [storage, network]
params:
  storage: {size_mib: 4, jobs: [seq-4k, rand-1m]}
  network: {seconds: 1, stream_mib: 4}
swiotlb:
  default: ""
"#,
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.out, r.err);
    r.assert_all_passed();
    for p in ["dma32", "arm64"] {
        let s = format!("6.12-dynamic.{p}.storage.default");
        // fio wrote 2 x 4 MiB and read it back: at least that went through.
        assert!(r.value(&s, "storage.bounced_bytes") >= 16.0 * 1048576.0, "{s}");
        assert!(r.value(&s, "storage.write_bw.seq-4k") > 0.0);
        assert!(r.value(&s, "storage.read_clat_p99_us.rand-1m") > 0.0);
        // The bouncing device is the disk controller (the only PCI device
        // that maps anything here besides the NIC, absent in this cell).
        let channel = r.guest_file(&s, "channel.log");
        let bounced = channel.split("@@bounce begin bounced").nth(1).unwrap_or_default();
        assert!(bounced.lines().nth(1).is_some_and(|l| l.starts_with("device 0000:")), "{channel}");
        let n = format!("6.12-dynamic.{p}.network.default");
        assert!(r.value(&n, "network.bounced_bytes") >= 8.0 * 1048576.0, "{n}");
        for m in ["iperf_up_mbps", "iperf_down_mbps", "stream_up_mbps", "stream_down_mbps"] {
            assert!(r.value(&n, &format!("network.{m}")) > 0.0, "{n} {m}");
        }
        let services = r.guest_file(&n, "services.json");
        assert!(services.contains("\"said\": \"ok 4194304\""), "{services}");
    }
}

/// virtio-gpu under forced bouncing: frames, PRIME, and the last frame
/// checked pixel for pixel; a fixed 1 MiB pool cannot map the framebuffer
/// (declared, so the run stays green) while the dynamic pool grows.
#[test]
fn drm_frames_survive_the_bounce_and_a_small_fixed_pool_is_an_expected_failure() {
    let _lock = heavy_lock();
    let r = run_matrix(
        r#"
repetitions: 1
kernels: [6.12-fixed, 6.12-dynamic]
profiles: [sev-emulated]
workloads: [drm]
params:
  drm: {frames: 5}
swiotlb:
  default: ""
  1mib: "swiotlb=512,1"
expect_fail:
  - {cells: "6.12-fixed.*.drm.1mib", class: workload, why: "a framebuffer larger than the fixed pool"}
"#,
    );
    assert_eq!(r.code, Some(0), "{}\n{}", r.out, r.err);
    for id in [
        "6.12-fixed.sev-emulated.drm.default",
        "6.12-dynamic.sev-emulated.drm.default",
        "6.12-dynamic.sev-emulated.drm.1mib",
    ] {
        assert_eq!(r.cell(id).status(), bounce::results::Status::Pass, "{id}: {:?}", r.cell(id).worst_failure());
        assert!(r.value(id, "drm.fps") > 0.0);
        // The framebuffer (4 MB at 1280x800) was mapped through the pool.
        assert!(r.value(id, "drm.bounced_bytes") >= 4_000_000.0, "{id}");
        // frames 5: dumps of frames 1 and 3 (a third, two thirds) and the final 6.
        for frame in [1, 3, 6] {
            let ppm = std::fs::read(r.run_dir.join(&r.cell(id).reps[0].guest_dir).join(format!("frame-{frame}.ppm")))
                .unwrap();
            assert!(ppm.starts_with(b"P6\n"), "{id}");
        }
    }
    assert!(r.value("6.12-dynamic.sev-emulated.drm.1mib", "drm.pool_growth_slabs") > 0.0);
    let fixed = r.cell("6.12-fixed.sev-emulated.drm.1mib");
    assert!(fixed.failed_as_expected(), "{:?}", fixed.worst_failure());
    assert!(r.out.contains("XFAIL 6.12-fixed.sev-emulated.drm.1mib [workload]: workload `drm` exited with rc=1: bounce-drm: CREATE_DUMB"), "{}", r.out);
}

/// `bounce boot` hands the guest's console to the terminal: a shell there
/// runs what it is given and the guest powers off when it exits.
#[test]
fn bounce_boot_gives_a_shell_in_the_guest() {
    use std::io::{Read, Write};
    let _lock = heavy_lock();
    build_x86_64_first("6.12-dynamic", None);
    let mut child = bounce()
        .args(["boot", "6.12-dynamic", "--profile", "dma32", "--accel", "tcg"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Collect the console as it comes; type once the shell's prompt shows.
    let console = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = console.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !console.lock().unwrap().contains("/ # ") {
        assert!(std::time::Instant::now() < deadline, "no shell prompt:\n{}", console.lock().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"echo hello-from-$(uname -m); cat /sys/kernel/debug/swiotlb/io_tlb_nslabs; exit\n").unwrap();
    let o = child.wait_with_output().unwrap();
    reader.join().unwrap();
    let out = console.lock().unwrap().clone();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(out.contains("hello-from-x86_64"), "{out}\n{err}");
    assert!(out.contains("32768"), "{out}");
    assert!(err.contains("booting 6.12-dynamic on dma32"), "{err}");
}
