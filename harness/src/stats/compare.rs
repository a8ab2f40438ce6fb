//! Comparisons: which cells face each other, every metric judged, and the
//! gate's decision. Rendering is the report's business.

use super::noise::NoiseTable;
use super::{correct, judge, Judgement, Verdict};
use crate::results::{Axis, CellKey, CellResult, Comparison, MetricDecl};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub profile: String,
    pub emulated: bool,
    pub workload: String,
    /// The axes the pair shares besides profile and workload.
    pub context: String,
    /// Flat `workload.metric`.
    pub metric: String,
    pub unit: String,
    #[serde(flatten)]
    pub j: Judgement,
    /// The per-boot values judged, base and new: what a chart draws.
    #[serde(skip)]
    pub samples: (Vec<f64>, Vec<f64>),
    /// The new side's cell: what a CI system files the verdict under.
    #[serde(skip)]
    pub new_cell: CellKey,
}

impl Row {
    /// The metric without its workload prefix, as tables show it.
    pub fn short_metric(&self) -> &str {
        self.metric.split_once('.').map(|(_, m)| m).unwrap_or(&self.metric)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub title: String,
    /// Its gated rows decide `--gate`.
    pub gate: bool,
    pub rows: Vec<Row>,
}

impl Table {
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(move |r| self.gate && r.j.regressed())
    }
}

pub type Pair<'a> = (&'a CellResult, &'a CellResult);

/// Every pair of cells of one run equal on all axes but `c.axis`.
pub fn pairs_in_run<'a>(cells: &'a [CellResult], c: &Comparison) -> Vec<Pair<'a>> {
    let by_key: BTreeMap<_, _> = cells.iter().map(|cell| (cell.key.clone(), cell)).collect();
    cells
        .iter()
        .filter(|cell| cell.key.axis(c.axis) == c.base)
        .filter_map(|base| by_key.get(&base.key.with_axis(c.axis, &c.new)).map(|new| (base, *new)))
        .collect()
}

/// Cells of two runs: the same cell, or, when each run holds one kernel
/// (a nightly build against last week's, a patched kernel against its
/// base), the same cell but for the kernel's name.
pub fn pairs_across<'a>(base: &'a [CellResult], new: &'a [CellResult]) -> Vec<Pair<'a>> {
    let kernels = |cells: &[CellResult]| cells.iter().map(|c| c.key.kernel.clone()).collect::<BTreeSet<_>>();
    let (bk, nk) = (kernels(base), kernels(new));
    let rename = (bk.len() == 1 && nk.len() == 1).then(|| bk.first().unwrap().clone());
    let by_key: BTreeMap<_, _> = base.iter().map(|cell| (cell.key.clone(), cell)).collect();
    new.iter()
        .filter_map(|n| {
            let key = match &rename {
                Some(k) => n.key.with_axis(Axis::Kernel, k),
                None => n.key.clone(),
            };
            by_key.get(&key).map(|b| (*b, n))
        })
        .collect()
}

/// Judge every metric of every pair. Gated metrics form one family for
/// Benjamini-Hochberg, the rest another: the hundreds of informational
/// rows cannot drown a headline regression, and cannot produce one.
pub fn judge_pairs(title: String, gate: bool, pairs: &[Pair], noise: &NoiseTable, context: &[Axis]) -> Table {
    struct Pending {
        row: (String, bool, String, String, String, String),
        new_cell: CellKey,
        decl: MetricDecl,
        base: Vec<f64>,
        new: Vec<f64>,
        noise: Option<f64>,
    }
    let mut pending = Vec::new();
    for (b, n) in pairs {
        let ctx = context.iter().map(|a| format!("{a}={}", b.key.axis(*a))).collect::<Vec<_>>().join(" ");
        let names: BTreeSet<&String> = b.metrics.keys().chain(n.metrics.keys()).collect();
        for name in names {
            // The new side's declaration rules: a baseline stored before a
            // floor or a gate changed is judged by today's declaration.
            let decl = n.metrics.get(name).or_else(|| b.metrics.get(name)).unwrap().decl.clone();
            pending.push(Pending {
                row: (
                    b.key.profile.clone(),
                    b.emulated,
                    b.key.workload.clone(),
                    ctx.clone(),
                    name.clone(),
                    decl.unit.clone(),
                ),
                new_cell: n.key.clone(),
                base: b.metrics.get(name).map(|m| m.values()).unwrap_or_default(),
                new: n.metrics.get(name).map(|m| m.values()).unwrap_or_default(),
                noise: noise.get(b, name),
                decl,
            });
        }
    }
    // Rows that held still on both sides are decided without a test, so
    // they are no part of the family the correction divides among.
    let exact: Vec<bool> =
        pending.iter().map(|p| super::held_still(&p.decl, &p.base) && super::held_still(&p.decl, &p.new)).collect();
    let gated = pending.iter().zip(&exact).filter(|(p, e)| p.decl.gate && !**e).count();
    let rest = pending.iter().zip(&exact).filter(|(p, e)| !p.decl.gate && !**e).count();
    let mut judged: Vec<Judgement> = pending
        .iter()
        .map(|p| judge(&p.decl, &p.base, &p.new, p.noise, if p.decl.gate { gated } else { rest }))
        .collect();
    for family in [true, false] {
        let idx: Vec<usize> = (0..pending.len()).filter(|&i| pending[i].decl.gate == family && !exact[i]).collect();
        let decls: Vec<&MetricDecl> = idx.iter().map(|&i| &pending[i].decl).collect();
        let samples: Vec<(&[f64], &[f64])> =
            idx.iter().map(|&i| (pending[i].base.as_slice(), pending[i].new.as_slice())).collect();
        let mut rows: Vec<Judgement> = idx.iter().map(|&i| judged[i].clone()).collect();
        correct(&decls, &samples, &mut rows);
        for (k, &i) in idx.iter().enumerate() {
            judged[i] = rows[k].clone();
        }
    }
    let rows = pending
        .into_iter()
        .zip(judged)
        .map(|(p, j)| {
            let (profile, emulated, workload, context, metric, unit) = p.row;
            Row {
                profile,
                emulated,
                workload,
                context,
                metric,
                unit,
                j,
                samples: (p.base, p.new),
                new_cell: p.new_cell,
            }
        })
        .collect();
    Table { title, gate, rows }
}

/// The tables of one run's own comparisons.
pub fn in_run(cells: &[CellResult], comparisons: &[Comparison], noise: &NoiseTable) -> Vec<Table> {
    comparisons
        .iter()
        .map(|c| {
            let context: Vec<Axis> = [Axis::Kernel, Axis::Swiotlb].into_iter().filter(|a| *a != c.axis).collect();
            let title = format!("{}: {} (base) vs {} (new)", c.axis, c.base, c.new);
            judge_pairs(title, c.gate, &pairs_in_run(cells, c), noise, &context)
        })
        .collect()
}

/// What the gate decided over a set of tables.
#[derive(Debug, Clone, Serialize)]
pub struct GateOutcome {
    /// Gated rows judged in gated comparisons.
    pub gated_rows: usize,
    /// (table title, row) of every regression.
    pub regressions: Vec<(String, Row)>,
    /// Gated rows that could not be decided either way.
    pub inconclusive: usize,
    /// Gated rows the gate could not judge (a side missing, fewer than two
    /// boots, or undecided), named: `table: metric on profile [context]`.
    pub unjudged: Vec<String>,
    /// Gated tables whose tested rows were corrected together (Bonferroni
    /// across tables on top of Benjamini-Hochberg within each).
    pub tables: usize,
}

impl GateOutcome {
    /// A gate that judged none of its gated rows passed nothing: it fails.
    pub fn judged_nothing(&self) -> bool {
        self.gated_rows > 0 && self.unjudged.len() == self.gated_rows
    }
}

/// The gate over every gated table. Each table's rows are corrected within
/// it; a gate that ORs k tables would raise k times the false alarms, so a
/// tested (not deterministic) row fails it only when its q is below
/// ALPHA / k. Deterministic rows need no test and fail when beyond their
/// floor.
pub fn gate(tables: &[Table]) -> GateOutcome {
    let gated: Vec<(&Table, &Row)> = tables
        .iter()
        .filter(|t| t.gate)
        .flat_map(|t| t.rows.iter().filter(|r| r.j.gated).map(move |r| (t, r)))
        .collect();
    let tested = |r: &Row| r.j.noise_source != super::NoiseSource::Deterministic;
    let k = tables.iter().filter(|t| t.gate && t.rows.iter().any(|r| r.j.gated && tested(r))).count().max(1);
    let regressions = tables
        .iter()
        .flat_map(|t| t.regressions().map(|r| (t.title.clone(), r.clone())))
        .filter(|(_, r)| r.j.rule().is_some() || r.j.q.is_some_and(|q| q < super::ALPHA / k as f64))
        .collect();
    let unjudged = gated
        .iter()
        .filter(|(_, r)| matches!(r.j.verdict, Verdict::Missing | Verdict::TooFew | Verdict::Inconclusive))
        .map(|(t, r)| format!("{}: {} on {} [{}]", t.title, r.metric, r.profile, r.context))
        .collect();
    GateOutcome {
        gated_rows: gated.len(),
        regressions,
        inconclusive: gated.iter().filter(|(_, r)| r.j.verdict == Verdict::Inconclusive).count(),
        unjudged,
        tables: k,
    }
}

/// How a comparison of two runs treats the drift between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drift {
    /// Runs of one session (a bisection's steps against its base run).
    Ignore,
    /// Runs hours or days apart (a stored baseline): each tested row's
    /// threshold is widened by the metric's measured drift across runs,
    /// and a tested gated row without a drift figure is not judged.
    Widen,
}

/// The floor that keeps drift alone from failing a stored-samples gate:
/// both runs' medians drift (sd `drift_pct` each, so sd sqrt(2) x drift
/// between them), and a one-sided excursion beyond it happens in 1 of
/// 100 x `rows` nights, so in at most 1 night of 100 over all `rows`.
pub fn drift_floor_pct(drift_pct: f64, rows: usize) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    let z = Normal::standard().inverse_cdf(1.0 - 0.01 / rows.max(1) as f64);
    z * std::f64::consts::SQRT_2 * drift_pct
}

/// One gated table of a new run against a base run (or baseline), after
/// checking that the two are comparable at all. Refuses, with every
/// reason, unless `allow_mismatch`.
pub fn across_runs(
    base: (&str, &crate::host::env::RunEnv, &[CellResult]),
    new: (&str, &crate::host::env::RunEnv, &[CellResult]),
    allow_mismatch: bool,
    noise: &NoiseTable,
    drift: Drift,
) -> crate::failure::Result<Table> {
    let why = base.1.incomparable(new.1);
    if !why.is_empty() && !allow_mismatch {
        return Err(crate::failure::Failure::input(format!(
            "will not compare {} with {}: {} (--allow-env-mismatch compares anyway, and says so)",
            base.0,
            new.0,
            why.join("; ")
        )));
    }
    let pairs = pairs_across(base.2, new.2);
    if pairs.is_empty() {
        return Err(crate::failure::Failure::input(format!(
            "{} and {} share no cell (same profile, workload and swiotlb setting)",
            base.0, new.0
        )));
    }
    let kernels = |cells: &[CellResult]| {
        cells.iter().map(|c| c.key.kernel.clone()).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(",")
    };
    let mut title = format!("{} [{}] (base) vs {} [{}] (new)", base.0, kernels(base.2), new.0, kernels(new.2));
    if !why.is_empty() {
        title.push_str(&format!(" -- COMPARED DESPITE: {}", why.join("; ")));
    }
    let differs = base.1.differences(new.1);
    if !differs.is_empty() {
        title.push_str(&format!(" (note: {})", differs.join("; ")));
    }
    let (noise, _) = noise.applicable(new.1);
    if drift == Drift::Ignore {
        return Ok(judge_pairs(title, true, &pairs, &noise, &[Axis::Swiotlb]));
    }
    // Tonight's declarations rule (see judge_pairs), so tonight's cells
    // carry the widened floors.
    let rows = pairs.iter().map(|(_, c)| c.metrics.values().filter(|m| m.decl.gate).count()).sum();
    let widened: Vec<CellResult> = pairs
        .iter()
        .map(|(_, tonight)| {
            let mut n = (*tonight).clone();
            for (k, m) in n.metrics.iter_mut().filter(|(_, m)| m.decl.gate) {
                if let Some(d) = noise.drift(tonight, k).filter(|d| *d > 0.0) {
                    m.decl.floor_pct = Some(m.decl.floor_pct().max(drift_floor_pct(d, rows)));
                }
            }
            n
        })
        .collect();
    let pairs: Vec<Pair> = pairs.iter().zip(&widened).map(|((b, _), n)| (*b, n)).collect();
    let mut t = judge_pairs(
        format!("{title} (stored samples, thresholds widened by across-run drift)"),
        true,
        &pairs,
        &noise,
        &[Axis::Swiotlb],
    );
    for row in &mut t.rows {
        let tested = row.j.noise_source != super::NoiseSource::Deterministic;
        let no_drift =
            widened.iter().find(|c| c.key == row.new_cell).is_none_or(|c| noise.drift(c, &row.metric).is_none());
        if row.j.gated && tested && no_drift {
            row.j.verdict = Verdict::Inconclusive;
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::env::RunEnv;
    use crate::results::testing::cell;

    fn env(cpu: &str, qemu: &str) -> RunEnv {
        crate::results::testing::env(cpu, qemu, "2026-12-07T10:00:00Z")
    }

    /// A table of drift figures for `metric` of the test cells, on `cpu`.
    fn drifting(cpu: &str, metric: &str, pct: f64) -> NoiseTable {
        let runs: Vec<(String, RunEnv, Vec<CellResult>)> = [100.0, 100.0 + pct, 100.0 - pct]
            .iter()
            .enumerate()
            .map(|(i, m)| (format!("r{i}"), env(cpu, "7.2"), vec![cell("k", &[(metric, true, &[*m, *m, *m])])]))
            .collect();
        NoiseTable::measure_drift(&runs)
    }
    const BASE: &[f64] = &[1.9, 2.0, 1.9, 2.0, 1.9, 2.0];
    const SLOW: &[f64] = &[2.5, 2.6, 2.5, 2.4, 2.5, 2.6];

    #[test]
    fn runs_of_one_kernel_each_pair_across_kernel_names_and_gate_only_gated_metrics() {
        let base = [cell("6.12-dynamic", &[("dmabench.map_us", true, BASE), ("dmabench.map_stddev_us", false, BASE)])];
        let new =
            [cell("6.12-dynamic+fix", &[("dmabench.map_us", true, SLOW), ("dmabench.map_stddev_us", false, SLOW)])];
        let e = env("cpu", "7.2");
        let drift = drifting("cpu", "dmabench.map_us", 1.0);
        let t = across_runs(("a", &e, &base), ("b", &e, &new), false, &drift, Drift::Widen).unwrap();
        assert_eq!(t.rows.len(), 2);
        let g = gate(std::slice::from_ref(&t));
        assert_eq!(g.gated_rows, 1);
        assert_eq!(g.regressions.len(), 1, "{:?}", t.rows);
        assert_eq!(g.regressions[0].1.metric, "dmabench.map_us");
        // The informational row moved as much, and is judged, but gates nothing.
        assert_eq!(t.rows.iter().find(|r| !r.j.gated).unwrap().j.verdict, Verdict::Worse);
    }

    fn gated_table(title: &str, rows: &[(&str, &[f64], &[f64], bool)]) -> Table {
        let mut b = cell("a", &[]);
        let mut n = cell("b", &[]);
        for (name, base, new, deterministic) in rows {
            let mut one = cell("a", &[(name, true, base)]);
            let mut two = cell("b", &[(name, true, new)]);
            for c in [&mut one, &mut two] {
                c.metrics.values_mut().for_each(|m| m.decl.deterministic = *deterministic);
            }
            b.metrics.extend(one.metrics);
            n.metrics.extend(two.metrics);
        }
        judge_pairs(title.into(), true, &[(&b, &n)], &NoiseTable::default(), &[])
    }

    #[test]
    fn deterministic_rows_are_no_part_of_the_corrected_family() {
        let still: &[f64] = &[5.0; 5];
        let mut rows: Vec<(&str, &[f64], &[f64], bool)> = vec![("dmabench.map_us", BASE, SLOW, false)];
        let names: Vec<String> = (0..10).map(|i| format!("memory.pool_{i}")).collect();
        for n in &names {
            rows.push((n, still, still, true));
        }
        let t = gated_table("t", &rows);
        let noisy = t.rows.iter().find(|r| r.metric == "dmabench.map_us").unwrap();
        // Alone in its family: q is its own p, not p x 11.
        assert_eq!(noisy.j.q, noisy.j.p);
        assert_eq!(noisy.j.verdict, Verdict::Worse);
    }

    #[test]
    fn a_gate_over_several_tables_corrects_across_them_and_names_what_it_could_not_judge() {
        // 4 boots a side, fully separated: p = 2/70 = 0.029.
        let (base, slow) = (&BASE[..4], &SLOW[..4]);
        let t = gated_table("one", &[("dmabench.map_us", base, slow, false)]);
        let q = t.rows[0].j.q.unwrap();
        assert!(q < crate::stats::ALPHA && q > crate::stats::ALPHA / 3.0, "q {q}");
        assert_eq!(gate(std::slice::from_ref(&t)).regressions.len(), 1);
        // The same row in three gated tables: each needs q < 0.05 / 3.
        let three = [t.clone(), gated_table("two", &[("dmabench.map_us", base, slow, false)]), t.clone()];
        let g = gate(&three);
        assert_eq!((g.tables, g.regressions.len()), (3, 0));
        // A gated row with no value on one side is counted and named; a
        // gate that judged none of its rows fails.
        let missing = gated_table("gone", &[("storage.bw_geomean", &[], BASE, false)]);
        let g = gate(std::slice::from_ref(&missing));
        assert_eq!(g.unjudged, ["gone: storage.bw_geomean on sev-emulated []"]);
        assert!(g.judged_nothing());
        let (text, code) = crate::report::gate_summary(&g);
        assert_eq!(code, 7, "{text}");
        assert!(text.contains("the gate judged none of its gated rows"), "{text}");
    }

    #[test]
    fn runs_from_different_hosts_or_qemus_are_refused_unless_allowed() {
        let base = [cell("k", &[("dmabench.map_us", true, BASE)])];
        let new = [cell("k", &[("dmabench.map_us", true, BASE)])];
        let e = across_runs(
            ("a", &env("EPYC", "7.2"), &base),
            ("b", &env("Xeon", "8.0"), &new),
            false,
            &NoiseTable::default(),
            Drift::Widen,
        )
        .unwrap_err();
        assert_eq!(e.class, crate::failure::FailureClass::Input);
        assert!(e.message.contains("host `EPYC` x2 here and `Xeon` x2 there"), "{}", e.message);
        assert!(e.message.contains("`7.2` here and `8.0` there"), "{}", e.message);
        let t = across_runs(
            ("a", &env("EPYC", "7.2"), &base),
            ("b", &env("Xeon", "7.2"), &new),
            true,
            &NoiseTable::default(),
            Drift::Ignore,
        )
        .unwrap();
        assert!(t.title.contains("COMPARED DESPITE"), "{}", t.title);
        // The compiler and the guest's root filesystem count too; the
        // harness's revision and the host's kernel are only shown.
        let (mut a, mut b) = (env("EPYC", "7.2"), env("EPYC", "7.2"));
        a.rootfs.insert("x86_64".into(), "r1".into());
        b.rootfs.insert("x86_64".into(), "r2".into());
        b.harness_rev = "abc".into();
        b.host.kernel = "6.18".into();
        let e =
            across_runs(("a", &a, &base), ("b", &b, &new), false, &NoiseTable::default(), Drift::Ignore).unwrap_err();
        assert!(e.message.contains("x86_64 guest root filesystem r1 here and r2 there"), "{}", e.message);
        b.rootfs = a.rootfs.clone();
        let t = across_runs(("a", &a, &base), ("b", &b, &new), false, &NoiseTable::default(), Drift::Ignore).unwrap();
        assert!(
            t.title.contains("(note: harness  here and abc there; host kernel  here and 6.18 there)"),
            "{}",
            t.title
        );
    }

    /// Stored samples against tonight's: a shift the size of the drift
    /// between runs does not fail the gate, a larger one does, and a tested
    /// gated row with no drift figure is not judged but named.
    #[test]
    fn a_stored_samples_gate_widens_each_tested_row_by_its_measured_drift() {
        let base = [cell("k", &[("dmabench.map_us", true, &[100.0, 102.0, 98.0, 101.0, 99.0, 100.5])])];
        let shifted = |by: f64| {
            [cell(
                "k",
                &[("dmabench.map_us", true, &[100.0 * by, 102.0 * by, 98.0 * by, 101.0 * by, 99.0 * by, 100.5 * by])],
            )]
        };
        let e = env("cpu", "7.2");
        // 4 % drift between runs: the floor is z(0.99) x sqrt(2) x 4 = 13.2 %.
        assert!((drift_floor_pct(4.0, 1) - 13.16).abs() < 0.01, "{}", drift_floor_pct(4.0, 1));
        let drift = drifting("cpu", "dmabench.map_us", 4.0);
        let d = drift.drift.values().next().unwrap().sd_pct;
        assert!((d - 4.0).abs() < 1e-9, "{d}");
        let judge = |by: f64, noise: &NoiseTable, mode: Drift| {
            let t = across_runs(("a", &e, &base), ("b", &e, &shifted(by)), false, noise, mode).unwrap();
            gate(std::slice::from_ref(&t))
        };
        // +10 %: a regression when drift is ignored, within drift when not.
        assert_eq!(judge(1.10, &drift, Drift::Ignore).regressions.len(), 1);
        let g = judge(1.10, &drift, Drift::Widen);
        assert!(g.regressions.is_empty(), "{g:?}");
        assert_eq!(judge(1.25, &drift, Drift::Widen).regressions.len(), 1);
        // Another host's drift does not apply: the row is named, unjudged.
        let g = judge(1.25, &drifting("other", "dmabench.map_us", 4.0), Drift::Widen);
        assert!(g.regressions.is_empty());
        assert_eq!(g.unjudged.len(), 1, "{g:?}");
        assert!(g.judged_nothing());
    }

    #[test]
    fn an_ungated_comparison_never_fails_the_gate() {
        let cells =
            [cell("fixed", &[("dmabench.map_us", true, BASE)]), cell("dynamic", &[("dmabench.map_us", true, SLOW)])];
        let c = Comparison { axis: Axis::Kernel, base: "fixed".into(), new: "dynamic".into(), gate: false };
        let tables = in_run(&cells, std::slice::from_ref(&c), &NoiseTable::default());
        assert_eq!(tables[0].rows[0].j.verdict, Verdict::Worse);
        assert!(gate(&tables).regressions.is_empty());
        let gated = Comparison { gate: true, ..c };
        assert_eq!(gate(&in_run(&cells, &[gated], &NoiseTable::default())).regressions.len(), 1);
    }
}
