//! Running a matrix: build what is missing, boot every scheduled cell,
//! judge it, store it as it finishes, report.

use super::Matrix;
use crate::failure::{Classify, Failure, FailureClass, Result};
use crate::guest::machine::{self, State, Timeouts};
use crate::guest::qemu::GuestSpec;
use crate::host::accel::{Accel, AccelChoice, Clock, MachineRequest};
use crate::host::env::{self, BuildMeta, LastGood, ProfileNote, RunEnv};
use crate::kernel::{self, Kernel};
use crate::results::store::RunDir;
use crate::results::{
    CellKey, CellResult, Metric, PlannedBoot, RepResult, RunPlan, RunState, RunTiming, Sample, Shard, ShardOf, Status,
};
use crate::workload::{services, GuestOutput, Workload, WorkloadClock};
use crate::{report, rootfs, ui};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone)]
pub struct Options {
    pub matrix: PathBuf,
    pub results: PathBuf,
    pub machine: MachineRequest,
    pub repetitions: Option<u32>,
    /// Seed of the run order (default: from the clock); kept in env.json.
    pub seed: Option<u64>,
    /// Run only these kernels of the matrix (calibration runs one).
    pub kernels: Option<Vec<String>>,
    /// Finish this run directory instead: only the boots its plan lists
    /// and its cells lack (the other options but `accel` are its own).
    pub resume: Option<PathBuf>,
    /// Boot only this share of the plan (`bounce results merge` joins them).
    pub shard: Option<Shard>,
    /// Boot these builds (a stored baseline's last good kernels) beside
    /// the matrix's kernels of the same name, in a gated comparison.
    pub last_good: Option<(String, Vec<BuildMeta>)>,
    /// Guests on the instruction clock to run at once (default: the
    /// host's cores, one vCPU each).
    pub jobs: Option<usize>,
}

impl Options {
    pub fn jobs(&self) -> usize {
        self.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1)
    }
}

pub struct Outcome {
    pub run: RunDir,
    pub cells: Vec<CellResult>,
    pub worst: Option<FailureClass>,
    /// Stopped by a signal: the exit code it stands for (130 SIGINT,
    /// 143 SIGTERM, 129 SIGHUP).
    pub interrupted: Option<i32>,
}

/// The first of SIGINT, SIGTERM and SIGHUP (a terminal's Ctrl-C, a CI
/// job's cancellation, a closed session), as the exit code 128 + signal.
async fn stop_signal() -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let wait = |kind: SignalKind, code: i32| async move {
        match signal(kind) {
            Ok(mut s) => {
                s.recv().await;
                code
            }
            // Without a handler the signal keeps its default action.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        c = wait(SignalKind::interrupt(), 130) => c,
        c = wait(SignalKind::terminate(), 143) => c,
        c = wait(SignalKind::hangup(), 129) => c,
    }
}

/// Kernels, each with its initramfs, by (variant, arch); the tools disk
/// by arch, where a workload needs it.
pub struct Prepared {
    pub kernels: BTreeMap<(String, String), (Kernel, PathBuf)>,
    pub tools: BTreeMap<String, PathBuf>,
    /// The guest root filesystem's identity, by arch.
    pub rootfs: BTreeMap<String, String>,
}

impl Prepared {
    pub fn get(&self, m: &Matrix, key: &CellKey) -> &(Kernel, PathBuf) {
        &self.kernels[&(key.kernel.clone(), m.profiles[&key.profile].arch.clone())]
    }
}

pub async fn prepare(root: &Path, cache: &Path, m: &Matrix, cells: &[CellKey]) -> Result<Prepared> {
    let mut kernels = BTreeMap::new();
    // One after another: never two kernel builds at once on this machine.
    let mut tools = BTreeMap::new();
    let mut identity = BTreeMap::new();
    for (variant, arch) in m.builds(cells) {
        let k = kernel::ensure(root, cache, &m.variants[&variant], &arch).await?;
        let initrd = rootfs::ensure(root, cache, &k)?;
        if !identity.contains_key(&arch) {
            identity.insert(arch.clone(), rootfs::identity(root, cache, &k.arch)?);
        }
        let needs_tools = cells.iter().any(|c| m.workloads[&c.workload].tools && m.profiles[&c.profile].arch == arch);
        if needs_tools && !tools.contains_key(&arch) {
            tools.insert(arch.clone(), rootfs::tools::image(cache, &k.arch)?);
        }
        kernels.insert((variant, arch), (k, initrd));
    }
    Ok(Prepared { kernels, tools, rootfs: identity })
}

/// Guests under TCG on a busy two-core host boot in seconds but can take a
/// minute when a kernel build runs beside them: generous, not tight.
pub fn timeouts(accel: Accel, workload: &Workload, boot: Option<u64>) -> Timeouts {
    let boot = boot.unwrap_or(if accel == Accel::Kvm { 60 } else { 240 });
    Timeouts { boot: Duration::from_secs(boot), run: Duration::from_secs(workload.timeout_s) }
}

/// One accelerator per guest architecture: KVM can only run the host's own.
pub async fn choose_accels(
    request: MachineRequest,
    cache: &Path,
    prepared: &Prepared,
) -> Result<BTreeMap<String, AccelChoice>> {
    let mut out = BTreeMap::new();
    for (k, initrd) in prepared.kernels.values() {
        if out.contains_key(&k.arch.name) {
            continue;
        }
        let choice = crate::guest::probe::accel_for(request, cache, k, initrd).await?;
        ui::line(format!("accelerator for {}: {} ({})", k.arch.name, choice.accel.qemu_arg(), choice.reason));
        out.insert(k.arch.name.clone(), choice);
    }
    Ok(out)
}

pub async fn run(root: &Path, cache: &Path, opts: &Options) -> Result<Outcome> {
    let started = std::time::Instant::now();
    if let Some(dir) = &opts.resume {
        return resume(root, cache, opts, dir).await;
    }
    let mut m = Matrix::load(root, &opts.matrix)?;
    if let Some(r) = opts.repetitions {
        m.spec.repetitions = r.max(1);
    }
    let last_good = match &opts.last_good {
        Some((baseline, builds)) => Some(pin_last_good(&mut m, &opts.matrix, baseline, builds)?),
        None => None,
    };
    if let Some(only) = &opts.kernels {
        if let Some(k) = only.iter().find(|k| !m.variants.contains_key(*k)) {
            return Err(Failure::input(format!(
                "{}: `{k}` is not a kernel of this matrix (it has: {})",
                opts.matrix.display(),
                m.kernels.join(", ")
            )));
        }
        for k in only {
            m.join_kernel_axis(k);
        }
    }
    let (mut cells, _) = m.expand();
    if let Some(only) = &opts.kernels {
        cells.retain(|c| only.contains(&c.kernel));
    }
    let seed = opts.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
    });
    if cells.is_empty() {
        return Err(Failure::input(format!(
            "{}: no runnable cells (see `bounce matrix --dry-run`)",
            opts.matrix.display()
        )));
    }
    let mut schedule = m.schedule(&cells, seed);
    let whole_plan_boots = schedule.len();
    if let Some(s) = opts.shard {
        schedule = Matrix::share(schedule, s);
        if schedule.is_empty() {
            return Err(Failure::input(format!(
                "--shard {s}: this share of {} is empty (it has fewer groups of boots than shards): use fewer shards",
                opts.matrix.display()
            )));
        }
        // Kernels are built only where a share boots them.
        cells.retain(|c| schedule.iter().any(|(k, _)| k == c));
        ui::line(format!("shard {s}: {} of {whole_plan_boots} boots", schedule.len()));
    }
    let prepared = prepare(root, cache, &m, &cells).await?;
    let accels = choose_accels(opts.machine, cache, &prepared).await?;
    // Before the run directory exists: a harness that gives up leaves none.
    let _guests = guests_lock(cache).await?;

    let rev = env::harness_rev(root);
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let shard = opts.shard.map(|s| format!("-shard{}of{}", s.index, s.of)).unwrap_or_default();
    let run_name = format!("{}-{}{shard}", now.replace(':', "").trim_end_matches('Z'), rev);
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
        accel: accels.clone(),
        harness_rev: rev,
        kernels: prepared.kernels.iter().map(|((v, a), (k, _))| (env::kernel_label(v, a), k.meta.clone())).collect(),
        rootfs: prepared.rootfs.clone(),
        profiles: m
            .profiles
            .values()
            .map(|p| (p.name.clone(), ProfileNote { bounces_because: p.bounces_because.clone(), emulated: p.emulated }))
            .collect(),
        compare: m.compare.clone(),
        order_seed: Some(seed),
        last_good,
        shards: Vec::new(),
    })?;
    ui::line(format!("results: {}", run.path.display()));
    let schedule: Vec<PlannedBoot> = schedule.into_iter().map(|(cell, rep)| PlannedBoot { cell, rep }).collect();
    let shard = opts.shard.map(|shard| ShardOf { shard, whole_plan_boots });
    let plan = RunPlan { boots: schedule.clone(), state: RunState::Running, shard, timing: None };
    boot_all(&m, &prepared, &accels, run, plan, schedule, BTreeMap::new(), opts.jobs(), started).await
}

/// Each kernel of `m` the baseline has a build of gets its last good twin.
pub fn pin_last_good(m: &mut Matrix, file: &Path, baseline: &str, builds: &[BuildMeta]) -> Result<LastGood> {
    let mut kernels = Vec::new();
    for k in m.kernels.clone() {
        let keys: BTreeMap<String, String> =
            builds.iter().filter(|b| b.variant == k).map(|b| (b.arch.clone(), b.key.clone())).collect();
        if let Some(name) = m.pin_last_good(&k, keys) {
            kernels.push(name);
        }
    }
    if kernels.is_empty() {
        let have: BTreeSet<&str> = builds.iter().map(|b| b.variant.as_str()).collect();
        return Err(Failure::input(format!(
            "{}: baseline {baseline} holds builds of {} and this matrix boots none of them (it has: {}): gate against a baseline of the same kernel, or use --stored",
            file.display(),
            have.into_iter().collect::<Vec<_>>().join(", "),
            m.kernels.join(", ")
        )));
    }
    Ok(LastGood { baseline: baseline.to_string(), kernels })
}

/// `--resume RUN`: the boots of RUN's plan that have no record, with the
/// matrix file, kernels and accelerators the run started with, into the
/// same directory; the outcome covers the whole run.
async fn resume(root: &Path, cache: &Path, opts: &Options, dir: &Path) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let run = RunDir::open(dir)?;
    let env = run.read_env()?;
    let plan = run.read_plan()?;
    let have = run.read_cells()?;
    let missing = plan.missing(&have);
    let file = PathBuf::from(&env.matrix_file);
    let mut m = Matrix::load(root, &file)?;
    if let Some(g) = &env.last_good {
        // Labelled `KERNEL@good (ARCH)`; the build's own record names the
        // variant it was built as.
        let builds: Vec<BuildMeta> = env
            .kernels
            .iter()
            .filter(|(label, _)| g.kernels.iter().any(|k| k == env::label_kernel(label)))
            .map(|(_, b)| b.clone())
            .collect();
        pin_last_good(&mut m, &file, &g.baseline, &builds)?;
    }
    let mut cells: Vec<CellKey> = Vec::new();
    for b in &missing {
        let known = m.variants.contains_key(&b.cell.kernel)
            && m.profiles.contains_key(&b.cell.profile)
            && m.workloads.contains_key(&b.cell.workload)
            && m.spec.swiotlb.contains_key(&b.cell.swiotlb);
        if !known {
            return Err(Failure::input(format!(
                "{}: its plan boots {}, which {} no longer defines: resume with the matrix the run started with",
                dir.display(),
                b.cell.id(),
                file.display()
            )));
        }
        m.join_kernel_axis(&b.cell.kernel);
        if !cells.contains(&b.cell) {
            cells.push(b.cell.clone());
        }
    }
    ui::line(format!("resume {}: {} of {} planned boots to run", dir.display(), missing.len(), plan.boots.len()));
    let prepared = prepare(root, cache, &m, &cells).await?;
    let accels = choose_accels(opts.machine, cache, &prepared).await?;
    for (arch, a) in &accels {
        if let Some(before) = env.accel.get(arch).filter(|b| (b.accel, b.clock) != (a.accel, a.clock)) {
            return Err(Failure::input(format!(
                "{}: started under {} ({}) for {arch}, now {} ({}): its samples would not compare (use --accel and --clock)",
                dir.display(),
                before.accel.qemu_arg(),
                before.clock.label(),
                a.accel.qemu_arg(),
                a.clock.label()
            )));
        }
    }
    let results = have.into_iter().map(|c| (c.key.clone(), c)).collect();
    let plan = RunPlan { state: RunState::Running, ..plan };
    let _guests = guests_lock(cache).await?;
    boot_all(&m, &prepared, &accels, run, plan, missing, results, opts.jobs(), started).await
}

/// One matrix boots guests at a time on a host: two would share the cores
/// and skew each other's timings (and --jobs already fills them). A second
/// harness waits, says so, and gives up after BOUNCE_LOCK_WAIT_S (3 h).
async fn guests_lock(cache: &Path) -> Result<crate::lock::Lock> {
    let wait = std::env::var("BOUNCE_LOCK_WAIT_S").ok().and_then(|s| s.parse().ok()).unwrap_or(3 * 3600);
    crate::lock::Lock::exclusive_waiting(
        &cache.join("locks/guests.lock"),
        "another bounce is booting guests on this host",
        Duration::from_secs(wait),
    )
    .await
}

/// Boot `schedule` (a plan's boots, or what is left of them), storing each
/// cell as it finishes and the plan's state at the start and the end.
///
/// Guests on the instruction clock run up to `jobs` at once, in plan
/// order: each is one vCPU on one host thread, and its timings count its
/// own instructions, so a neighbour cannot move them (the A and B of a
/// kernel pair, next to each other in the plan, then share the host's
/// load exactly). A guest on the host's clock runs alone: a neighbour
/// would be part of what it measures.
#[allow(clippy::too_many_arguments)]
async fn boot_all(
    m: &Matrix,
    prepared: &Prepared,
    accels: &BTreeMap<String, AccelChoice>,
    run: RunDir,
    mut plan: RunPlan,
    schedule: Vec<PlannedBoot>,
    mut results: BTreeMap<CellKey, CellResult>,
    jobs: usize,
    ready: std::time::Instant,
) -> Result<Outcome> {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let booting = std::time::Instant::now();
    let prepare_s = booting.duration_since(ready).as_secs_f64();
    run.write_plan(&plan)?;
    let mut interrupted = None;
    let stop = stop_signal();
    tokio::pin!(stop);
    let accel_of = |key: &CellKey| cell_accel(m, accels, key);
    let mut queue = schedule.iter().enumerate().peekable();
    let mut running = FuturesUnordered::new();
    // Whether what runs now may have company.
    let mut shared = true;
    loop {
        while let Some((i, PlannedBoot { cell: key, rep })) = queue.peek().copied() {
            let alone = accel_of(key).clock == Clock::Host;
            if !running.is_empty() && (alone || !shared || running.len() >= jobs.max(1)) {
                break;
            }
            queue.next();
            shared = !alone;
            let label = format!("[{}/{}] {} rep {rep}", i + 1, schedule.len(), key.id());
            let run = &run;
            running.push(async move {
                let r = run_one(m, prepared, &accel_of(key), run, key, *rep, &label).await;
                (key, *rep, label, r)
            });
        }
        let (key, rep, label, r) = tokio::select! {
            done = running.next() => match done {
                Some(d) => d,
                None => break,
            },
            code = &mut stop => {
                // Dropping the boot futures kills their QEMUs (process groups).
                ui::line("interrupted: stopping; finished cells are saved");
                interrupted = Some(code);
                break;
            }
        };
        // A guest that could not even be set up is this boot's
        // infrastructure failure, not the end of the run.
        let (rep_result, values) = r.unwrap_or_else(|f| {
            let (_, rel) = run.guest_dir(&key.id(), rep);
            let failed = RepResult {
                rep,
                status: Status::Fail,
                failure: Some(f),
                boot_s: None,
                total_s: 0.0,
                guest_dir: rel,
                log_findings: Vec::new(),
            };
            (failed, BTreeMap::new())
        });
        let accel = accel_of(key);
        let (k, _) = prepared.get(m, key);
        let w = &m.workloads[&key.workload];
        let cell = results.entry(key.clone()).or_insert_with(|| CellResult {
            key: key.clone(),
            kernel_build: k.meta.key.clone(),
            swiotlb_dynamic: k.swiotlb_dynamic(),
            swiotlb_cmdline: m.spec.swiotlb[&key.swiotlb].args().to_string(),
            accel: accel.clone(),
            emulated: m.profiles[&key.profile].emulated,
            reps: Vec::new(),
            metrics: BTreeMap::new(),
            expected_failure: m.expected_failure(key).cloned(),
        });
        if rep_result.status == Status::Pass {
            for (name, value) in values {
                let Some(decl) = w.declaration_for(&name) else { continue };
                let samples = &mut cell
                    .metrics
                    .entry(name)
                    .or_insert_with(|| Metric { decl: decl.on_clock(accel.clock), samples: Vec::new() })
                    .samples;
                // Boots finish out of order when they run side by side.
                let at = samples.partition_point(|s| s.rep < rep);
                samples.insert(at, Sample { rep, value });
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
        let at = cell.reps.partition_point(|r| r.rep < rep);
        cell.reps.insert(at, rep_result);
        run.write_cell(cell)?;
    }
    // Whatever still runs dies here, with its QEMU.
    drop(running);
    plan.state = if interrupted.is_some() { RunState::Interrupted } else { RunState::Complete };
    plan.timing = Some(RunTiming { jobs, prepare_s, boots_s: booting.elapsed().as_secs_f64() });
    run.write_plan(&plan)?;
    let cells: Vec<CellResult> = results.into_values().collect();
    let worst = report::status(&cells).1;
    Ok(Outcome { run, cells, worst, interrupted })
}

/// The accelerator and clock of one cell's guests: its architecture's,
/// except that a workload that needs its vCPUs at once runs on the host's
/// clock (the instruction clock runs one vCPU), and so does a profile
/// whose devices do not keep to the instruction clock.
pub(crate) fn cell_accel(m: &Matrix, accels: &BTreeMap<String, AccelChoice>, key: &CellKey) -> AccelChoice {
    let profile = &m.profiles[&key.profile];
    let mut a = accels[&profile.arch].clone();
    if a.clock == Clock::Host {
        return a;
    }
    if m.workloads[&key.workload].clock == WorkloadClock::Host {
        a.clock = Clock::Host;
        a.reason = format!("{}; host clock: workload {} needs every vCPU at once", a.reason, key.workload);
    } else if let Some(why) = &profile.host_clock {
        a.clock = Clock::Host;
        a.reason = format!("{}; host clock: profile {}: {why}", a.reason, key.profile);
    }
    a
}

/// The guest of one boot of `key`, its files in `dir`, told where the
/// host's services listen by `peers`.
pub(crate) fn guest_spec(
    m: &Matrix,
    prepared: &Prepared,
    accel: &AccelChoice,
    key: &CellKey,
    dir: &Path,
    peers: &services::Peers,
) -> Result<GuestSpec> {
    let (kernel, initrd) = prepared.get(m, key);
    let workload = &m.workloads[&key.workload];
    let tools = if workload.tools { prepared.tools.get(&kernel.arch.name).cloned() } else { None };
    let mut extra = workload.cmdline();
    extra.extend(peers.cmdline.iter().cloned());
    let mut attach = workload.attach(dir, tools)?;
    attach.forwards = peers.forwards.clone();
    let mut profile = m.profiles[&key.profile].clone();
    profile.smp = workload.vcpus.unwrap_or(profile.smp);
    Ok(GuestSpec::new(kernel, initrd.clone(), &profile, accel, m.spec.swiotlb[&key.swiotlb].args(), &extra, attach))
}

/// One boot of one cell: the rep's record and, when it passed, its values.
pub(crate) async fn run_one(
    m: &Matrix,
    prepared: &Prepared,
    accel: &AccelChoice,
    run: &RunDir,
    key: &CellKey,
    rep: u32,
    label: &str,
) -> Result<(RepResult, BTreeMap<String, f64>)> {
    let (kernel, _) = prepared.get(m, key);
    let workload = &m.workloads[&key.workload];
    let (dir, rel) = run.guest_dir(&key.id(), rep);
    std::fs::create_dir_all(&dir).infra(|| format!("cannot create {}", dir.display()))?;
    let services = services::start(&workload.services, &dir).await?;
    let spec = guest_spec(m, prepared, accel, key, &dir, &services.peers)?;
    let spinner = ui::spinner();
    let on_state = |s: State| spinner.set_message(format!("{label}: {s}"));
    let g = machine::run(&spec, &dir, timeouts(accel.accel, workload, m.spec.boot_timeout_s), &on_state).await;
    let report = services.stop().await;
    let g = g?;
    spinner.finish_and_clear();
    let _ = std::fs::write(dir.join("services.json"), serde_json::to_string_pretty(&report).unwrap_or_default());
    let mut values = BTreeMap::new();
    let mut findings = Vec::new();
    let failure = match g.failure {
        Some(f) => Some(f),
        None => {
            let out = GuestOutput {
                transcript: &g.transcript,
                dir: &dir,
                services: &report,
                dynamic: kernel.swiotlb_dynamic(),
            };
            let ev = workload.evaluate(&out);
            findings = ev.findings;
            values = ev.metrics;
            match g.transcript.done {
                // A workload that failed says why in its sections; a
                // correctness finding outranks its exit code.
                Some(rc) if rc != 0 => ev.failure.filter(|f| f.class == FailureClass::Correctness).or_else(|| {
                    let why =
                        g.transcript.failed_step().map(|(s, l)| format!(": {l} (section {s})")).unwrap_or_default();
                    Some(Failure::new(
                        FailureClass::Workload,
                        format!(
                            "workload `{}` exited with rc={rc}{why} (channel: {}/channel.log)",
                            workload.name,
                            dir.display()
                        ),
                    ))
                }),
                _ => ev.failure,
            }
        }
    };
    // The scratch disk held only what the guest wrote, now judged.
    let _ = std::fs::remove_file(dir.join("scratch.img"));
    // The record names the boot's files as the run directory holds them,
    // so a copied or published run still points at its own logs.
    let failure = failure.map(|f| Failure { message: crate::results::relative_to_run(&f.message, &rel), ..f });
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
