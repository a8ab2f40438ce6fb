//! Reports of a run, all from the one result model and the same judged
//! tables: the terminal's boxes, ASCII for a mailing list (`text`),
//! Markdown, a self-contained HTML page (`html`), JUnit (`junit`) and
//! KCIDB (`kcidb`) for CI systems, the raw JSON.

pub mod conclusion;
pub mod email;
pub mod html;
pub mod junit;
pub mod kcidb;
pub mod markdown;
pub mod summary;
pub mod text;

use crate::failure::{FailureClass, Result};
use crate::host::accel::Accel;
use crate::host::accel::Clock;
use crate::host::env::RunEnv;
use crate::kernel::cache::{BuildMeta, Listed};
use crate::matrix::Matrix;
use crate::results::store::RunDir;
use crate::results::{CellResult, RunPlan, Status};
use crate::stats::compare::{GateOutcome, Row, Table};
use crate::stats::noise::NoiseTable;
use crate::stats::{self, NoiseSource, Verdict};
use comfy_table::{presets, Cell, ContentArrangement};
use std::path::Path;

fn fmt_value(v: f64) -> String {
    if v.abs() >= 1000.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|d| format!("{d:+.1}%")).unwrap_or("-".into())
}

fn new_table(markdown: bool) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    let style = if markdown { presets::ASCII_MARKDOWN } else { presets::UTF8_FULL_CONDENSED };
    t.load_style(style).set_content_arrangement(ContentArrangement::Disabled);
    t
}

/// A row's threshold as tables show it: the floor that decides a
/// deterministic metric, `~` before noise these samples showed (no
/// calibration).
pub fn thr_cell(r: &Row) -> String {
    match r.j.noise_source {
        NoiseSource::Deterministic => format!("{:.1}% floor", r.j.threshold_pct),
        NoiseSource::Calibrated => format!("{:.1}%", r.j.threshold_pct),
        NoiseSource::Observed => format!("~{:.1}%", r.j.threshold_pct),
    }
}

/// A row's MDE as tables show it.
pub fn mde_cell(r: &Row) -> String {
    match (r.j.noise_source, r.j.mde_pct) {
        (NoiseSource::Deterministic, _) => "any > floor".to_string(),
        (_, Some(m)) => format!("{m:.1}%"),
        (_, None) => "n/a".to_string(),
    }
}

/// A row's verdict: `REGRESSED` for a gated metric worse beyond its
/// threshold in a gated table; a deterministic change below the floor is
/// `worse (< floor)`, decided but not failing.
pub fn verdict_cell(r: &Row, gate: bool) -> String {
    if gate && r.j.regressed() {
        "REGRESSED".to_string()
    } else if r.j.noise_source == NoiseSource::Deterministic
        && matches!(r.j.verdict, Verdict::Worse | Verdict::Better | Verdict::Changed)
        && r.j.delta_pct.is_some_and(|d| d.abs() <= r.j.threshold_pct)
    {
        format!("{} (< floor)", r.j.verdict.label())
    } else {
        r.j.verdict.label().to_string()
    }
}

/// One comparison as a table. `*` marks gated metrics; `thr` is the change
/// a verdict must exceed (the metric's floor or its calibrated noise, `~`
/// when that noise is only what these samples show); `MDE` the smallest
/// change these boots detect, `n/a` where no outcome at this n can decide.
pub fn render(table: &Table, markdown: bool) -> String {
    let mut t = new_table(markdown);
    t.set_header(vec![
        "profile",
        "workload",
        "cell",
        "metric",
        "unit",
        "base (n)",
        "new (n)",
        "shift (HL)",
        "95% CI",
        "q",
        "thr",
        "MDE",
        "verdict",
    ]);
    let med = |m: Option<(f64, usize)>| m.map(|(v, n)| format!("{} ({n})", fmt_value(v))).unwrap_or("-".into());
    // The terminal shows what moved; Markdown (for the record) shows all.
    let quiet = |v: Verdict| matches!(v, Verdict::Same);
    let hidden = if markdown { 0 } else { table.rows.iter().filter(|r| quiet(r.j.verdict)).count() };
    let shown = |r: &&Row| r.j.verdict != Verdict::Missing && (markdown || !quiet(r.j.verdict));
    for r in table.rows.iter().filter(shown) {
        let j = &r.j;
        let (thr, mde, verdict) = (thr_cell(r), mde_cell(r), verdict_cell(r, table.gate));
        t.add_row(vec![
            Cell::new(if r.emulated { format!("{} [emulated]", r.profile) } else { r.profile.clone() }),
            Cell::new(&r.workload),
            Cell::new(&r.context),
            Cell::new(if j.gated { format!("{}*", r.short_metric()) } else { r.short_metric().to_string() }),
            Cell::new(&r.unit),
            Cell::new(med(j.base)),
            Cell::new(med(j.new)),
            Cell::new(pct(j.delta_pct)),
            Cell::new(j.ci_pct.map(|(l, h)| format!("[{l:+.1}, {h:+.1}]")).unwrap_or("-".into())),
            Cell::new(
                j.q.map(|p| if p < 0.001 { "<0.001".to_string() } else { format!("{p:.3}") }).unwrap_or("-".into()),
            ),
            Cell::new(thr),
            Cell::new(mde),
            Cell::new(verdict),
        ]);
    }
    let mut t = if hidden > 0 {
        format!("{t}\n({hidden} deterministic rows unchanged, not shown; report.md has them)")
    } else {
        t.to_string()
    };
    for l in missing_lines(table) {
        t.push_str(&if markdown { format!("\n\n- {l}") } else { format!("\n{l}") });
    }
    let title = format!("{}{}", table.title, if table.gate { " [gated]" } else { "" });
    if markdown {
        format!("### {title}\n\n{t}\n")
    } else {
        format!("{title}\n{t}\n")
    }
}

/// The rows of `t` that could not be compared, as the lines that say why
/// instead of a row each: a side with no values at all in a cell (its
/// boots failed) is one line for all its rows, and counters present on
/// one side only (a kernel that has them) are one line per cell.
pub fn missing_lines(t: &Table) -> Vec<String> {
    // (profile, workload, context): the cell pair the rows come from.
    type Pair<'a> = (&'a str, &'a str, &'a str);
    let mut groups: Vec<(Pair, Vec<&Row>)> = Vec::new();
    for r in t.rows.iter().filter(|r| r.j.verdict == Verdict::Missing) {
        let g = (r.profile.as_str(), r.workload.as_str(), r.context.as_str());
        match groups.iter_mut().find(|(k, _)| *k == g) {
            Some((_, v)) => v.push(r),
            None => groups.push((g, vec![r])),
        }
    }
    let side_has = |g: Pair, base: bool| {
        t.rows.iter().any(|r| {
            (r.profile.as_str(), r.workload.as_str(), r.context.as_str()) == g
                && if base { r.j.base.is_some() } else { r.j.new.is_some() }
        })
    };
    groups
        .into_iter()
        .map(|(g, rows)| {
            let at = format!("{} / {} / {}", g.0, g.1, g.2);
            match (side_has(g, true), side_has(g, false)) {
                (false, _) => {
                    format!("{at}: the base side has no values (its cell failed); {} rows not compared", rows.len())
                }
                (_, false) => {
                    format!("{at}: the new side has no values (its cell failed); {} rows not compared", rows.len())
                }
                _ => {
                    let (only_base, only_new): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|r| r.j.base.is_some());
                    let names =
                        |rs: &[&Row]| rs.iter().map(|r| r.short_metric().to_string()).collect::<Vec<_>>().join(", ");
                    let mut parts = vec![];
                    if !only_base.is_empty() {
                        parts.push(format!("only the base side has {}", names(&only_base)));
                    }
                    if !only_new.is_empty() {
                        parts.push(format!("only the new side has {}", names(&only_new)));
                    }
                    format!("{at}: counters one kernel has and the other lacks: {}", parts.join("; "))
                }
            }
        })
        .collect()
}

/// How the verdicts were reached, once per report.
pub const METHOD: &str = "verdicts: one value per boot (the boot is the unit); shift = Hodges-Lehmann shift / base median (it can differ from the ratio of the medians shown); 95% CI distribution-free (Moses; none below 4 boots a side); q = exact Mann-Whitney p after Benjamini-Hochberg over the gated (*) rows of a comparison, and separately over the rest; a change is decided when q < 0.05 and |delta| > thr; `no change` when the CI lies within +-thr; otherwise `inconclusive` with the MDE (80% power) these boots and this noise allow";

/// One gated row that regressed: where, what, how much, how sure.
pub fn regression(r: &Row) -> String {
    // What decided it: the rank test's q, or the rule that needs none.
    let how = match r.j.rule() {
        Some(rule) => format!("{rule}, threshold {:.1}% (its floor)", r.j.threshold_pct),
        None => {
            format!("q {}, threshold {:.1}%", r.j.q.map(|q| format!("{q:.3}")).unwrap_or("-".into()), r.j.threshold_pct)
        }
    };
    format!(
        "{} {}.{} [{}]: {} -> {} ({}, {how})",
        r.profile,
        r.metric,
        r.context,
        r.unit,
        r.j.base.map(|(v, _)| fmt_value(v)).unwrap_or("-".into()),
        r.j.new.map(|(v, _)| fmt_value(v)).unwrap_or("-".into()),
        pct(r.j.delta_pct),
    )
}

/// What a CI system is told about one cell or one gated row: the one
/// mapping JUnit and KCIDB both draw from, so that a dashboard fed either
/// counts the same passes, failures and expected failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The code did what was asked: a cell that worked, a gated row of a
    /// gated comparison that did not regress.
    Pass,
    /// Measured, but nothing was asked of the code: a gated metric in a
    /// comparison that gates nothing (two configurations side by side), or
    /// a row these boots cannot decide. The gate passes such rows (exit 0),
    /// so no consumer may fail them.
    Measured,
    /// The code failed: a boot, workload or correctness check, or a gated
    /// metric that regressed.
    Fail,
    /// Failed as the matrix's `expect_fail` says, for the reason it gives.
    ExpectedFail,
    /// Nothing was learnt about the code: the input was bad or the machine
    /// failed (or no boot ran at all).
    Broken,
    /// A row with no values on one side (its cell failed): not compared.
    NotCompared,
}

impl Outcome {
    pub fn of_cell(c: &CellResult) -> Outcome {
        match (c.status(), c.worst_failure().map(|f| f.class)) {
            (Status::Pass, _) => Outcome::Pass,
            _ if c.failed_as_expected() => Outcome::ExpectedFail,
            (_, Some(FailureClass::Input | FailureClass::Infrastructure)) | (_, None) => Outcome::Broken,
            _ => Outcome::Fail,
        }
    }

    /// A gated row of `table`: failing only where the gate fails (`--gate`
    /// exits 7 on the same rows).
    pub fn of_row(r: &Row, table: &Table) -> Outcome {
        match r.j.verdict {
            Verdict::Missing => Outcome::NotCompared,
            Verdict::Worse if table.gate => Outcome::Fail,
            Verdict::Inconclusive | Verdict::TooFew => Outcome::Measured,
            _ if table.gate => Outcome::Pass,
            _ => Outcome::Measured,
        }
    }
}

/// The gated rows CI systems get, in every comparison a run has (gated
/// or not): the headline metrics' verdicts belong on a CI page whether or
/// not they may fail it.
pub fn ci_rows(tables: &[Table]) -> impl Iterator<Item = (&Table, &Row, Outcome)> {
    tables.iter().flat_map(|t| t.rows.iter().filter(|r| r.j.gated).map(move |r| (t, r, Outcome::of_row(r, t))))
}

/// The gate's verdict in a few lines, and its exit code (0 or 7).
/// The gate's lines with, second, what it judged against.
pub fn gate_text(g: &GateOutcome, mode: &GateMode) -> (String, i32) {
    let (text, code) = gate_summary(g);
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    (format!("{first}\n  {}\n{rest}", mode.describe()), code)
}

pub fn gate_summary(g: &GateOutcome) -> (String, i32) {
    let mut out = format!(
        "gate: {} gated metric rows, {} regressed, {} inconclusive\n",
        g.gated_rows,
        g.regressions.len(),
        g.inconclusive
    );
    for (title, r) in &g.regressions {
        out.push_str(&format!("  REGRESSED {}  [{title}]\n", regression(r)));
    }
    // Per-patch steps come before the whole series in a matrix's
    // comparisons, so the first regressed table names the patch.
    if let Some((title, _)) = g.regressions.first() {
        out.push_str(&format!("  first regressed comparison: {title}\n"));
    }
    if g.gated_rows == 0 {
        out.push_str("  (nothing gated: no gated comparison or no gated metric in these cells)\n");
    }
    if g.tables > 1 {
        out.push_str(&format!(
            "  {} gated comparisons: a tested row fails only with q < {:.4} (0.05 / {})\n",
            g.tables,
            stats::ALPHA / g.tables as f64,
            g.tables
        ));
    }
    if !g.unjudged.is_empty() {
        out.push_str(&format!("  {} of {} gated rows could not be judged:\n", g.unjudged.len(), g.gated_rows));
        for u in g.unjudged.iter().take(10) {
            out.push_str(&format!("    {u}\n"));
        }
        if g.unjudged.len() > 10 {
            out.push_str(&format!("    ... and {} more\n", g.unjudged.len() - 10));
        }
    }
    let failed = !g.regressions.is_empty() || g.judged_nothing();
    if g.judged_nothing() {
        out.push_str("  FAILED: the gate judged none of its gated rows, so it passes nothing\n");
    }
    let code = if failed { FailureClass::Regression.exit_code() } else { 0 };
    (out, code)
}

/// Failed cells with their first failure, and a one-line summary.
pub fn status(cells: &[CellResult]) -> (String, Option<FailureClass>) {
    let boots: usize = cells.iter().map(|c| c.reps.len()).sum();
    let passed: usize = cells.iter().map(|c| c.reps.iter().filter(|r| r.status == Status::Pass).count()).sum();
    let failed: Vec<&CellResult> = cells.iter().filter(|c| c.status() == Status::Fail).collect();
    let mut out = format!("{} cells, {boots} boots: {passed} passed, {} failed\n", cells.len(), boots - passed);
    let mut worst = None;
    for c in &failed {
        if let (true, Some(e), Some(f)) = (c.failed_as_expected(), &c.expected_failure, c.worst_failure()) {
            out.push_str(&format!("  XFAIL {} [{}]: {} (expected: {})\n", c.key.id(), f.class, f.message, e.why));
        } else if let Some(f) = c.worst_failure() {
            out.push_str(&format!("  FAIL {} [{}]: {}\n", c.key.id(), f.class, f.message));
            worst = worst.max(Some(f.class));
        } else {
            out.push_str(&format!("  FAIL {}: no repetition ran\n", c.key.id()));
            worst = worst.max(Some(FailureClass::Infrastructure));
        }
    }
    for c in cells {
        if let Some(e) = c.xpass() {
            out.push_str(&format!(
                "  XPASS {}: expected to fail [{}] ({}), passed: update the matrix's expect_fail\n",
                c.key.id(),
                e.class,
                e.why
            ));
        }
    }
    (out, worst)
}

/// The forms a report takes: `terminal` for a person at a TTY (the
/// tables in boxes), the rest for the record and for other programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Terminal,
    /// Plain ASCII within 80 columns: the whole report, for the record.
    Text,
    /// The review reply: conclusion, gated grid, decided rows, expected
    /// failures and a reproducer, within 75 columns and 200 lines.
    Email,
    /// The same content for a GitHub or GitLab comment.
    Markdown,
    /// One self-contained page with SVG charts.
    Html,
    Junit,
    /// KCIDB v5 JSON (checkouts, builds, tests, known issues).
    Kcidb,
    /// The raw results: env, plan and cells (results/schema/run.schema.json).
    Json,
}

impl Format {
    /// Every form a run directory keeps, and its file name.
    pub const FILES: [(Format, &'static str); 6] = [
        (Format::Text, "report.txt"),
        (Format::Email, "report.email.txt"),
        (Format::Markdown, "report.md"),
        (Format::Html, "report.html"),
        (Format::Junit, "report.junit.xml"),
        (Format::Kcidb, "report.kcidb.json"),
    ];
}

/// What a gate judged tonight's kernels against: reports say which.
#[derive(Debug, Clone, PartialEq)]
pub enum GateMode {
    /// The matrix's own gated comparisons (`--gate` alone).
    InRun,
    /// A baseline's last good builds, booted interleaved with tonight's.
    SameRun { baseline: String, history: usize, kernels: Vec<String> },
    /// A baseline's stored samples, from another run.
    Stored { baseline: String },
}

impl GateMode {
    /// How a run's own comparisons are judged: same-run A/B when it booted
    /// a baseline's last good build (`history`: the nights that baseline
    /// has saved), else within the run.
    pub fn of_run(env: &RunEnv, history: usize) -> GateMode {
        match &env.last_good {
            Some(g) => GateMode::SameRun { baseline: g.baseline.clone(), history, kernels: g.kernels.clone() },
            None => GateMode::InRun,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            GateMode::InRun => "judged within this run: each gated comparison's kernels booted interleaved".into(),
            GateMode::SameRun { baseline, history, kernels } => format!(
                "same-run A/B: {} (the last good build{} of baseline {baseline}, {history} night{} saved) booted interleaved with tonight's",
                kernels.join(", "),
                if kernels.len() == 1 { "" } else { "s" },
                if *history == 1 { "" } else { "s" },
            ),
            GateMode::Stored { baseline } => format!(
                "stored samples of baseline {baseline}: boots of another run, each tested row's threshold widened by the drift measured across runs (`bounce calibrate --drift`)"
            ),
        }
    }
}

/// A stored run judged: its records, its provenance and one table per
/// comparison of its matrix (the gate reads the same tables the report
/// shows).
pub struct RunReport {
    pub name: String,
    pub env: RunEnv,
    pub plan: RunPlan,
    pub cells: Vec<CellResult>,
    pub header: String,
    /// The summary's provenance, in the mailing list's terms.
    pub head: Vec<String>,
    pub tables: Vec<Table>,
    /// Set when the run did not boot everything it planned: the report's
    /// first line, and a non-zero exit.
    pub incomplete: Option<String>,
    /// The gate's lines, when the run was judged with `--gate`.
    pub gate: Option<String>,
}

impl RunReport {
    pub fn load(root: &Path, run: &RunDir, noise: &NoiseTable) -> Result<RunReport> {
        let env = run.read_env()?;
        let mut cells = run.read_cells()?;
        // Runs stored before records named files relative to the run.
        cells.iter_mut().for_each(CellResult::relative_paths);
        let compare = if env.compare.is_empty() {
            // A run stored before comparisons were kept with it.
            Matrix::load(root, Path::new(&env.matrix_file))?.compare
        } else {
            env.compare.clone()
        };
        let (noise, applied) = noise.applicable(&env);
        let tables = stats::compare::in_run(&cells, &compare, &noise);
        let plan = run.read_plan()?;
        let incomplete = plan.incomplete(&cells);
        let mut head = summary::head(&run.name(), &env);
        if env.dirty() {
            head.splice(1..1, dirty_warning(&env));
        }
        head.extend(applied.describe());
        Ok(RunReport {
            name: run.name(),
            header: header(run, &env),
            head,
            env,
            plan,
            cells,
            tables,
            incomplete,
            gate: None,
        })
    }

    /// Judge the gated rows (with `baseline`, a comparison against a stored
    /// run, added to the tables); the gate's exit code, 0 or 7.
    pub fn judge_gate(&mut self, baseline: Option<Table>, mode: GateMode) -> i32 {
        self.tables.extend(baseline);
        let (text, code) = gate_text(&stats::compare::gate(&self.tables), &mode);
        self.gate = Some(text);
        code
    }

    /// Every row that decided a change, with whether its table gates: what
    /// the review forms list after the grid.
    pub fn decided_rows(&self) -> Vec<(&Row, bool)> {
        self.tables
            .iter()
            .flat_map(|t| t.rows.iter().map(move |row| (row, t.gate)))
            .filter(|(row, _)| matches!(row.j.verdict, Verdict::Better | Verdict::Worse | Verdict::Changed))
            .collect()
    }

    /// The exit code a report of this run stands for: 130 for a run that
    /// did not finish, whatever its cells say; then the worst failure.
    pub fn exit_code(&self) -> i32 {
        if self.incomplete.is_some() {
            return 130;
        }
        status(&self.cells).1.map(|c| c.exit_code()).unwrap_or(0)
    }

    pub fn render(&self, format: Format) -> Result<String> {
        let style = match format {
            Format::Terminal => Style::Terminal,
            Format::Text => Style::Text,
            Format::Markdown => return Ok(markdown::render(self)),
            Format::Html => return html::render(self),
            Format::Email => return Ok(email::render(self)),
            Format::Junit => {
                return junit::render(
                    &self.name,
                    &self.env.harness_rev,
                    &self.cells,
                    &self.tables,
                    self.incomplete.as_deref(),
                )
            }
            Format::Kcidb => return kcidb::render(self),
            Format::Json => return crate::results::store::run_json(&self.env, &self.plan, &self.cells),
        };
        let body = full(self, style);
        Ok(match (&self.incomplete, style) {
            (None, _) => body,
            (Some(line), Style::Text) => format!("{}\n{body}", text::wrap(line, "  ")),
            (Some(line), Style::Terminal) => format!("{line}\n\n{body}"),
        })
    }

    /// Every file form of the report, into the run's directory.
    pub fn write(&self, run: &RunDir) -> Result<()> {
        for (format, file) in Format::FILES {
            run.write_text(file, &self.render(format)?)?;
        }
        Ok(())
    }
}

/// What `bounce calibrate --drift` prints: the runs, and for each gated
/// metric its drift and the floor a stored-samples gate gets from it.
pub fn drift(runs: &[(String, RunEnv, Vec<CellResult>)], measured: &NoiseTable) -> String {
    let mut out = format!("drift across {} runs of one kernel:\n", runs.len());
    for (name, env, cells) in runs {
        let keys: std::collections::BTreeSet<&str> = env.kernels.values().map(|b| b.key.as_str()).collect();
        out.push_str(&format!(
            "  {name}  started {}  {} cells  build {}\n",
            env.started_at,
            cells.len(),
            keys.into_iter().collect::<Vec<_>>().join(",")
        ));
    }
    let gated: std::collections::BTreeSet<String> = runs
        .iter()
        .flat_map(|(_, _, cells)| cells.iter())
        .flat_map(|c| {
            c.metrics
                .iter()
                .filter(|(_, m)| m.decl.gate)
                .map(move |(k, _)| format!("/{}/{}/{k}", c.key.profile, c.key.swiotlb))
        })
        .collect();
    let rows: Vec<(&String, f64)> = measured
        .drift
        .iter()
        .filter(|(k, _)| gated.iter().any(|g| k.ends_with(g.as_str())))
        .map(|(k, f)| (k, f.sd_pct))
        .collect();
    out.push_str(&format!(
        "gated metrics ({}): drift of the run medians, and the floor a stored-samples gate adds\n",
        rows.len()
    ));
    for (k, d) in &rows {
        let short = k.split_once('/').map(|(_, r)| r).unwrap_or(k);
        out.push_str(&format!(
            "  {short:<58} drift {d:>5.2}%  floor {:>5.1}%\n",
            // k as a stored comparison of these cells counts it: every gated row.
            stats::compare::drift_floor_pct(*d, rows.len())
        ));
    }
    out.push_str(&format!("{} drift figures in all (every metric)", measured.drift.len()));
    out
}

/// What `bounce calibrate` prints: its own A/A table and gate, and the
/// minimum detectable effect of a nightly gate on each gated metric.
pub fn calibration(
    aa: &Table,
    g: &GateOutcome,
    mde: &[stats::calibrate::MdeRow],
    (n_base, n_new): (usize, usize),
) -> String {
    let mut text = format!("{}\n{}", render(aa, false), gate_summary(g).0);
    text.push_str(&format!(
        "\nMDE of a nightly gate ({n_new} boots a cell against a baseline of {n_base}), gated metrics:\n"
    ));
    for r in mde {
        text.push_str(&format!(
            "  {:<34} {:<24} noise {:>5.1}%  threshold {:>5.1}%  MDE {}\n",
            r.cell,
            r.metric,
            r.noise_pct,
            r.threshold_pct,
            r.mde_pct.map(|x| format!("{x:.1}%")).unwrap_or("n/a (too few boots)".into())
        ));
    }
    text
}

/// The gate's measured error rates (`bounce calibrate --power`): per way
/// of drawing nights, the false alarms of an unchanged kernel and each
/// gated row's power against seeded regressions, beside the targets.
pub fn error_rates(source: &str, stored_boots: usize, rates: &[stats::errors::ErrorRates]) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    let Some(first) = rates.first() else { return t };
    let _ = writeln!(
        t,
        "Error rates of the same-run nightly gate: {} boots a cell of tonight's kernel against {} of the last good build,",
        first.n_new, first.n_base
    );
    let _ = writeln!(
        t,
        "{} gated rows, measured by running the gate itself over nights drawn from {source} ({stored_boots} boots a cell).",
        first.rows.len()
    );
    t.push_str("Both sides come from one run, as the same-run gate's do; a stored-samples gate also\n");
    t.push_str("meets drift between runs, which `bounce calibrate --drift` measures.\n");
    for e in rates {
        let _ = writeln!(
            t,
            "
{}:",
            e.draw.describe()
        );
        let upper = e.false_alarm_upper() * 100.0;
        let _ = writeln!(
            t,
            "  false alarms: {} of {} unchanged nights ({:.2} %; at most {upper:.2} % at 95 % confidence) - target <= 1 %: {}",
            e.false_alarms,
            e.nights,
            e.false_alarm_rate() * 100.0,
            if upper <= 1.0 { "met" } else if e.false_alarm_rate() <= 0.01 { "not shown at this many nights" } else { "MISSED" }
        );
        let shifts: Vec<String> =
            e.rows.first().map(|r| r.power.iter().map(|(s, _)| format!("-{s:.0}%")).collect()).unwrap_or_default();
        let _ = writeln!(
            t,
            "  power: the share of {} nights on which the gate failed on the row, by seeded change",
            e.power_nights
        );
        let _ = writeln!(
            t,
            "  {:<28} {:<22} {:>6} {:>6} {:>7} {}",
            "cell",
            "metric",
            "thresh",
            "MDE",
            "at MDE",
            shifts.iter().map(|s| format!("{s:>5}")).collect::<Vec<_>>().join(" ")
        );
        for r in &e.rows {
            let pct = |x: f64| format!("{:.0}%", x * 100.0);
            let _ = writeln!(
                t,
                "  {:<28} {:<22} {:>5.1}% {:>6} {:>7} {}",
                r.cell,
                r.metric,
                r.threshold_pct,
                r.mde_pct.map(|m| format!("{m:.1}%")).unwrap_or_else(|| "n/a".into()),
                r.at_mde.map(pct).unwrap_or_else(|| "n/a".into()),
                r.power.iter().map(|(_, p)| format!("{:>5}", pct(*p))).collect::<Vec<_>>().join(" ")
            );
        }
        // A share of power_nights nights scatters around the true power:
        // a row is short of 80 % when it is two standard errors below.
        let floor = stats::POWER - 2.0 * (stats::POWER * (1.0 - stats::POWER) / e.power_nights.max(1) as f64).sqrt();
        let weak: Vec<String> = e
            .rows
            .iter()
            .filter(|r| r.at_mde.is_some_and(|p| p < floor))
            .map(|r| format!("{} {}", r.cell, r.metric))
            .collect();
        let _ = writeln!(
            t,
            "  power at the printed MDE >= 80 % (short when under {:.0} % of {} nights): {}",
            floor * 100.0,
            e.power_nights,
            if weak.is_empty() { "met on every row".to_string() } else { format!("MISSED on {}", weak.join(", ")) }
        );
    }
    t
}

/// Said on a report's first screen when the harness that measured the
/// run had uncommitted changes. Nothing copies a run into
/// `results/published/` but a person, so the report itself must say it.
pub(super) fn dirty_warning(env: &RunEnv) -> Vec<String> {
    vec![
        format!("WARNING: harness {} had uncommitted changes:", env.harness_rev),
        "  no commit reproduces this run; publish runs of a clean tree only".to_string(),
    ]
}

/// The run's provenance. It names the run, not the directory it was read
/// from, and files by their place in the run directory: a report is read
/// where the run was copied to, not where it ran.
fn header(run: &RunDir, env: &RunEnv) -> String {
    let qemu: Vec<String> = env.qemu.values().cloned().collect();
    let mut h = format!(
        "bounce run {} (harness {})\nhost: {}, {} cores; {}\n",
        run.name(),
        env.harness_rev,
        env.host.cpu_model,
        env.host.cores,
        qemu.join(", "),
    );
    if env.dirty() {
        h.push_str(&dirty_warning(env).join("\n"));
        h.push('\n');
    }
    if !run.path.join("guests").is_dir() {
        h.push_str("guest logs (guests/CELL/rep-N/) are not kept with this copy of the run\n");
    }
    for (arch, a) in &env.accel {
        h.push_str(&format!("accel {arch}: {} ({})\n", a.short(), a.reason));
        if let Clock::Instructions(_) = a.clock {
            h.push_str(&format!(
                "  {arch} guests ran on the {}: their timings count guest instructions, repeatable whatever the host did, not seconds of real hardware\n",
                a.clock.label()
            ));
        }
    }
    for s in &env.shards {
        h.push_str(&format!("shard {}: run {}\n", s.shard, s.run));
    }
    for (name, k) in &env.kernels {
        let series = k
            .series
            .as_ref()
            .map(|s| format!(" + series {} ({} patches)", s.name, s.subjects.len()))
            .unwrap_or_default();
        h.push_str(&format!(
            "kernel {name}: {} {}{series} key {}\n",
            k.kernel_version,
            if k.swiotlb_dynamic { "SWIOTLB_DYNAMIC=y" } else { "SWIOTLB_DYNAMIC=n" },
            k.key
        ));
    }
    for (name, p) in &env.profiles {
        h.push_str(&format!("profile {name}{}: {}\n", if p.emulated { " [emulated]" } else { "" }, p.bounces_because));
    }
    if env.accel.values().any(|a| a.accel == Accel::Tcg) {
        h.push_str("note: TCG (emulated CPU): latencies are TCG's, compare them only with TCG runs\n");
    }
    h
}

/// `bounce cache ls`.
pub fn cache_table(entries: &[Listed]) -> String {
    let mut t = new_table(false);
    t.set_header(vec!["key", "variant", "arch", "version", "swiotlb", "series", "built", "took", "size", "state"]);
    for e in entries {
        let m = e.meta.as_ref();
        let f = |g: &dyn Fn(&BuildMeta) -> String| m.map(g).unwrap_or_else(|| "-".into());
        t.add_row(vec![
            e.key.clone(),
            f(&|m| m.variant.clone()),
            f(&|m| m.arch.clone()),
            f(&|m| m.kernel_version.clone()),
            f(&|m| if m.swiotlb_dynamic { "dynamic".into() } else { "fixed".into() }),
            f(&|m| m.series.as_ref().map(|s| format!("{} ({})", s.name, s.subjects.len())).unwrap_or("-".into())),
            f(&|m| m.built_at.clone()),
            f(&|m| format!("{:.0} s{}", m.duration_s, if m.incremental { " (incr.)" } else { "" })),
            bytesize::ByteSize(e.bytes).to_string(),
            (if e.intact { "ok" } else { "DAMAGED (rebuilt on next use)" }).to_string(),
        ]);
    }
    format!("{t}\n{} entries\n", entries.len())
}

/// The columns of the cell-by-cell correctness table.
pub const VERDICT_HEADER: [&str; 6] = ["cell", "boots", "bounced (median)", "pool growth", "kernel log", "verdict"];

/// One cell's correctness verdict and its bounce evidence: what went
/// through swiotlb, what the kernel log said, and whether the data came
/// back as it was sent.
pub fn verdict_row(c: &CellResult) -> Vec<String> {
    let passed = c.reps.iter().filter(|r| r.status == Status::Pass).count();
    let median = |m: &str| {
        c.metrics.iter().find(|(k, _)| k.ends_with(&format!(".{m}"))).and_then(|(_, v)| stats::median(&v.values()))
    };
    let bounced = median("bounced_bytes")
        .map(|b| bytesize::ByteSize(b as u64).to_string())
        .or_else(|| median("used_hiwater_slabs").map(|h| format!("hiwater {h:.0} slabs")))
        .unwrap_or_else(|| "-".into());
    let growth = match (median("pool_growth_slabs"), median("pools_added")) {
        (Some(g), Some(p)) if p > 0.0 => format!("+{g:.0} slabs ({p:.0} pool{})", if p == 1.0 { "" } else { "s" }),
        (Some(g), _) => format!("+{g:.0} slabs"),
        _ => "-".into(),
    };
    let findings: Vec<&crate::results::Finding> = c.reps.iter().flat_map(|r| &r.log_findings).collect();
    let expected = findings.iter().filter(|f| f.expected_because.is_some()).count();
    let log = match (findings.len() - expected, expected) {
        (0, 0) => "clean".to_string(),
        (0, e) => format!("{e} expected lines"),
        (u, _) => format!("{u} FINDINGS"),
    };
    let verdict = match (c.status(), c.failed_as_expected(), c.worst_failure()) {
        (Status::Pass, _, _) if c.xpass().is_some() => "pass (XPASS)".to_string(),
        (Status::Pass, _, _) => "pass".to_string(),
        (_, true, Some(f)) => format!("XFAIL [{}]", f.class),
        (_, _, Some(f)) => format!("FAIL [{}]", f.class),
        _ => "FAIL".to_string(),
    };
    let id = if c.emulated { format!("{} [emulated]", c.key.id()) } else { c.key.id() };
    vec![id, format!("{passed}/{}", c.reps.len()), bounced, growth, log, verdict]
}

/// Every cell's verdict as a terminal or Markdown table.
pub fn verdicts(cells: &[CellResult], markdown: bool) -> String {
    let mut t = new_table(markdown);
    t.set_header(VERDICT_HEADER.to_vec());
    for c in cells {
        t.add_row(verdict_row(c));
    }
    if markdown {
        format!("### correctness, cell by cell\n\n{t}\n")
    } else {
        format!("correctness, cell by cell\n{t}\n")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Terminal,
    Text,
}

/// The whole report for a run: the summary screen, then the provenance,
/// every comparison table and every cell, and the gate last.
fn full(r: &RunReport, style: Style) -> String {
    let text = style == Style::Text;
    let first = summary::render(&r.head, &r.cells, &r.tables, r.gate.as_deref());
    let mut out = String::new();
    // Before the conclusion: it says how far that can be trusted.
    if r.env.dirty() {
        for l in dirty_warning(&r.env) {
            out.push_str(&format!("{l}\n"));
        }
        out.push('\n');
    }
    for p in conclusion::paragraphs(&r.cells, &r.tables, r.gate.as_deref()) {
        out.push_str(&text::wrap(&p, ""));
        out.push('\n');
    }
    out.push_str(&format!("{first}\n"));
    out.push_str("details\n\n");
    out.push_str(&if text { text::wrap(&r.header, "    ") } else { r.header.clone() });
    out.push('\n');
    if !r.tables.is_empty() {
        out.push_str(&if text { text::wrap(METHOD, "") } else { format!("{METHOD}\n") });
        out.push('\n');
    }
    for t in &r.tables {
        out.push_str(&if text { text::table(t) } else { render(t, false) });
        out.push('\n');
    }
    out.push_str(&if text { text::cells(&r.cells) } else { verdicts(&r.cells, false) });
    out.push('\n');
    let mut tail = status(&r.cells).0;
    if let Some(g) = &r.gate {
        tail.push_str(&format!("\n{g}"));
    }
    out.push_str(&if text { text::wrap(&tail, "      ") } else { tail });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::testing::cell;
    use crate::results::{Axis, Comparison};

    const BASE: &[f64] = &[1.9, 2.0, 1.9, 2.0, 1.9, 2.0];
    const SLOW: &[f64] = &[2.9, 3.0, 2.9, 3.1, 2.9, 3.0];

    fn tables(gate: bool) -> Vec<Table> {
        let cells = [
            cell("a", &[("dmabench.map_us", true, BASE), ("dmabench.map_stddev_us", false, BASE)]),
            cell("b", &[("dmabench.map_us", true, SLOW), ("dmabench.map_stddev_us", false, SLOW)]),
        ];
        let c = Comparison { axis: Axis::Kernel, base: "a".into(), new: "b".into(), gate };
        stats::compare::in_run(&cells, &[c], &NoiseTable::default())
    }

    #[test]
    fn a_gated_regression_is_marked_and_counted_an_informational_one_is_not() {
        let t = tables(true);
        let text = render(&t[0], false);
        let line = |m: &str| text.lines().find(|l| l.contains(m)).unwrap_or_else(|| panic!("{m}:\n{text}")).to_string();
        assert!(line("map_us*").contains("REGRESSED"), "{text}");
        assert!(line("map_stddev_us").contains("worse") && !line("map_stddev_us").contains("REGRESSED"));
        // No calibration: the threshold is marked as the samples' own noise.
        assert!(line("map_us*").contains("~5.0%"), "{text}");
        assert!(text.starts_with("kernel: a (base) vs b (new) [gated]"), "{text}");
        let (summary, code) = gate_summary(&stats::compare::gate(&t));
        assert_eq!(code, 7);
        assert!(summary.starts_with("gate: 1 gated metric rows, 1 regressed"), "{summary}");
        assert!(summary.contains("first regressed comparison: kernel: a (base) vs b (new)"), "{summary}");
        // The same rows in an ungated comparison: shown, never a failure.
        let t = tables(false);
        assert!(!render(&t[0], false).contains("REGRESSED"));
        assert_eq!(gate_summary(&stats::compare::gate(&t)).1, 0);
        // Markdown carries the same rows for a review reply.
        assert!(render(&tables(true)[0], true).contains("| sev-emulated [emulated] | dmabench |"));
    }
}
