use bounce::failure::{Failure, FailureClass, Result};
use bounce::host::accel::AccelRequest;
use bounce::host::tools;
use bounce::matrix::{run, Matrix};
use bounce::results::store::RunDir;
use bounce::{kernel, paths, report, ui};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
        /// List the cells and the boots it would run, and stop.
        #[arg(long)]
        dry_run: bool,
        /// Accelerator: auto probes KVM with a real guest, else TCG.
        #[arg(long, value_enum, default_value = "auto")]
        accel: AccelRequest,
        /// Override the matrix's repetition count.
        #[arg(long)]
        reps: Option<u32>,
        /// Where run directories go (default: results/ at the project root).
        #[arg(long)]
        results: Option<PathBuf>,
    },
    /// Check (and as root, install) the host tools; show the accelerator.
    Doctor,
    /// Build kernel variants (kernels/variants/NAME.yaml) into the cache.
    Build { variants: Vec<String> },
    /// Print the report of an earlier run directory.
    Report {
        run: PathBuf,
        #[arg(long)]
        markdown: bool,
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

async fn dispatch(cli: Cli) -> Result<i32> {
    let root = paths::project_root();
    let cache = paths::cache_root();
    match cli.command {
        Command::Matrix { matrix, dry_run, accel, reps, results } => {
            let matrix = matrix.unwrap_or_else(|| root.join("matrix.yaml"));
            if dry_run {
                return dry(&root, &matrix, reps);
            }
            let opts = run::Options {
                matrix,
                results: results.unwrap_or_else(|| root.join("results")),
                accel,
                repetitions: reps,
            };
            let out = run::run(&root, &cache, &opts).await?;
            let m = Matrix::load(&root, &opts.matrix)?;
            let env = out.run.read_env()?;
            let header = header(&out.run, &env);
            let text = report::full(&out.cells, &m.spec.compare, &header, false);
            out.run.write_text("report.txt", &text)?;
            out.run.write_text("report.md", &report::full(&out.cells, &m.spec.compare, &header, true))?;
            println!("{text}");
            if out.interrupted {
                return Ok(130);
            }
            Ok(out.worst.map(|c| c.exit_code()).unwrap_or(0))
        }
        Command::Doctor => doctor(&root),
        Command::Build { variants } => {
            if variants.is_empty() {
                return Err(Failure::input(format!(
                    "name at least one variant: {}",
                    kernel::variant::list(&root).join(", ")
                )));
            }
            for v in variants {
                let k = kernel::ensure(&root, &cache, &v).await?;
                println!(
                    "{v}: {} ({}; {})",
                    k.dir.display(),
                    k.meta.kernel_version,
                    if k.swiotlb_dynamic() { "SWIOTLB_DYNAMIC=y" } else { "SWIOTLB_DYNAMIC=n" }
                );
            }
            Ok(0)
        }
        Command::Report { run, markdown } => {
            let dir = RunDir::open(&run)?;
            let cells = dir.read_cells()?;
            let env = dir.read_env()?;
            let m = Matrix::load(&root, &PathBuf::from(&env.matrix_file))?;
            println!("{}", report::full(&cells, &m.spec.compare, &header(&dir, &env), markdown));
            Ok(report::status(&cells).1.map(|c| c.exit_code()).unwrap_or(0))
        }
    }
}

fn header(run: &RunDir, env: &bounce::host::env::RunEnv) -> String {
    let qemu: Vec<String> = env.qemu.values().cloned().collect();
    let mut h = format!(
        "bounce run {} (harness {})\nhost: {}, {} cores; {}; accel {} ({})\n",
        run.path.display(),
        env.harness_rev,
        env.host.cpu_model,
        env.host.cores,
        qemu.join(", "),
        env.accel.accel.qemu_arg(),
        env.accel.reason
    );
    for (name, k) in &env.kernels {
        h.push_str(&format!(
            "kernel {name}: {} {} key {}\n",
            k.kernel_version,
            if k.swiotlb_dynamic { "SWIOTLB_DYNAMIC=y" } else { "SWIOTLB_DYNAMIC=n" },
            k.key
        ));
    }
    if env.accel.accel == bounce::host::accel::Accel::Tcg {
        h.push_str("note: TCG (emulated CPU): latencies are TCG's, compare them only with TCG runs\n");
    }
    h
}

fn dry(root: &std::path::Path, matrix: &std::path::Path, reps: Option<u32>) -> Result<i32> {
    let m = Matrix::load(root, matrix)?;
    let (cells, skipped) = m.expand();
    let reps = reps.unwrap_or(m.spec.repetitions);
    println!("{}: {} cells x {reps} repetitions = {} boots", matrix.display(), cells.len(), cells.len() as u32 * reps);
    for c in &cells {
        let sw = &m.spec.swiotlb[&c.swiotlb];
        println!(
            "  {}  (kernel {}, profile {}, workload {}, swiotlb {}{})",
            c.id(),
            c.kernel,
            c.profile,
            c.workload,
            c.swiotlb,
            if sw.is_empty() { String::new() } else { format!(": {sw}") }
        );
    }
    for s in &skipped {
        println!("  skip {}: {}", s.key.id(), s.why);
    }
    Ok(0)
}

fn doctor(root: &std::path::Path) -> Result<i32> {
    let mut reqs = tools::common();
    for name in ["x86_64"] {
        reqs.extend(bounce::kernel::arch::Arch::load(root, name)?.requirements());
    }
    let mut missing = 0;
    for r in &reqs {
        let ok = r.is_present();
        missing += usize::from(!ok);
        println!("{} {:<40} {:<16} {}", if ok { "ok     " } else { "MISSING" }, r.what(), r.package, r.why);
    }
    let kvm = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm");
    println!(
        "/dev/kvm: {}",
        match kvm {
            Ok(_) => "openable (a probe guest decides at run time)".to_string(),
            Err(e) => format!("unusable ({e}): TCG"),
        }
    );
    if missing > 0 {
        tools::ensure(&reqs)?;
        println!("installed the missing tools");
    }
    Ok(if missing > 0 && !tools::may_install() { FailureClass::Infrastructure.exit_code() } else { 0 })
}
