//! Which patch did it: a bisection over a series' prefixes, each judged
//! by the gate against the base kernel.
//!
//! The base and the whole series boot first, side by side, in one run
//! (randomised A/B order, like any matrix run). If the whole series passes
//! there is nothing to look for. Otherwise each step builds one prefix (in
//! the warm build directory the series' builds share) and boots only it;
//! its cells are judged against the base's cells of that first run, as a
//! nightly run is against its baseline. A step is bad when a gated metric
//! regressed or a cell failed that was not expected to.
//!
//! It sits above matrix/, stats/ and report/ and nothing imports it: a
//! driver, like `main`.

use crate::failure::{Failure, FailureClass, Result};
use crate::matrix::{run, Matrix, SeriesOnKernel};
use crate::results::store::RunDir;
use crate::results::{CellResult, Status};
use crate::stats::noise::NoiseTable;
use crate::{report, stats, ui};
use std::path::Path;

/// What one step found about the kernel after `patches` patches.
#[derive(Debug, Clone, PartialEq)]
pub enum PrefixVerdict {
    Passes,
    /// Gated metrics that regressed: `profile workload.metric delta`.
    Regressed(Vec<String>),
    /// A cell failed that was expected to pass (a correctness defect, a
    /// boot that never finished): worse than slow.
    Broken(FailureClass, String),
}

impl PrefixVerdict {
    pub fn is_bad(&self) -> bool {
        !matches!(self, PrefixVerdict::Passes)
    }

    /// The exit code a gate gives this finding.
    pub fn exit_code(&self) -> i32 {
        match self {
            PrefixVerdict::Passes => 0,
            PrefixVerdict::Regressed(_) => FailureClass::Regression.exit_code(),
            PrefixVerdict::Broken(c, _) => c.exit_code(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    /// Patches applied on the base kernel.
    pub patches: usize,
    pub kernel: String,
    pub run: String,
    pub finding: PrefixVerdict,
}

#[derive(Debug, Clone)]
pub struct Bisection {
    pub on: SeriesOnKernel,
    pub steps: Vec<Step>,
    /// The first patch (1-based) whose prefix is bad, when the whole
    /// series is.
    pub first_bad: Option<usize>,
    /// Stopped by a signal: its exit code.
    pub interrupted: Option<i32>,
}

impl Bisection {
    /// The finding that decides the exit code: the first bad prefix's.
    pub fn exit_code(&self) -> i32 {
        if let Some(code) = self.interrupted {
            return code;
        }
        let Some(k) = self.first_bad else { return 0 };
        self.steps.iter().find(|s| s.patches == k).map(|s| s.finding.exit_code()).unwrap_or(0)
    }

    pub fn text(&self) -> String {
        let n = self.on.prefixes.len();
        let mut out = format!(
            "bisect {} ({} patches) on {}: {} steps\n",
            self.on.series.origin.display(),
            n,
            self.on.base,
            self.steps.len()
        );
        for s in &self.steps {
            let what = match &s.finding {
                PrefixVerdict::Passes => "passes the gate".to_string(),
                PrefixVerdict::Regressed(rows) => format!("REGRESSED: {}", rows.join("; ")),
                PrefixVerdict::Broken(c, msg) => format!("BROKEN [{c}]: {msg}"),
            };
            out.push_str(&format!("  [{}/{n}] {}: {what}  (run {})\n", s.patches, s.kernel, s.run));
        }
        if self.interrupted.is_some() {
            out.push_str("interrupted: no verdict\n");
        } else {
            match self.first_bad {
                None => out.push_str("the whole series passes the gate: nothing to bisect\n"),
                Some(k) => {
                    out.push_str(&format!("first bad patch: [{k}/{n}] {}\n", self.on.series.patches[k - 1].subject))
                }
            }
        }
        out
    }
}

/// The series to bisect: named (its file's stem), or the matrix's only one.
pub fn pick(m: &Matrix, series: Option<&str>, on: Option<&str>) -> Result<SeriesOnKernel> {
    let all: Vec<&SeriesOnKernel> = m
        .series
        .iter()
        .filter(|s| series.is_none_or(|n| s.series.name == n))
        .filter(|s| on.is_none_or(|k| s.base == k))
        .collect();
    let names = || m.series.iter().map(|s| format!("{} on {}", s.series.name, s.base)).collect::<Vec<_>>().join(", ");
    match all.as_slice() {
        [one] => Ok((*one).clone()),
        [] if m.series.is_empty() => Err(Failure::input(format!(
            "{}: no `series:` to bisect (add `series: [{{path: PATCHES.mbox}}]`)",
            m.file.display()
        ))),
        [] => Err(Failure::input(format!("{}: no series matches (it has: {})", m.file.display(), names()))),
        _ => Err(Failure::input(format!(
            "{}: several series match ({}): choose with --series NAME and --on KERNEL",
            m.file.display(),
            names()
        ))),
    }
}

fn of_kernel(cells: &[CellResult], kernel: &str) -> Vec<CellResult> {
    cells.iter().filter(|c| c.key.kernel == kernel).cloned().collect()
}

/// One prefix's cells against the base's.
fn judge(base: (&RunDir, &[CellResult]), new: (&RunDir, &[CellResult]), noise: &NoiseTable) -> Result<PrefixVerdict> {
    // The worst class decides the exit code; the first broken cell is
    // named, as the run's own report names it.
    if let Some(class) = report::status(new.1).1 {
        let first = new.1.iter().find(|c| c.status() == Status::Fail && !c.failed_as_expected());
        let what = match first.and_then(|c| c.worst_failure().map(|f| (c, f))) {
            Some((c, f)) => format!("FAIL {} [{}]: {}", c.key.id(), f.class, f.message),
            None => first.map(|c| format!("FAIL {}: no repetition ran", c.key.id())).unwrap_or_default(),
        };
        return Ok(PrefixVerdict::Broken(class, what));
    }
    let (benv, nenv) = (base.0.read_env()?, new.0.read_env()?);
    let table = stats::compare::across_runs(
        (&base.0.name(), &benv, base.1),
        (&new.0.name(), &nenv, new.1),
        false,
        noise,
        // The steps boot minutes after their base, on one machine.
        stats::compare::Drift::Ignore,
    )?;
    let g = stats::compare::gate(std::slice::from_ref(&table));
    if g.regressions.is_empty() {
        return Ok(PrefixVerdict::Passes);
    }
    Ok(PrefixVerdict::Regressed(
        g.regressions
            .iter()
            .map(|(_, r)| {
                let d = r.j.delta_pct.map(|d| format!("{d:+.1}%")).unwrap_or_default();
                format!("{} {} {d}", r.profile, r.metric)
            })
            .collect(),
    ))
}

/// Bisect `on` with the matrix's cells: `opts` as for a matrix run (its
/// `kernels` is set per step).
pub async fn bisect(
    root: &Path,
    cache: &Path,
    opts: &run::Options,
    on: SeriesOnKernel,
    noise: &NoiseTable,
) -> Result<Bisection> {
    let n = on.prefixes.len();
    let with_kernels = |ks: Vec<String>| run::Options { kernels: Some(ks), resume: None, ..opts.clone() };
    let mut b = Bisection { on: on.clone(), steps: Vec::new(), first_bad: None, interrupted: None };
    ui::line(format!("bisect: the base {} and the whole series {}, side by side", on.base, on.prefixes[n - 1]));
    let first = run::run(root, cache, &with_kernels(vec![on.base.clone(), on.prefixes[n - 1].clone()])).await?;
    if first.interrupted.is_some() {
        b.interrupted = first.interrupted;
        return Ok(b);
    }
    let base_cells = of_kernel(&first.cells, &on.base);
    if let (summary, Some(class)) = report::status(&base_cells) {
        return Err(Failure::new(
            class,
            format!("the base kernel {} itself fails, nothing to bisect against:\n{summary}", on.base),
        ));
    }
    let base = (&first.run, base_cells.as_slice());
    let whole = judge(base, (&first.run, &of_kernel(&first.cells, &on.prefixes[n - 1])), noise)?;
    let bad = whole.is_bad();
    b.steps.push(Step { patches: n, kernel: on.prefixes[n - 1].clone(), run: first.run.name(), finding: whole });
    if !bad {
        return Ok(b);
    }
    // Invariant: the prefix of `good` patches passes, that of `bad` fails.
    let (mut good, mut bad) = (0, n);
    while bad - good > 1 {
        let mid = (good + bad) / 2;
        let kernel = on.prefixes[mid - 1].clone();
        ui::line(format!("bisect: {good} patches pass, {bad} fail; trying {mid}: {kernel}"));
        let step = run::run(root, cache, &with_kernels(vec![kernel.clone()])).await?;
        if step.interrupted.is_some() {
            b.interrupted = step.interrupted;
            return Ok(b);
        }
        let finding = judge(base, (&step.run, &step.cells), noise)?;
        if finding.is_bad() {
            bad = mid;
        } else {
            good = mid;
        }
        b.steps.push(Step { patches: mid, kernel, run: step.run.name(), finding });
    }
    b.first_bad = Some(bad);
    Ok(b)
}
