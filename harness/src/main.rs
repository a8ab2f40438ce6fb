use bounce::failure::{Failure, FailureClass, Result};
use bounce::host::accel::MachineRequest;
use bounce::host::tools;
use bounce::kernel::series::{Series, SeriesSource};
use bounce::kernel::variant::Variant;
use bounce::matrix::{run, Matrix};
use bounce::results::store::RunDir;
use bounce::results::Shard;
use bounce::stats::noise::NoiseTable;
use bounce::{kernel, outln, paths, report, stats, ui};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(name = "bounce", version, about = "Test and benchmark the Linux swiotlb (fixed vs dynamic) in QEMU guests")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build what is missing, run every cell of a matrix, print the comparison.
    Matrix {
        /// The matrix file (default: matrix.yaml at the project root).
        #[arg(long)]
        matrix: Option<PathBuf>,
        /// List the cells, builds and boots it would run, and stop.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        run: RunArgs,
        /// Fail (exit 7) when a gated metric regressed: against BASELINE (a
        /// name under results/baselines/ or a run directory), and in the
        /// matrix's own gated comparisons (base vs each patch series).
        /// Without a value, only the latter. With BASELINE, the last good
        /// build it names boots beside each of the matrix's kernels of the
        /// same name, interleaved in this run, and they are judged against
        /// each other (same-run A/B).
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "BASELINE")]
        gate: Option<String>,
        /// With --gate BASELINE: judge against its stored samples instead
        /// of booting its good build (no build needed; thresholds widened
        /// by the drift `bounce calibrate --drift` measured across runs).
        #[arg(long, requires = "gate")]
        stored: bool,
        /// Compare with a baseline from another accelerator, QEMU or host.
        #[arg(long)]
        allow_env_mismatch: bool,
        /// Finish an interrupted run: boot only what its plan lists and its
        /// cells lack, with its own matrix file and order, into the same
        /// directory, and report the whole run.
        #[arg(long, value_name = "RUN", conflicts_with_all = ["matrix", "reps", "seed", "dry_run", "results"])]
        resume: Option<PathBuf>,
        /// Boot only share K of N (e.g. 2/3) of the plan, for N machines;
        /// `bounce results merge` joins the shards' runs into one.
        #[arg(long, value_name = "K/N", conflicts_with = "resume")]
        shard: Option<Shard>,
    },
    /// One guest connection to a harness service (QEMU runs it, the
    /// connection on stdin/stdout).
    #[command(hide = true)]
    Relay { to: std::net::SocketAddr },
    /// Which patch of a matrix's series fails the gate: boot the base and
    /// the whole series, then bisect the series' prefixes, building and
    /// booting only those a bisection needs.
    Bisect {
        #[arg(long)]
        matrix: Option<PathBuf>,
        /// The series (its file's stem) when the matrix has several.
        #[arg(long)]
        series: Option<String>,
        /// The base kernel when the series goes on several.
        #[arg(long)]
        on: Option<String>,
        /// (--reps: every step boots this many.)
        #[command(flatten)]
        run: RunArgs,
    },
    /// A/A: boot one kernel of a matrix against itself, store each metric's
    /// noise in results/baselines/noise.json, show the gate stays quiet.
    Calibrate {
        #[arg(long)]
        matrix: Option<PathBuf>,
        /// The kernel (default: the matrix's first).
        #[arg(long)]
        kernel: Option<String>,
        /// Boots per cell, split into two interleaved arms.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=bounce::matrix::MAX_REPS as i64))]
        reps: u32,
        #[command(flatten)]
        machine: MachineRequest,
        #[arg(long)]
        results: Option<PathBuf>,
        #[arg(long)]
        seed: Option<u64>,
        /// Boot nothing: calibrate from this stored run of one kernel.
        #[arg(long, conflicts_with_all = ["kernel", "seed"])]
        run: Option<PathBuf>,
        /// Boot nothing: measure the nightly gate's false-alarm rate and
        /// power by running it over nights simulated from a stored run of
        /// one kernel (--run, default the `nightly-tcg` baseline), at the
        /// matrix's boots a cell (--matrix, default nightly.yaml).
        #[arg(long, conflicts_with_all = ["kernel", "seed"])]
        power: bool,
        /// Unchanged nights simulated for the false-alarm rate.
        #[arg(long, default_value_t = 2000, requires = "power")]
        nights: usize,
        /// Nights simulated per seeded change, for each row's power.
        #[arg(long, default_value_t = 200, requires = "power")]
        power_nights: usize,
        /// Boot nothing: measure how far each metric's median drifts
        /// between these runs of one kernel (three or more, started at
        /// least an hour apart, on one host class), for the thresholds of
        /// `--gate BASELINE --stored` and `bounce compare`.
        #[arg(long, num_args = 3.., value_name = "RUN", conflicts_with_all = ["kernel", "seed", "run", "power"])]
        drift: Vec<String>,
    },
    /// Named baselines: raw samples and environment of a run, kept.
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },
    /// Judge NEW against BASE (run directories or baseline names).
    Compare {
        base: String,
        new: String,
        /// Exit 7 when a gated metric regressed.
        #[arg(long)]
        gate: bool,
        #[arg(long)]
        allow_env_mismatch: bool,
        #[arg(long)]
        markdown: bool,
    },
    /// Check (and as root, install) the host tools; show the accelerator.
    Doctor,
    /// Build kernel variants (kernels/variants/NAME.yaml) into the cache.
    Build {
        variants: Vec<String>,
        /// Only for these architectures (default: every arch the variant lists).
        #[arg(long)]
        arch: Vec<String>,
        /// Also build each variant with this series on top: an mbox, a
        /// directory of patches, or a quilt `series` file.
        #[arg(long, conflicts_with = "b4")]
        series: Option<PathBuf>,
        /// Fetch the series from lore with b4 (needs the network).
        #[arg(long)]
        b4: Option<String>,
        /// Build every prefix of the series (base+1, base+2, ...).
        #[arg(long)]
        per_patch: bool,
        /// Resolve and check the config, print the cache key, build nothing.
        #[arg(long)]
        config_only: bool,
    },
    /// Boot one guest with a shell on this terminal, to debug a cell.
    Boot {
        variant: String,
        #[arg(long)]
        profile: String,
        /// A swiotlb setting of the default matrix, or kernel words.
        #[arg(long, default_value = "")]
        swiotlb: String,
        #[command(flatten)]
        machine: MachineRequest,
    },
    /// Run directories: join shards.
    Results {
        #[command(subcommand)]
        command: ResultsCommand,
    },
    /// The kernel cache.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Measurements of the harness itself.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Write the JSON Schemas of a run directory's files (cells/*.json,
    /// env.json, plan.json), generated from the harness's own types.
    Schema {
        /// Default: results/schema/ at the project root.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the report of a run directory in one of its forms; exits
    /// 130 when the run did not finish, else with its worst failure.
    Report {
        run: PathBuf,
        /// terminal: tables in boxes; text: ASCII within 80 columns for a
        /// mail reply; markdown: for a review comment; html: one page with
        /// charts; junit, kcidb: for CI systems; json: the raw results.
        #[arg(long, value_enum, default_value = "text")]
        format: report::Format,
        /// Same as --format markdown.
        #[arg(long, conflicts_with = "format")]
        markdown: bool,
        /// Judge the run's gated comparisons too, and exit 7 when one
        /// regressed: how a sharded nightly, merged, is gated. A run booted
        /// with `--gate BASELINE` is judged same-run A/B, its last good
        /// build against tonight's.
        #[arg(long)]
        gate: bool,
    },
}

/// How boots run: shared by the commands that run a matrix.
#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    machine: MachineRequest,
    /// Override the matrix's repetition count.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=bounce::matrix::MAX_REPS as i64))]
    reps: Option<u32>,
    /// Where run directories go (default: results/ at the project root).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Seed of the randomised run order (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Guests on the instruction clock run this many at once (default:
    /// the host's cores); guests on the host's clock always run alone.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
}

impl RunArgs {
    fn options(self, root: &Path, matrix: PathBuf, resume: Option<PathBuf>) -> run::Options {
        run::Options {
            matrix,
            results: self.results.unwrap_or_else(|| root.join("results")),
            machine: self.machine,
            repetitions: self.reps,
            seed: self.seed,
            kernels: None,
            resume,
            shard: None,
            last_good: None,
            jobs: self.jobs,
        }
    }
}

#[derive(Subcommand)]
enum BaselineCommand {
    /// Save RUN (a run directory) as results/baselines/NAME.
    Save { run: PathBuf, name: String },
}

#[derive(Subcommand)]
enum ResultsCommand {
    /// Join the runs of `bounce matrix --shard K/N` (every share once) into
    /// one run directory, which reports as an unsharded run would.
    Merge {
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// The merged run directory (default: next to the first shard,
        /// named after it with `-merged`).
        #[arg(long)]
        into: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// List cached kernels.
    Ls,
    /// Remove damaged, interrupted and unused entries.
    Gc {
        /// Remove what has not been used for this many days.
        #[arg(long, default_value_t = 30)]
        older_than_days: u64,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Kernel build times: cold per arch, a no-op rebuild, and a rebuild
    /// after a one-line patch to kernel/dma/swiotlb.c.
    Build {
        #[arg(long, default_value = "6.12-dynamic")]
        variant: String,
        #[arg(long)]
        arch: Vec<String>,
    },
    /// One cell's boot through the harness against its bare QEMU command,
    /// in alternating pairs (default: a storage cell of matrix.yaml).
    Boot {
        #[arg(long)]
        matrix: Option<PathBuf>,
        /// KERNEL.PROFILE.WORKLOAD.SWIOTLB
        #[arg(long)]
        cell: Option<String>,
        #[arg(long, default_value_t = 5)]
        pairs: usize,
        #[command(flatten)]
        machine: MachineRequest,
    },
    /// A run's wall time against the best its boots allow.
    Matrix { run: PathBuf },
    /// Boot-to-result of a trivial guest, bounce against virtme-ng, on one
    /// kernel (variant 6.12-vng), in alternating pairs.
    Vng {
        #[arg(long, default_value_t = 5)]
        pairs: usize,
        #[command(flatten)]
        machine: MachineRequest,
    },
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let code = match rt.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(f) => {
            ui::line(format!("{f}"));
            f.class.exit_code()
        }
    };
    // Dropping the runtime waits for blocking tasks; guests are already gone.
    drop(rt);
    std::process::exit(code);
}

/// Calibration and the gate's error rates both read a run of one kernel
/// against itself: a run of several is the wrong input.
fn one_kernel(cells: &[bounce::results::CellResult], source: &str) -> Result<()> {
    let kernels: std::collections::BTreeSet<&str> = cells.iter().map(|c| c.key.kernel.as_str()).collect();
    if kernels.len() != 1 {
        return Err(Failure::input(format!(
            "{source}: a calibration run holds one kernel; this one has {}",
            kernels.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(())
}

async fn dispatch(cli: Cli) -> Result<i32> {
    let root = paths::project_root();
    let cache = paths::cache_root()?;
    match cli.command {
        Command::Relay { to } => bounce::workload::services::relay(to).await.map(|()| 0),
        Command::Matrix { matrix, dry_run, run: args, gate, stored, allow_env_mismatch, resume, shard } => {
            let matrix = matrix.unwrap_or_else(|| root.join("matrix.yaml"));
            // A missing baseline is bad input: say so before an hour of
            // boots, not after.
            let baseline = match gate.as_deref() {
                Some(b) if !b.is_empty() => Some(RunDir::resolve(b, &root.join("results/baselines"))?),
                _ => None,
            };
            if stored && baseline.is_none() {
                return Err(Failure::input(
                    "--stored judges against a baseline's stored samples: name it (--gate BASELINE --stored)",
                ));
            }
            // Same-run A/B unless --stored: the baseline's kernels, as built
            // the night it was saved, boot beside tonight's.
            let last_good = match (&baseline, stored) {
                (Some(b), false) => Some(last_good_builds(b)?),
                _ => None,
            };
            if dry_run {
                return dry(&root, &matrix, args.reps, shard, last_good);
            }
            let noise = NoiseTable::load(&root.join(stats::noise::FILE))?;
            let opts = run::Options { shard, last_good, ..args.options(&root, matrix, resume) };
            let out = run::run(&root, &cache, &opts).await?;
            let mut judged = report::RunReport::load(&root, &out.run, &noise)?;
            let mut gate_code = 0;
            if gate.is_some() {
                let (against, mode) = match (&baseline, &judged.env.last_good) {
                    (Some(b), None) => (
                        Some(stats::compare::across_runs(
                            (&b.name(), &b.read_env()?, &b.read_cells()?),
                            (&out.run.name(), &judged.env, &judged.cells),
                            allow_env_mismatch,
                            &noise,
                            stats::compare::Drift::Widen,
                        )?),
                        report::GateMode::Stored { baseline: b.name() },
                    ),
                    _ => {
                        let history = baseline.as_ref().map_or(0, |b| b.read_history().len());
                        (None, report::GateMode::of_run(&judged.env, history))
                    }
                };
                gate_code = judged.judge_gate(against, mode);
            }
            judged.write(&out.run)?;
            outln!("{}", judged.render(report::Format::Terminal)?);
            if let Some(code) = out.interrupted {
                return Ok(code);
            }
            // A broken cell outranks a slow one: fix correctness first.
            Ok(out.worst.map(|c| c.exit_code()).unwrap_or(gate_code))
        }
        Command::Bisect { matrix, series, on, run: args } => {
            let matrix = matrix.unwrap_or_else(|| root.join("matrix.yaml"));
            let m = Matrix::load(&root, &matrix)?;
            let target = bounce::bisect::pick(&m, series.as_deref(), on.as_deref())?;
            let noise = NoiseTable::load(&root.join(stats::noise::FILE))?;
            let opts = args.options(&root, matrix, None);
            let b = bounce::bisect::bisect(&root, &cache, &opts, target, &noise).await?;
            outln!("{}", b.text().trim_end_matches('\n'));
            Ok(b.exit_code())
        }
        Command::Calibrate { drift, .. } if !drift.is_empty() => {
            let baselines = root.join("results/baselines");
            let mut runs = Vec::new();
            for r in &drift {
                let dir = RunDir::resolve(r, &baselines)?;
                // A same-run night boots its last good build beside its own
                // kernel: tonight's boots are the ones that span nights.
                let mut cells = dir.read_cells()?;
                cells.retain(|c| !c.key.kernel.ends_with(bounce::matrix::GOOD_SUFFIX));
                one_kernel(&cells, r)?;
                runs.push((dir.name(), dir.read_env()?, cells));
            }
            stats::noise::check_drift_runs(&mut runs)?;
            let path = root.join(stats::noise::FILE);
            let mut table = NoiseTable::load(&path)?;
            let measured = NoiseTable::measure_drift(&runs);
            outln!("{}", report::drift(&runs, &measured));
            table.merge(measured);
            table.save(&path)?;
            outln!("stored in {}", path.display());
            Ok(0)
        }
        Command::Calibrate { matrix, run: stored, power: true, nights, power_nights, .. } => {
            let matrix = matrix.unwrap_or_else(|| root.join("nightly.yaml"));
            let m = Matrix::load(&root, &matrix)?;
            let baselines = root.join("results/baselines");
            let source = stored.map(|p| p.display().to_string()).unwrap_or_else(|| "nightly-tcg".into());
            let run = RunDir::resolve(&source, &baselines)?;
            let mut cells = run.read_cells()?;
            // Tonight's side is judged by today's declarations (floors,
            // gates, the instruction clock's rule for counted metrics).
            for c in &mut cells {
                let w = bounce::workload::Workload::load(&root, &c.key.workload).ok();
                for (k, m) in c.metrics.iter_mut() {
                    let today = w.as_ref().and_then(|w| w.declaration_for(k)).unwrap_or_else(|| m.decl.clone());
                    m.decl = today.on_clock(c.accel.clock);
                }
            }
            one_kernel(&cells, &source)?;
            let n_base = cells.iter().map(|c| c.reps.len()).min().unwrap_or(0);
            if n_base < 2 || nights == 0 {
                return Err(Failure::input(format!(
                    "{source}: a cell with {n_base} boots (or --nights 0): nothing to draw"
                )));
            }
            let (noise, _) = NoiseTable::load(&root.join(stats::noise::FILE))?.applicable(&run.read_env()?);
            // The nightly gate is same-run A/B: both sides boot the
            // matrix's repetitions, drawn here from the one stored run.
            let reps = m.spec.repetitions as usize;
            let sizes = (reps, reps);
            let rates: Vec<_> = [stats::errors::Draw::Resampled, stats::errors::Draw::Modelled]
                .into_iter()
                .map(|d| {
                    stats::errors::measure(
                        &cells,
                        &noise,
                        sizes,
                        (nights, power_nights),
                        &[10.0, 15.0, 25.0],
                        d,
                        0x5eed,
                    )
                })
                .collect();
            outln!("{}", report::error_rates(&source, n_base, &rates));
            Ok(0)
        }
        Command::Calibrate { matrix, kernel, reps, machine, results, seed, run: stored, .. } => {
            let matrix = matrix.unwrap_or_else(|| root.join("matrix.yaml"));
            let m = Matrix::load(&root, &matrix)?;
            let kernel = kernel.unwrap_or_else(|| m.kernels[0].clone());
            if reps < 6 {
                return Err(Failure::input(format!(
                    "--reps {reps}: calibration needs at least 6 boots a cell (3 an arm) to measure noise"
                )));
            }
            let out = match stored {
                Some(dir) => {
                    let run = RunDir::open(&dir)?;
                    let cells = run.read_cells()?;
                    one_kernel(&cells, &dir.display().to_string())?;
                    let worst = report::status(&cells).1;
                    run::Outcome { run, cells, worst, interrupted: None }
                }
                None => {
                    let opts = run::Options {
                        matrix,
                        results: results.unwrap_or_else(|| root.join("results")),
                        machine,
                        repetitions: Some(reps),
                        seed,
                        kernels: Some(vec![kernel.clone()]),
                        resume: None,
                        shard: None,
                        last_good: None,
                        jobs: None,
                    };
                    run::run(&root, &cache, &opts).await?
                }
            };
            if let Some(code) = out.interrupted {
                return Ok(code);
            }
            let reps = out.cells.iter().map(|c| c.reps.len()).min().unwrap_or(0) as u32;
            if let Some(c) = out.worst {
                outln!("{}", report::status(&out.cells).0);
                return Err(Failure::new(c, "calibration needs every boot to pass; nothing was stored"));
            }
            let path = root.join(stats::noise::FILE);
            let mut table = NoiseTable::load(&path)?;
            let env = out.run.read_env()?;
            let measured = NoiseTable::measure(&out.cells, &out.run.name(), &env);
            let n = measured.figures.len();
            table.merge(measured);
            table.save(&path)?;
            let (table, _) = table.applicable(&env);
            let (aa, g) = stats::calibrate::aa_table(&out.cells, &table);
            let sizes = (reps as usize, m.spec.repetitions as usize);
            let mde = stats::calibrate::mde_table(&out.cells, &table, sizes.0, sizes.1);
            let mut text = report::calibration(&aa, &g, &mde, sizes);
            text.push_str(&format!(
                "\n{n} noise figures stored in {}; keep this run as the baseline with:\n  bounce baseline save {} NAME\n",
                path.display(),
                out.run.path.display()
            ));
            out.run.write_text("calibration.txt", &text)?;
            outln!("{text}");
            // A calibration whose own A/A raises an alarm is not one to trust.
            Ok(if g.regressions.is_empty() { 0 } else { FailureClass::Regression.exit_code() })
        }
        Command::Baseline { command: BaselineCommand::Save { run, name } } => {
            let src = RunDir::open(&run)?;
            let cells = src.read_cells()?;
            if let Some(c) = report::status(&cells).1 {
                return Err(Failure::new(c, format!("{}: a run with failed cells is no baseline", run.display())));
            }
            let dest = src.save_baseline(&root.join("results/baselines"), &name)?;
            outln!("baseline {name}: {} cells saved in {}", cells.len(), dest.path.display());
            Ok(0)
        }
        Command::Compare { base, new, gate, allow_env_mismatch, markdown } => {
            let baselines = root.join("results/baselines");
            let (b, n) = (RunDir::resolve(&base, &baselines)?, RunDir::resolve(&new, &baselines)?);
            let noise = NoiseTable::load(&root.join(stats::noise::FILE))?;
            let (benv, bcells, nenv, ncells) = (b.read_env()?, b.read_cells()?, n.read_env()?, n.read_cells()?);
            let t = stats::compare::across_runs(
                (&base, &benv, &bcells),
                (&new, &nenv, &ncells),
                allow_env_mismatch,
                &noise,
                stats::compare::Drift::Widen,
            )?;
            outln!("{}\n{}", report::METHOD, report::render(&t, markdown));
            let mode = report::GateMode::Stored { baseline: base.clone() };
            let (summary, code) = report::gate_text(&stats::compare::gate(std::slice::from_ref(&t)), &mode);
            outln!("{summary}");
            Ok(if gate { code } else { 0 })
        }

        Command::Doctor => doctor(&root),
        Command::Build { variants, arch, series, b4, per_patch, config_only } => {
            if variants.is_empty() {
                return Err(Failure::input(format!(
                    "name at least one variant: {}",
                    kernel::variant::list(&root).join(", ")
                )));
            }
            let series = match (series, b4) {
                (Some(p), _) => Some(Series::load(&SeriesSource::Path(p))?),
                (None, Some(id)) => {
                    let mbox = kernel::series::fetch_b4(&id, &cache.join("b4"))?;
                    Some(Series::load(&SeriesSource::Path(mbox))?)
                }
                (None, None) if per_patch => return Err(Failure::input("--per-patch needs --series or --b4")),
                (None, None) => None,
            };
            for name in variants {
                let v = Variant::load(&root, &name)?;
                let arches = if arch.is_empty() { v.arches.clone() } else { arch.clone() };
                let mut builds = vec![v.clone()];
                if let Some(s) = &series {
                    if per_patch {
                        builds.extend((1..s.patches.len()).map(|n| v.with_series(s, Some(n))));
                    }
                    builds.push(v.with_series(s, None));
                }
                for a in &arches {
                    for b in &builds {
                        if config_only {
                            let p = kernel::build::plan(&root, &cache, b, a)?;
                            let set = kernel::config::parse_resolved(&p.resolved);
                            outln!(
                                "{} ({a}): key {}, config checked ({} options set; SWIOTLB={}, SWIOTLB_DYNAMIC={})",
                                b.name,
                                p.key,
                                set.len(),
                                set.get("SWIOTLB").map(String::as_str).unwrap_or("n"),
                                set.get("SWIOTLB_DYNAMIC").map(String::as_str).unwrap_or("n")
                            );
                            continue;
                        }
                        let k = kernel::ensure(&root, &cache, b, a).await?;
                        outln!(
                            "{} ({a}): {} ({}; {})",
                            b.name,
                            k.dir.display(),
                            k.meta.kernel_version,
                            if k.swiotlb_dynamic() { "SWIOTLB_DYNAMIC=y" } else { "SWIOTLB_DYNAMIC=n" }
                        );
                    }
                }
            }
            Ok(0)
        }
        Command::Boot { variant, profile, swiotlb, machine } => {
            // A setting of the default matrix by name, or the words themselves.
            let words = bounce::matrix::Matrix::load(&root, &root.join("matrix.yaml"))
                .ok()
                .and_then(|m| m.spec.swiotlb.get(&swiotlb).map(|s| s.args().to_string()))
                .unwrap_or_else(|| swiotlb.clone());
            bounce::guest::interactive::boot(&root, &cache, &variant, &profile, &words, machine).await
        }
        Command::Results { command: ResultsCommand::Merge { runs, into } } => {
            let shards = runs.iter().map(|r| RunDir::open(r)).collect::<Result<Vec<_>>>()?;
            let into = into.unwrap_or_else(|| runs[0].with_file_name(format!("{}-merged", shards[0].name())));
            let merged = bounce::results::merge::merge(&shards, &into)?;
            let noise = NoiseTable::load(&root.join(stats::noise::FILE))?;
            let judged = report::RunReport::load(&root, &merged, &noise)?;
            judged.write(&merged)?;
            outln!("{}", judged.render(report::Format::Text)?);
            outln!("merged {} shards into {}", shards.len(), merged.path.display());
            Ok(judged.exit_code())
        }
        Command::Cache { command: CacheCommand::Ls } => {
            outln!("{}", report::cache_table(&kernel::cache::list(&cache)?).trim_end_matches('\n'));
            Ok(0)
        }
        Command::Cache { command: CacheCommand::Gc { older_than_days } } => {
            let c = kernel::cache::gc(&cache, std::time::Duration::from_secs(older_than_days * 86400))?;
            for (p, bytes, why) in &c.removed {
                outln!("removed {} ({}): {why}", p.display(), bytesize::ByteSize(*bytes));
            }
            outln!("freed {}", bytesize::ByteSize(c.bytes()));
            Ok(0)
        }
        Command::Bench { command: BenchCommand::Build { variant, arch } } => {
            bounce::bench::build(&root, &cache, &variant, &arch).await
        }
        Command::Bench { command: BenchCommand::Boot { matrix, cell, pairs, machine } } => {
            let matrix = matrix.unwrap_or_else(|| root.join("matrix.yaml"));
            bounce::bench::boot(&root, &cache, &matrix, cell.as_deref(), pairs, machine).await
        }
        Command::Bench { command: BenchCommand::Matrix { run } } => bounce::bench::matrix(&run),
        Command::Bench { command: BenchCommand::Vng { pairs, machine } } => {
            bounce::bench::vng_ratio(&root, &cache, pairs, machine).await
        }
        Command::Schema { out } => {
            let dir = out.unwrap_or_else(|| root.join("results/schema"));
            for (name, schema) in bounce::results::store::schemas() {
                bounce::results::store::write_json(&dir.join(name), &schema)?;
                outln!("{}", dir.join(name).display());
            }
            Ok(0)
        }
        Command::Report { run, format, markdown, gate } => {
            let format = if markdown { report::Format::Markdown } else { format };
            let noise = NoiseTable::load(&root.join(stats::noise::FILE))?;
            let mut judged = report::RunReport::load(&root, &RunDir::open(&run)?, &noise)?;
            let gate_code = if gate {
                let history = (judged.env.last_good.as_ref())
                    .and_then(|g| RunDir::resolve(&g.baseline, &root.join("results/baselines")).ok())
                    .map_or(0, |b| b.read_history().len());
                let mode = report::GateMode::of_run(&judged.env, history);
                judged.judge_gate(None, mode)
            } else {
                0
            };
            outln!("{}", judged.render(format)?);
            // A broken cell or an unfinished run outranks a slow one.
            Ok(match judged.exit_code() {
                0 => gate_code,
                worse => worse,
            })
        }
    }
}

/// A baseline's builds of tonight's kernels (its own `@good` boots set
/// aside): what a same-run gate boots beside them.
fn last_good_builds(b: &RunDir) -> Result<(String, Vec<bounce::results::env::BuildMeta>)> {
    let builds = b
        .read_env()?
        .kernels
        .into_iter()
        .filter(|(label, _)| !label.contains(bounce::matrix::GOOD_SUFFIX))
        .map(|(_, build)| build)
        .collect();
    Ok((b.name(), builds))
}

fn dry(
    root: &Path,
    matrix: &Path,
    reps: Option<u32>,
    shard: Option<Shard>,
    last_good: Option<(String, Vec<bounce::results::env::BuildMeta>)>,
) -> Result<i32> {
    let mut m = Matrix::load(root, matrix)?;
    if let Some((baseline, builds)) = &last_good {
        let g = run::pin_last_good(&mut m, matrix, baseline, builds)?;
        for k in &g.kernels {
            let keys = m.variants[k].pinned.iter().map(|(a, key)| format!("{key} ({a})")).collect::<Vec<_>>();
            outln!("same-run A/B: {k} boots baseline {baseline}'s build {} beside tonight's", keys.join(", "));
        }
    }
    let (mut cells, skipped) = m.expand();
    let reps = reps.unwrap_or(m.spec.repetitions);
    outln!("{}: {} cells x {reps} repetitions = {} boots", matrix.display(), cells.len(), cells.len() as u32 * reps);
    if let Some(s) = shard {
        m.spec.repetitions = reps;
        let share = Matrix::share(m.schedule(&cells, 0), s);
        outln!("shard {s}: {} of those boots", share.len());
        cells.retain(|c| share.iter().any(|(k, _)| k == c));
    }
    let builds: Vec<String> = m.builds(&cells).iter().map(|(v, a)| format!("{v} ({a})")).collect();
    outln!("kernels to build or find in the cache: {}", builds.join(", "));
    for c in &cells {
        let p = &m.profiles[&c.profile];
        let words = p.swiotlb_words(m.spec.swiotlb[&c.swiotlb].args()).join(" ");
        outln!(
            "  {}  (kernel {}, profile {}{}, workload {}, swiotlb {}{})",
            c.id(),
            c.kernel,
            c.profile,
            if p.emulated { " [emulated]" } else { "" },
            c.workload,
            c.swiotlb,
            if words.is_empty() { String::new() } else { format!(": {words}") }
        );
    }
    for s in &skipped {
        outln!("  skip {}: {}", s.key.id(), s.why);
    }
    Ok(0)
}

fn doctor(root: &Path) -> Result<i32> {
    let mut reqs = tools::common();
    // The host's own architecture first: its QEMU is the one known to
    // install cleanly beside a backported qemu-utils.
    let mut arches = bounce::kernel::arch::all(root)?;
    arches.sort_by_key(|a| !a.qemu.ends_with(std::env::consts::ARCH));
    for a in arches {
        reqs.extend(a.requirements());
    }
    let mut missing = 0;
    for r in &reqs {
        let ok = r.is_present();
        missing += usize::from(!ok);
        outln!("{} {:<40} {:<22} {}", if ok { "ok     " } else { "MISSING" }, r.what(), r.package, r.why);
    }
    let kvm = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm");
    outln!(
        "/dev/kvm: {}",
        match kvm {
            Ok(_) => "openable (a probe guest decides at run time)".to_string(),
            Err(e) => format!("unusable ({e}): TCG"),
        }
    );
    match bounce::host::sev::host() {
        Ok(s) => outln!("SEV: available (C-bit {}, {} reduced physical bits)", s.cbitpos, s.reduced_phys_bits),
        Err(why) => outln!("SEV: not available ({why}); the sev profile is skipped, sev-emulated imitates it"),
    }
    if missing > 0 {
        tools::ensure(&reqs)?;
        outln!("installed the missing tools");
    }
    Ok(if missing > 0 && !tools::may_install() { FailureClass::Infrastructure.exit_code() } else { 0 })
}
