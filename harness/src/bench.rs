//! Measurements of the harness itself, reported as ratios measured in one
//! run (never asserted in tests: timings belong here).
//!
//! `bounce bench boot`: one cell's boot through the harness against the
//! same guest's bare QEMU command (its reproducer), in alternating pairs:
//! what the harness adds to a boot. `bounce bench matrix RUN`: a run's
//! wall time against the best its boots allow (each boot's own time, side
//! by side where they may share the host). `bounce bench vng`: the time to
//! run a trivial command in a fresh guest, bounce against virtme-ng, on
//! one kernel.
//!
//! `bounce bench build`: for each architecture, the cold build time of a
//! variant (measured when its cache entry was built from an empty build
//! directory), the time to find it again when nothing changed (the "no-op
//! rebuild"), and the time to rebuild after a one-line patch to
//! kernel/dma/swiotlb.c, which must reuse the warm build directory.

use crate::failure::{Classify, Failure, Result};
use crate::host::accel::{Clock, MachineRequest};
use crate::host::cmd;
use crate::kernel::series::{PatchableTree, Series, SeriesSource};
use crate::kernel::variant::Variant;
use crate::kernel::{self, cache};
use crate::matrix::{run, Matrix};
use crate::results::store::RunDir;
use crate::results::{CellKey, Status};
use comfy_table::{presets, Table};
use std::path::Path;
use std::time::Instant;

const NOOP_RUNS: usize = 5;

pub async fn build(root: &Path, cache_dir: &Path, variant: &str, arches: &[String]) -> Result<i32> {
    let v = Variant::load(root, variant)?;
    let arches = if arches.is_empty() { v.arches.clone() } else { arches.to_vec() };
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "arch",
        "cold build",
        "objects",
        "no-op (median of 5)",
        "one-line patch",
        "patch / cold",
        "targets",
    ]);
    for arch in &arches {
        let base = kernel::ensure(root, cache_dir, &v, arch).await?;
        let cold = if base.meta.incremental {
            return Err(Failure::input(format!(
                "{variant} ({arch}) was built incrementally ({}): its time is no cold build; run `bounce cache gc --older-than-days 0` and measure again",
                base.dir.display()
            )));
        } else {
            base.meta.duration_s
        };
        let mut noop = Vec::new();
        for _ in 0..NOOP_RUNS {
            let t0 = Instant::now();
            kernel::ensure(root, cache_dir, &v, arch).await?;
            noop.push(t0.elapsed().as_secs_f64());
        }
        let noop = crate::stats::median(&noop).unwrap_or(f64::NAN);

        let tree = crate::kernel::source::prepare(cache_dir, &v.source)?;
        let patch = one_line_patch(&PatchableTree::new(&tree.path).pristine("kernel/dma/swiotlb.c")?)?;
        let dir = tempfile::tempdir().infra(|| "cannot create a temporary directory".into())?;
        let file = dir.path().join("bench-one-line.patch");
        std::fs::write(&file, patch).infra(|| format!("cannot write {}", file.display()))?;
        let series = Series::load(&SeriesSource::Path(file))?;
        let t0 = Instant::now();
        let patched = kernel::ensure(root, cache_dir, &v.with_series(&series, None), arch).await?;
        let patch_s = t0.elapsed().as_secs_f64();
        // A nonce makes every bench patch new: its entry is of no further use.
        let _ = std::fs::remove_dir_all(cache::entry_dir(cache_dir, &patched.meta.key));
        let ratio = patch_s / cold;
        t.add_row(vec![
            arch.clone(),
            format!("{cold:.0} s"),
            base.meta.objects.to_string(),
            format!("{noop:.2} s"),
            format!("{patch_s:.0} s{}", if patched.meta.incremental { "" } else { " (NOT incremental)" }),
            format!("{:.1} %", ratio * 100.0),
            format!(
                "no-op < 2 s: {}; patch < 25 % of cold: {}",
                if noop < 2.0 { "met" } else { "MISSED" },
                if ratio < 0.25 { "met" } else { "MISSED" }
            ),
        ]);
    }
    crate::outln!(
        "kernel builds of {variant} on this machine ({} cores)\n{t}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    Ok(0)
}

/// `bounce bench boot`: `pairs` alternating pairs of one cell's boot, by
/// the harness (services, QMP, channels, judging) and by its reproducer
/// command alone (the same QEMU arguments, console and results to files).
pub async fn boot(
    root: &Path,
    cache: &Path,
    matrix: &Path,
    cell: Option<&str>,
    pairs: usize,
    machine: MachineRequest,
) -> Result<i32> {
    let m = Matrix::load(root, matrix)?;
    let (cells, _) = m.expand();
    let key: CellKey = match cell {
        Some(id) => cells.iter().find(|c| c.id() == id).cloned().ok_or_else(|| {
            Failure::input(format!("{}: no runnable cell `{id}` (see `bounce matrix --dry-run`)", matrix.display()))
        })?,
        // A storage boot: disk, tools and the harness's parsing, no host peer.
        None => {
            let plain = |c: &&CellKey| m.workloads[&c.workload].services.is_empty() && m.expected_failure(c).is_none();
            cells
                .iter()
                .filter(plain)
                .find(|c| c.workload == "storage" && c.swiotlb == "default")
                .or_else(|| cells.iter().find(plain))
        }
        .cloned()
        .ok_or_else(|| Failure::input(format!("{}: no cell without host services", matrix.display())))?,
    };
    if !m.workloads[&key.workload].services.is_empty() {
        return Err(Failure::input(format!(
            "{}: its workload needs host services, which a bare QEMU command does not start: pick another cell",
            key.id()
        )));
    }
    let prepared = run::prepare(root, cache, &m, std::slice::from_ref(&key)).await?;
    let accels = run::choose_accels(machine, cache, &prepared).await?;
    let accel = run::cell_accel(&m, &accels, &key);
    let tmp = tempfile::tempdir().infra(|| "cannot create a temporary directory".into())?;
    let rundir = RunDir::create(tmp.path(), "bench")?;
    let (mut harness, mut bare) = (Vec::new(), Vec::new());
    for i in 0..pairs.max(1) {
        // Alternate who goes first: neither side always meets a cold or a
        // warm host.
        for harness_side in [i % 2 == 0, i % 2 == 1] {
            let t0 = Instant::now();
            if harness_side {
                let (rep, _) = run::run_one(&m, &prepared, &accel, &rundir, &key, i as u32, "bench").await?;
                if rep.status != Status::Pass {
                    return Err(Failure::infra(format!("{} failed under the harness: {:?}", key.id(), rep.failure)));
                }
                harness.push(t0.elapsed().as_secs_f64());
            } else {
                let dir = tmp.path().join(format!("bare-{i}"));
                std::fs::create_dir_all(&dir).infra(|| format!("cannot create {}", dir.display()))?;
                let spec = run::guest_spec(&m, &prepared, &accel, &key, &dir, &Default::default())?;
                let results = dir.join("results.txt");
                let console = std::fs::File::create(dir.join("console.log")).infra(|| "console.log".into())?;
                let mut qemu = tokio::process::Command::new(&spec.qemu);
                crate::host::cmd::dies_with_harness(&mut qemu);
                let status = qemu
                    .args(spec.terminal_args(&results.display().to_string()))
                    .stdin(std::process::Stdio::null())
                    .stdout(console.try_clone().infra(|| "console.log".into())?)
                    .stderr(console)
                    .process_group(0)
                    .status()
                    .await
                    .infra(|| format!("cannot start {}", spec.qemu))?;
                let said = std::fs::read_to_string(&results).unwrap_or_default();
                if !status.success() || !said.contains("@@bounce done rc=0") {
                    return Err(Failure::infra(format!(
                        "the bare command of {} did not finish its workload ({status}; see {})",
                        key.id(),
                        dir.display()
                    )));
                }
                bare.push(t0.elapsed().as_secs_f64());
            }
        }
    }
    let ratios: Vec<f64> = harness.iter().zip(&bare).map(|(h, b)| h / b).collect();
    let med = |v: &[f64]| crate::stats::median(v).unwrap_or(f64::NAN);
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    t.set_header(vec!["pair", "harness (s)", "bare QEMU (s)", "ratio"]);
    for (i, ((h, b), r)) in harness.iter().zip(&bare).zip(&ratios).enumerate() {
        t.add_row(vec![(i + 1).to_string(), format!("{h:.2}"), format!("{b:.2}"), format!("{r:.3}")]);
    }
    let (lo, hi) = ratios.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| (a.min(*r), b.max(*r)));
    let r = med(&ratios);
    crate::outln!(
        "one boot of {} ({}), harness vs its bare QEMU command\n{t}\nmedian ratio {r:.3} (range {lo:.3}-{hi:.3}): target <= 1.03 {}",
        key.id(),
        accel.short(),
        if r <= 1.03 { "met" } else { "MISSED" }
    );
    Ok(0)
}

/// `bounce bench matrix RUN`: the run's wall time against the best its
/// boots allow: getting ready, then every boot that must run alone one
/// after another, the rest `jobs` at a time.
pub fn matrix(run: &Path) -> Result<i32> {
    let dir = RunDir::open(run)?;
    let plan = dir.read_plan()?;
    let timing = plan.timing.ok_or_else(|| {
        Failure::input(format!(
            "{}: its plan has no timing (a run from before it was kept, or one still running)",
            run.display()
        ))
    })?;
    let (mut alone, mut shared, mut boots) = (0.0, 0.0, 0usize);
    for c in dir.read_cells()? {
        for r in &c.reps {
            boots += 1;
            if c.accel.clock == Clock::Host {
                alone += r.total_s;
            } else {
                shared += r.total_s;
            }
        }
    }
    let best = alone + shared / timing.jobs.max(1) as f64;
    let wall = timing.prepare_s + timing.boots_s;
    let ratio = wall / (timing.prepare_s + best);
    crate::outln!(
        "{}: {boots} boots, {jobs} at a time on the instruction clock\n  wall {wall:.0} s = getting ready {:.1} s + booting {:.0} s\n  boots' own times: {shared:.0} s side by side, {alone:.0} s alone: best {best:.0} s\n  wall / (ready + best) = {ratio:.3}: target <= 1.05 {}\n  (sum of every boot's time {:.0} s: {:.2} boots ran at once on average)",
        run.display(),
        timing.prepare_s,
        timing.boots_s,
        if ratio <= 1.05 { "met" } else { "MISSED" },
        alone + shared,
        (alone + shared) / timing.boots_s.max(1e-9),
        jobs = timing.jobs,
    );
    Ok(0)
}

/// virtme-ng, pinned: the version this comparison was made with.
const VNG: &str = "virtme-ng==1.42";

/// `vng` from a venv in the cache, made (with pip, from PyPI) once.
fn vng(cache: &Path) -> Result<std::path::PathBuf> {
    use crate::host::tools::{Probe, Requirement};
    crate::host::tools::ensure(&[
        Requirement::new(Probe::Bin("python3".into()), "python3", "virtme-ng is a Python program"),
        Requirement::new(Probe::Package("python3-venv".into()), "python3-venv", "a venv for virtme-ng from PyPI"),
        // vng's guest runs the host's own userspace; without udev there are
        // no /dev/virtio-ports links, its command I/O falls back to the
        // console and `vng --exec true` exits 255 though `true` ran.
        Requirement::new(Probe::File("/lib/systemd/systemd-udevd".into()), "udev", "virtme-ng's guest command I/O"),
    ])?;
    let venv = cache.join("venvs/virtme-ng");
    let bin = venv.join("bin/vng");
    let ready = venv.join(".installed");
    if !ready.exists() {
        crate::ui::line(format!("installing {VNG} into {}", venv.display()));
        cmd::run(std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        cmd::run(std::process::Command::new(venv.join("bin/pip")).args(["install", "-q", VNG]))?;
        std::fs::write(&ready, VNG).infra(|| format!("cannot write {}", ready.display()))?;
    }
    Ok(bin)
}

/// `bounce bench vng`: boot-to-result of a trivial guest, alternating
/// pairs on one kernel (6.12-vng: the guest config plus what virtme-ng
/// needs), each tool as a user runs it: bounce's guest reports through its
/// /init and powers off (the probe workload, on the accelerator and clock
/// a matrix would use); `vng --run IMAGE --exec true` boots the host's own
/// root over 9p and runs `true` (TCG: `--disable-kvm` where KVM cannot run).
pub async fn vng_ratio(root: &Path, cache: &Path, pairs: usize, machine: MachineRequest) -> Result<i32> {
    let v = Variant::load(root, "6.12-vng")?;
    let k = kernel::ensure(root, cache, &v, "x86_64").await?;
    let initrd = crate::rootfs::ensure(root, cache, &k)?;
    let accel = crate::guest::probe::accel_for(machine, cache, &k, &initrd).await?;
    let vng = vng(cache)?;
    let profile = crate::guest::profile::Profile::bare("boot-to-result", &k.arch, 1024, 2);
    let spec = crate::guest::qemu::GuestSpec::new(
        &k,
        initrd,
        &profile,
        &accel,
        "",
        &["bounce.workload=probe".into()],
        Default::default(),
    );
    let tmp = tempfile::tempdir().infra(|| "cannot create a temporary directory".into())?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..pairs.max(1) {
        for bounce_side in [i % 2 == 0, i % 2 == 1] {
            let t0 = Instant::now();
            if bounce_side {
                let t = crate::guest::machine::Timeouts {
                    boot: std::time::Duration::from_secs(240),
                    run: std::time::Duration::from_secs(60),
                };
                let g = crate::guest::machine::run(&spec, &tmp.path().join(format!("bounce-{i}")), t, &|_| {}).await?;
                if let Some(f) = g.failure {
                    return Err(Failure::infra(format!("the bounce guest failed: {}", f.message)));
                }
                ours.push(t0.elapsed().as_secs_f64());
            } else {
                let mut c = tokio::process::Command::new(&vng);
                c.args(["--run"]).arg(k.image()).args(["--exec", "true"]);
                if accel.accel == crate::host::accel::Accel::Tcg {
                    c.arg("--disable-kvm");
                }
                // vng runs its helpers (virtme-run) from its own bin directory.
                let path = format!("{}:{}", vng.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
                let o = c
                    .env("PATH", path)
                    .current_dir(tmp.path())
                    .stdin(std::process::Stdio::null())
                    .output()
                    .await
                    .infra(|| format!("cannot start {}", vng.display()))?;
                if !o.status.success() {
                    return Err(Failure::infra(format!(
                        "vng --exec true failed ({}): {}",
                        o.status,
                        String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
                    )));
                }
                theirs.push(t0.elapsed().as_secs_f64());
            }
        }
    }
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    t.set_header(vec!["pair", "bounce (s)", "vng (s)", "vng / bounce"]);
    let ratios: Vec<f64> = theirs.iter().zip(&ours).map(|(v, b)| v / b).collect();
    for (i, ((b, v), r)) in ours.iter().zip(&theirs).zip(&ratios).enumerate() {
        t.add_row(vec![(i + 1).to_string(), format!("{b:.2}"), format!("{v:.2}"), format!("{r:.2}")]);
    }
    let med = |v: &[f64]| crate::stats::median(v).unwrap_or(f64::NAN);
    crate::outln!(
        "boot to result on {} ({} {}), bounce (probe guest, {} vCPU, 1 GiB) vs {VNG} (--exec true, its defaults)\n{t}\nmedian: bounce {:.2} s, vng {:.2} s: bounce is {:.2}x as fast",
        k.meta.key,
        v.name,
        accel.short(),
        spec.vcpus(),
        med(&ours),
        med(&theirs),
        med(&ratios)
    );
    Ok(0)
}

/// A patch that adds one pr_info to swiotlb_print_info(), with a nonce so
/// it is never in the cache.
pub fn one_line_patch(swiotlb_c: &str) -> Result<String> {
    let lines: Vec<&str> = swiotlb_c.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("\tpr_info(\"mapped [mem"))
        .filter(|&i| i >= 3 && i + 3 <= lines.len())
        .ok_or_else(|| Failure::input("kernel/dma/swiotlb.c has no `pr_info(\"mapped [mem` line to patch beside"))?;
    let nonce = format!(
        "{:x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
    );
    let mut p = format!(
        "From: bounce bench <bench@bounce.invalid>\nSubject: [PATCH] swiotlb: one-line change for the build benchmark\n\n---\ndiff --git a/kernel/dma/swiotlb.c b/kernel/dma/swiotlb.c\n--- a/kernel/dma/swiotlb.c\n+++ b/kernel/dma/swiotlb.c\n@@ -{},6 +{},7 @@\n",
        at - 2,
        at - 2
    );
    for l in &lines[at - 3..at] {
        p.push_str(&format!(" {l}\n"));
    }
    p.push_str(&format!("+\tpr_info(\"bounce bench {nonce}\\n\");\n"));
    for l in &lines[at..at + 3] {
        p.push_str(&format!(" {l}\n"));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_one_line_patch_is_a_valid_hunk() {
        let src =
            "a\nb\nc\nd\n\tpr_info(\"mapped [mem %pa-%pa] (%luMB)\\n\", &mem->start, &mem->end,\n\t       x);\n}\n";
        let p = super::one_line_patch(src).unwrap();
        assert!(p.contains("@@ -2,6 +2,7 @@\n b\n c\n d\n+\tpr_info(\"bounce bench "), "{p}");
        assert!(super::one_line_patch("int x;\n").is_err());
    }
}
