//! Comparison tables from the one result model: terminal (UTF-8 boxes) and
//! GitHub Markdown from the same rows.

use crate::failure::{FailureClass, Result};
use crate::host::accel::Accel;
use crate::host::env::RunEnv;
use crate::kernel::cache::{BuildMeta, Listed};
use crate::matrix::{Comparison, Matrix};
use crate::results::store::RunDir;
use crate::results::{Better, CellResult, Status};
use crate::stats;
use comfy_table::{presets, Cell, ContentArrangement, Table};
use std::collections::BTreeMap;
use std::path::Path;

/// Below this relative change a difference is called noise even when the
/// interval excludes zero: TCG guests on a shared host wobble by percents.
pub const NOISE_PCT: f64 = 3.0;
const CI_LEVEL: f64 = 0.95;
/// Significance level of Welch's t-test; with the CI this is criterion's
/// rule: a change needs both p < ALPHA and an interval beyond the noise.
pub const ALPHA: f64 = 0.05;
const BOOTSTRAP_ITERATIONS: usize = 4000;

#[derive(Debug, Clone)]
pub struct Row {
    pub profile: String,
    pub workload: String,
    pub context: String,
    pub metric: String,
    pub unit: String,
    pub base: Option<(f64, usize)>,
    pub new: Option<(f64, usize)>,
    pub delta_pct: Option<f64>,
    pub ci: Option<(f64, f64)>,
    pub p: Option<f64>,
    pub verdict: String,
}

/// Rows for one comparison: every pair of cells equal on all other axes.
pub fn compare(cells: &[CellResult], c: &Comparison) -> Vec<Row> {
    let by_key: BTreeMap<_, _> = cells.iter().map(|cell| (cell.key.clone(), cell)).collect();
    let mut rows = Vec::new();
    for base in cells.iter().filter(|cell| cell.key.axis(&c.axis) == Some(c.base.as_str())) {
        let Some(new) = by_key.get(&base.key.with_axis(&c.axis, &c.new)) else {
            continue;
        };
        let context = ["kernel", "swiotlb"]
            .iter()
            .filter(|a| **a != c.axis)
            .map(|a| format!("{a}={}", base.key.axis(a).unwrap()))
            .collect::<Vec<_>>()
            .join(" ");
        let names: std::collections::BTreeSet<&String> = base.metrics.keys().chain(new.metrics.keys()).collect();
        for name in names {
            let decl = base.metrics.get(name).or_else(|| new.metrics.get(name)).unwrap().decl.clone();
            let bv = base.metrics.get(name).map(|m| m.values()).unwrap_or_default();
            let nv = new.metrics.get(name).map(|m| m.values()).unwrap_or_default();
            let bm = stats::median(&bv);
            let nm = stats::median(&nv);
            let delta = bm.zip(nm).and_then(|(b, n)| stats::delta_pct(b, n));
            let seed = name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
            let ci = stats::bootstrap_delta_ci(&bv, &nv, CI_LEVEL, BOOTSTRAP_ITERATIONS, seed);
            let p = stats::welch_p(&bv, &nv);
            let verdict = verdict(decl.better, bm, nm, ci, p, bv.len().min(nv.len()));
            rows.push(Row {
                profile: if base.emulated {
                    format!("{} [emulated]", base.key.profile)
                } else {
                    base.key.profile.clone()
                },
                workload: base.key.workload.clone(),
                context: context.clone(),
                metric: name.split_once('.').map(|(_, m)| m.to_string()).unwrap_or(name.clone()),
                unit: decl.unit.clone(),
                base: bm.map(|m| (m, bv.len())),
                new: nm.map(|m| (m, nv.len())),
                delta_pct: delta,
                ci,
                p,
                verdict,
            });
        }
    }
    rows
}

fn verdict(
    better: Better,
    b: Option<f64>,
    n: Option<f64>,
    ci: Option<(f64, f64)>,
    p: Option<f64>,
    n_min: usize,
) -> String {
    let (Some(b), Some(n)) = (b, n) else {
        return "missing".into();
    };
    if better == Better::None {
        return if b == n { "same".into() } else { "changed".into() };
    }
    let Some(p) = p else {
        return if n_min < 2 { "n<2".into() } else { "-".into() };
    };
    if p >= ALPHA {
        return "~".into();
    }
    // With a zero base there is no relative change; significance decides.
    let up = match ci {
        Some((lo, _)) if lo > NOISE_PCT => true,
        Some((_, hi)) if hi < -NOISE_PCT => false,
        Some(_) => return "~".into(),
        None if b == 0.0 && n != b => n > b,
        None => return "~".into(),
    };
    let good = up == (better == Better::Higher);
    if good {
        "better".into()
    } else {
        "worse".into()
    }
}

fn fmt_value(v: f64) -> String {
    if v.abs() >= 1000.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", fmt_value(v))
    } else {
        fmt_value(v)
    }
}

pub fn render(title: &str, rows: &[Row], markdown: bool) -> String {
    let mut t = Table::new();
    if markdown {
        t.load_style(presets::ASCII_MARKDOWN).set_content_arrangement(ContentArrangement::Disabled);
    } else {
        t.load_style(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    }
    t.set_header(vec![
        "profile", "workload", "cell", "metric", "unit", "base (n)", "new (n)", "diff", "delta", "95% CI", "p",
        "verdict",
    ]);
    let med = |m: Option<(f64, usize)>| m.map(|(v, n)| format!("{} ({n})", fmt_value(v))).unwrap_or("-".into());
    // The terminal shows what moved; Markdown (for the record) shows all.
    let hidden = if markdown { 0 } else { rows.iter().filter(|r| r.verdict == "same").count() };
    for r in rows.iter().filter(|r| markdown || r.verdict != "same") {
        t.add_row(vec![
            Cell::new(&r.profile),
            Cell::new(&r.workload),
            Cell::new(&r.context),
            Cell::new(&r.metric),
            Cell::new(&r.unit),
            Cell::new(med(r.base)),
            Cell::new(med(r.new)),
            Cell::new(r.base.zip(r.new).map(|((b, _), (n, _))| signed(n - b)).unwrap_or("-".into())),
            Cell::new(r.delta_pct.map(|d| format!("{d:+.1}%")).unwrap_or("-".into())),
            Cell::new(r.ci.map(|(l, h)| format!("[{l:+.1}, {h:+.1}]")).unwrap_or("-".into())),
            Cell::new(
                r.p.map(|p| if p < 0.001 { "<0.001".to_string() } else { format!("{p:.3}") }).unwrap_or("-".into()),
            ),
            Cell::new(&r.verdict),
        ]);
    }
    let t = if hidden > 0 {
        format!("{t}\n({hidden} informational rows unchanged, not shown; report.md has them)")
    } else {
        t.to_string()
    };
    if markdown {
        format!("### {title}\n\n{t}\n")
    } else {
        format!("{title}\n{t}\n")
    }
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
    for c in cells.iter().filter(|c| c.status() == Status::Pass) {
        if let Some(e) = &c.expected_failure {
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

/// The report of a stored run: its provenance, one table per comparison
/// of its matrix, and the failed cells.
pub fn for_run(root: &Path, run: &RunDir, cells: &[CellResult], markdown: bool) -> Result<String> {
    let env = run.read_env()?;
    let compare = if env.compare.is_empty() {
        // A run stored before comparisons were kept with it.
        Matrix::load(root, Path::new(&env.matrix_file))?.compare
    } else {
        env.compare.clone()
    };
    Ok(full(cells, &compare, &header(run, &env), markdown))
}

fn header(run: &RunDir, env: &RunEnv) -> String {
    let qemu: Vec<String> = env.qemu.values().cloned().collect();
    let mut h = format!(
        "bounce run {} (harness {})\nhost: {}, {} cores; {}\n",
        run.path.display(),
        env.harness_rev,
        env.host.cpu_model,
        env.host.cores,
        qemu.join(", "),
    );
    for (arch, a) in &env.accel {
        h.push_str(&format!("accel {arch}: {} ({})\n", a.accel.qemu_arg(), a.reason));
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
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
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

/// Every cell's correctness verdict and its bounce evidence: what went
/// through swiotlb, what the kernel log said, and whether the data came
/// back as it was sent.
pub fn verdicts(cells: &[CellResult], markdown: bool) -> String {
    let mut t = Table::new();
    if markdown {
        t.load_style(presets::ASCII_MARKDOWN).set_content_arrangement(ContentArrangement::Disabled);
    } else {
        t.load_style(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
    }
    t.set_header(vec!["cell", "boots", "bounced (median)", "pool growth", "kernel log", "verdict"]);
    for c in cells {
        let passed = c.reps.iter().filter(|r| r.status == Status::Pass).count();
        let median = |m: &str| {
            c.metrics.iter().find(|(k, _)| k.ends_with(&format!(".{m}"))).and_then(|(_, v)| stats::median(&v.values()))
        };
        let bounced = median("bounced_bytes")
            .map(|b| bytesize::ByteSize(b as u64).to_string())
            .or_else(|| median("used_hiwater_slabs").map(|h| format!("hiwater {h:.0} slabs")))
            .unwrap_or_else(|| "-".into());
        let growth = median("pool_growth_slabs").map(|g| format!("+{g:.0} slabs")).unwrap_or_else(|| "-".into());
        let findings: Vec<&crate::workload::checks::Finding> = c.reps.iter().flat_map(|r| &r.log_findings).collect();
        let expected = findings.iter().filter(|f| f.expected_because.is_some()).count();
        let log = match (findings.len() - expected, expected) {
            (0, 0) => "clean".to_string(),
            (0, e) => format!("{e} expected lines"),
            (u, _) => format!("{u} FINDINGS"),
        };
        let verdict = match (c.status(), c.failed_as_expected(), c.worst_failure()) {
            (Status::Pass, _, _) if c.expected_failure.is_some() => "pass (XPASS)".to_string(),
            (Status::Pass, _, _) => "pass".to_string(),
            (_, true, Some(f)) => format!("XFAIL [{}]", f.class),
            (_, _, Some(f)) => format!("FAIL [{}]", f.class),
            _ => "FAIL".to_string(),
        };
        let id = if c.emulated { format!("{} [emulated]", c.key.id()) } else { c.key.id() };
        t.add_row(vec![id, format!("{passed}/{}", c.reps.len()), bounced, growth, log, verdict]);
    }
    if markdown {
        format!("### correctness, cell by cell\n\n{t}\n")
    } else {
        format!("correctness, cell by cell\n{t}\n")
    }
}

/// The whole report for a run.
pub fn full(cells: &[CellResult], comparisons: &[Comparison], header: &str, markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        // The run's provenance, verbatim: Markdown would join its lines.
        out.push_str(&format!("```\n{}```\n", header));
    } else {
        out.push_str(header);
    }
    out.push('\n');
    for c in comparisons {
        let rows = compare(cells, c);
        let title = format!("{}: {} (base) vs {} (new)", c.axis, c.base, c.new);
        out.push_str(&render(&title, &rows, markdown));
        out.push('\n');
    }
    out.push_str(&verdicts(cells, markdown));
    out.push('\n');
    let status = status(cells).0;
    if markdown {
        out.push_str(&format!("```\n{status}```\n"));
    } else {
        out.push_str(&status);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_direction_significance_and_noise() {
        let v = verdict;
        let sig = Some(0.001);
        assert_eq!(v(Better::Lower, Some(10.0), Some(12.0), Some((10.0, 30.0)), sig, 5), "worse");
        assert_eq!(v(Better::Higher, Some(10.0), Some(12.0), Some((10.0, 30.0)), sig, 5), "better");
        // An interval beyond the noise is not enough without significance.
        assert_eq!(v(Better::Lower, Some(10.0), Some(12.0), Some((10.0, 30.0)), Some(0.2), 3), "~");
        assert_eq!(v(Better::Lower, Some(10.0), Some(10.1), Some((-2.0, 4.0)), sig, 5), "~");
        assert_eq!(v(Better::Lower, Some(10.0), Some(10.2), Some((1.0, 2.5)), sig, 5), "~");
        assert_eq!(v(Better::Lower, Some(10.0), Some(12.0), None, None, 1), "n<2");
        assert_eq!(v(Better::None, Some(128.0), Some(256.0), None, None, 3), "changed");
        assert_eq!(v(Better::Lower, None, Some(1.0), None, None, 0), "missing");
        // From zero failures to some: no percentage, still a regression.
        assert_eq!(v(Better::Lower, Some(0.0), Some(63.0), None, Some(0.0), 3), "worse");
        assert_eq!(v(Better::Lower, Some(10.0), Some(0.0), Some((-100.0, -100.0)), Some(0.0), 3), "better");
    }
}
