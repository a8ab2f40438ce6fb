//! Running a matrix: build what is missing, boot every scheduled cell,
//! judge it, store it as it finishes, report.

use super::Matrix;
use crate::failure::{Failure, FailureClass, Result};
use crate::guest::machine::{self, State, Timeouts};
use crate::guest::profile::Profile;
use crate::guest::qemu::GuestSpec;
use crate::host::accel::{self, Accel, AccelChoice, AccelRequest};
use crate::host::env::{self, RunEnv};
use crate::kernel::{self, Kernel};
use crate::results::store::RunDir;
use crate::results::{CellKey, CellResult, Metric, RepResult, Sample, Status};
use crate::workload::{checks, Workload};
use crate::{report, rootfs, ui};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Options {
    pub matrix: PathBuf,
    pub results: PathBuf,
    pub accel: AccelRequest,
    pub repetitions: Option<u32>,
}

pub struct Outcome {
    pub run: RunDir,
    pub cells: Vec<CellResult>,
    pub worst: Option<FailureClass>,
    pub interrupted: bool,
}

/// Every guest gets this much on top of its profile's command line:
/// `panic=-1` with `-no-reboot` turns a panic into an exit, `oops=panic`
/// makes an oops one too (and so a pvpanic event).
const BASE_CMDLINE: &str = "panic=-1 oops=panic";

/// Kernels, each with its initramfs, by variant name.
pub struct Prepared {
    pub kernels: BTreeMap<String, (Kernel, PathBuf)>,
}

pub async fn prepare(root: &Path, cache: &Path, m: &Matrix) -> Result<Prepared> {
    let mut kernels = BTreeMap::new();
    // One after another: never two kernel builds at once on this machine.
    for name in &m.spec.kernels {
        let k = kernel::ensure(root, cache, name).await?;
        let initrd = rootfs::ensure(root, cache, &k)?;
        kernels.insert(name.clone(), (k, initrd));
    }
    Ok(Prepared { kernels })
}

pub fn cmdline(console: &str, profile: &Profile, swiotlb: &str, workload: &Workload) -> String {
    let mut words = vec![format!("console={console}"), BASE_CMDLINE.to_string()];
    words.extend(profile.cmdline.iter().cloned());
    words.extend(swiotlb.split_whitespace().map(str::to_string));
    words.extend(workload.cmdline());
    words.join(" ")
}

/// Guests under TCG on a busy two-core host boot in seconds but can take a
/// minute when a kernel build runs beside them: generous, not tight.
pub fn timeouts(accel: Accel, workload: &Workload) -> Timeouts {
    let boot = if accel == Accel::Kvm { 60 } else { 240 };
    Timeouts { boot: Duration::from_secs(boot), run: Duration::from_secs(workload.timeout_s) }
}

/// Boot a tiny guest with KVM; Ok only if it reaches init and powers off.
async fn probe_kvm(kernel: &Kernel, initrd: &Path, cache: &Path) -> Result<()> {
    let profile = Profile {
        name: "kvm-probe".into(),
        file: PathBuf::new(),
        description: "KVM probe".into(),
        bounces_because: String::new(),
        arch: kernel.arch.name.clone(),
        machine: "q35".into(),
        cpu: "host".into(),
        memory_mib: 256,
        smp: 1,
        devices: vec![],
        cmdline: vec![],
        emulated: false,
    };
    let spec = GuestSpec {
        qemu: kernel.arch.qemu.clone(),
        profile,
        accel: Accel::Kvm,
        kernel: kernel.image(),
        initrd: initrd.to_path_buf(),
        append: format!("console={} {BASE_CMDLINE} bounce.workload=probe", kernel.arch.console),
    };
    let dir = cache.join("kvm-probe");
    let t = Timeouts { boot: Duration::from_secs(30), run: Duration::from_secs(30) };
    let run = machine::run(&spec, &dir, t, &|_| {}).await?;
    match run.failure {
        None => Ok(()),
        Some(f) => Err(f),
    }
}

pub async fn choose_accel(request: AccelRequest, cache: &Path, prepared: &Prepared) -> Result<AccelChoice> {
    let (k, initrd) = prepared.kernels.values().next().ok_or_else(|| Failure::input("no kernels"))?;
    accel::choose(request, cache, &k.arch.qemu, || probe_kvm(k, initrd, cache)).await
}

pub async fn run(root: &Path, cache: &Path, opts: &Options) -> Result<Outcome> {
    let mut m = Matrix::load(root, &opts.matrix)?;
    if let Some(r) = opts.repetitions {
        m.spec.repetitions = r.max(1);
    }
    let (cells, _) = m.expand();
    if cells.is_empty() {
        return Err(Failure::input(format!(
            "{}: no runnable cells (see `bounce matrix --dry-run`)",
            opts.matrix.display()
        )));
    }
    let prepared = prepare(root, cache, &m).await?;
    let accel = choose_accel(opts.accel, cache, &prepared).await?;
    ui::line(format!("accelerator: {} ({})", accel.accel.qemu_arg(), accel.reason));

    let rev = env::harness_rev(root);
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let run_name = format!("{}-{}", now.replace(':', "").trim_end_matches('Z'), rev);
    let run = RunDir::create(&opts.results, &run_name)?;
    let mut qemu = BTreeMap::new();
    for a in m.arches.values() {
        qemu.insert(a.qemu.clone(), env::qemu_version(&a.qemu));
    }
    run.write_env(&RunEnv {
        started_at: now,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        matrix_file: opts.matrix.display().to_string(),
        host: env::host_info(),
        qemu,
        accel: accel.clone(),
        harness_rev: rev,
        kernels: prepared.kernels.iter().map(|(n, (k, _))| (n.clone(), k.meta.clone())).collect(),
    })?;
    ui::line(format!("results: {}", run.path.display()));

    let schedule = m.schedule(&cells);
    let mut results: BTreeMap<CellKey, CellResult> = BTreeMap::new();
    let mut interrupted = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    for (i, (key, rep)) in schedule.iter().enumerate() {
        let label = format!("[{}/{}] {} rep {rep}", i + 1, schedule.len(), key.id());
        let boot = run_one(&m, &prepared, &accel, &run, key, *rep, &label);
        let rep_result = tokio::select! {
            r = boot => r?,
            _ = &mut ctrl_c => {
                // Dropping the boot future kills its QEMU (process group).
                ui::line("interrupted: stopping; finished cells are saved");
                interrupted = true;
                break;
            }
        };
        let (rep_result, values) = rep_result;
        let (k, _) = &prepared.kernels[&key.kernel];
        let w = &m.workloads[&key.workload];
        let cell = results.entry(key.clone()).or_insert_with(|| CellResult {
            key: key.clone(),
            kernel_build: k.meta.key.clone(),
            swiotlb_dynamic: k.swiotlb_dynamic(),
            swiotlb_cmdline: m.spec.swiotlb[&key.swiotlb].clone(),
            accel: accel.clone(),
            emulated: m.profiles[&key.profile].emulated,
            reps: Vec::new(),
            metrics: BTreeMap::new(),
        });
        let decls = w.declarations();
        if rep_result.status == Status::Pass {
            for (name, value) in values {
                let decl = decls[&name].clone();
                cell.metrics
                    .entry(name)
                    .or_insert_with(|| Metric { decl, samples: Vec::new() })
                    .samples
                    .push(Sample { rep: *rep, value });
            }
        }
        let verdict = match &rep_result.failure {
            None => "pass".to_string(),
            Some(f) => format!("FAIL [{}] {}", f.class, f.message),
        };
        ui::line(format!(
            "{label}: {verdict} (boot {:.1} s, total {:.1} s)",
            rep_result.boot_s.unwrap_or(0.0),
            rep_result.total_s
        ));
        cell.reps.push(rep_result);
        run.write_cell(cell)?;
    }
    let cells: Vec<CellResult> = results.into_values().collect();
    let worst = report::status(&cells).1;
    Ok(Outcome { run, cells, worst, interrupted })
}

/// One boot of one cell: the rep's record and, when it passed, its values.
async fn run_one(
    m: &Matrix,
    prepared: &Prepared,
    accel: &AccelChoice,
    run: &RunDir,
    key: &CellKey,
    rep: u32,
    label: &str,
) -> Result<(RepResult, BTreeMap<String, f64>)> {
    let (kernel, initrd) = &prepared.kernels[&key.kernel];
    let profile = &m.profiles[&key.profile];
    let workload = &m.workloads[&key.workload];
    let spec = GuestSpec {
        qemu: kernel.arch.qemu.clone(),
        profile: profile.clone(),
        accel: accel.accel,
        kernel: kernel.image(),
        initrd: initrd.clone(),
        append: cmdline(&kernel.arch.console, profile, &m.spec.swiotlb[&key.swiotlb], workload),
    };
    let (dir, rel) = run.guest_dir(&key.id(), rep);
    let spinner = ui::spinner();
    let on_state = |s: State| spinner.set_message(format!("{label}: {s}"));
    let g = machine::run(&spec, &dir, timeouts(accel.accel, workload), &on_state).await?;
    spinner.finish_and_clear();
    let mut values = BTreeMap::new();
    let mut findings = Vec::new();
    let failure = match g.failure {
        Some(f) => Some(f),
        None => match g.transcript.done {
            Some(rc) if rc != 0 => Some(Failure::new(
                FailureClass::Workload,
                format!("workload `{}` exited with rc={rc} (channel: {}/channel.log)", workload.name, dir.display()),
            )),
            _ => match workload.metrics(&g.transcript) {
                Err(f) => Some(f),
                Ok(v) => {
                    values = v;
                    let (f, found) = checks::judge(&g.transcript, workload);
                    findings = found;
                    f
                }
            },
        },
    };
    Ok((
        RepResult {
            rep,
            status: if failure.is_none() { Status::Pass } else { Status::Fail },
            failure,
            boot_s: g.boot_s,
            total_s: g.total_s,
            guest_dir: rel,
            log_findings: findings,
        },
        values,
    ))
}
