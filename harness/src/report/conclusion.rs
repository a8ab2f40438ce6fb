//! What a comparison found and how sure, in sentences a reviewer can
//! quote: every report form opens with these. Generated from the cells and
//! the judged tables alone, so it can never say more than they do.

use crate::results::{CellResult, Status};
use crate::stats::compare::{Row, Table};
use crate::stats::{NoiseSource, Verdict, ALPHA};

/// Boots a side beyond which the conclusion stops estimating: a nightly
/// that would need more is better told "not at these noise levels".
const MAX_BOOTS: usize = 30;

/// The conclusion's paragraphs, unwrapped (each form wraps them its way).
pub fn paragraphs(cells: &[CellResult], tables: &[Table], gate: Option<&str>) -> Vec<String> {
    let mut out = vec![correctness(cells)];
    for t in tables {
        out.push(comparison(t));
    }
    if let Some(g) = gate {
        // The verdict, then what it judged against (the mode's line).
        let mut lines = g.lines();
        let head = lines.next().unwrap_or_default();
        let head = head.strip_prefix("gate: ").unwrap_or(head);
        match lines.next().map(str::trim).filter(|l| !l.starts_with("REGRESSED")) {
            Some(mode) => out.push(format!("Gate: {head}; {mode}")),
            None => out.push(format!("Gate: {head}")),
        }
    }
    out
}

fn correctness(cells: &[CellResult]) -> String {
    let boots: usize = cells.iter().map(|c| c.reps.len()).sum();
    let failed: Vec<&CellResult> = cells.iter().filter(|c| c.status() == Status::Fail).collect();
    let (expected, unexpected): (Vec<&CellResult>, Vec<&CellResult>) =
        failed.iter().partition(|c| c.failed_as_expected());
    let mut s = format!(
        "Correctness: {} of {} cells ({boots} boots) passed every boot.",
        cells.len() - failed.len(),
        cells.len()
    );
    if unexpected.is_empty() {
        s.push_str(" No cell failed unexpectedly.");
    } else {
        let names: Vec<String> = unexpected
            .iter()
            .map(|c| {
                format!(
                    "{} ({})",
                    c.key.id(),
                    c.worst_failure().map(|f| f.class.to_string()).unwrap_or("no boot".into())
                )
            })
            .collect();
        s.push_str(&format!(" {} FAILED: {}.", unexpected.len(), names.join(", ")));
    }
    if !expected.is_empty() {
        let names: Vec<String> = expected.iter().map(|c| c.key.id()).collect();
        s.push_str(&format!(" {} failed as the matrix expects (reasons below): {}.", expected.len(), names.join(", ")));
    }
    s
}

/// The row as a reader names it: metric, profile and the shared axes.
pub fn row_name(r: &Row) -> String {
    match context(r) {
        c if c.is_empty() => format!("{} on {}", r.metric, r.profile),
        c => format!("{} on {} [{c}]", r.metric, r.profile),
    }
}

/// Decided changes of one metric in one direction, as one phrase: the
/// range of the shift (and, for KiB metrics, of the MiB it is: memory a
/// smaller pool returns reads better as MiB), where, and what decided it.
fn moved(rows: &[&Row]) -> Vec<String> {
    let mut groups: Vec<(&str, Verdict, Vec<&Row>)> = Vec::new();
    for r in rows {
        match groups.iter_mut().find(|(m, v, _)| *m == r.metric && *v == r.j.verdict) {
            Some(g) => g.2.push(r),
            None => groups.push((&r.metric, r.j.verdict, vec![r])),
        }
    }
    groups
        .into_iter()
        .map(|(metric, _, g)| {
            let range = |xs: Vec<f64>, unit: &str, digits: usize| {
                let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if (hi - lo).abs() < 0.05 {
                    format!("{lo:+.digits$}{unit}")
                } else {
                    format!("{lo:+.digits$}{unit} to {hi:+.digits$}{unit}")
                }
            };
            let shift = range(g.iter().filter_map(|r| r.j.delta_pct).collect(), "%", 1);
            let mib: Vec<f64> = g
                .iter()
                .filter(|r| r.unit == "KiB")
                .filter_map(|r| Some((r.j.new?.0 - r.j.base?.0) / 1024.0))
                .collect();
            let abs = if mib.is_empty() { String::new() } else { format!(", {}", range(mib, " MiB", 1)) };
            let mut profiles: Vec<&str> = Vec::new();
            for r in &g {
                if !profiles.contains(&r.profile.as_str()) {
                    profiles.push(&r.profile);
                }
            }
            let mut contexts: Vec<String> = g.iter().map(|r| context(r)).filter(|c| !c.is_empty()).collect();
            contexts.sort();
            contexts.dedup();
            let ctx = if contexts.is_empty() { String::new() } else { format!(" [{}]", contexts.join(", ")) };
            let how = if g.iter().all(|r| r.j.noise_source == NoiseSource::Deterministic) {
                let floor = g[0].j.threshold_pct;
                let beyond = g.iter().filter(|r| r.j.delta_pct.is_none_or(|d| d.abs() > r.j.threshold_pct)).count();
                let rel = if beyond == g.len() {
                    format!("beyond its {floor:.1}% floor")
                } else if beyond == 0 {
                    format!("within its {floor:.1}% floor, so no gate fails on it")
                } else {
                    format!("{beyond} of {} beyond its {floor:.1}% floor", g.len())
                };
                format!("the same in every boot on each side, {rel}")
            } else {
                let q = g.iter().filter_map(|r| r.j.q).fold(0.0, f64::max);
                format!("q <= {q:.3}, beyond its threshold")
            };
            format!("{metric} {shift}{abs} on {}{ctx} ({how})", profiles.join(", "))
        })
        .collect()
}

fn context(r: &Row) -> String {
    r.context.split_whitespace().map(|kv| kv.split_once('=').map_or(kv, |(_, v)| v)).collect::<Vec<_>>().join(" ")
}

/// Boots a side at which a change of `threshold` would be detected with
/// the noise these boots showed, by the same MDE the tables print; None
/// beyond MAX_BOOTS or without a noise figure.
fn boots_needed(r: &Row, family: usize) -> Option<usize> {
    let sd = r.j.noise_pct?;
    let level = ALPHA / family.max(1) as f64;
    (2..=MAX_BOOTS).find(|&n| crate::stats::mde_pct(n, n, sd, level).is_some_and(|m| m <= r.j.threshold_pct))
}

fn comparison(t: &Table) -> String {
    let gated: Vec<&Row> = t.rows.iter().filter(|r| r.j.gated).collect();
    let count = |rows: &[&Row], v: &[Verdict]| rows.iter().filter(|r| v.contains(&r.j.verdict)).count();
    let mut s = format!("{}{}: ", t.title, if t.gate { " (gated)" } else { "" });
    if gated.is_empty() {
        s.push_str("no gated metric was compared.");
    } else {
        let worse: Vec<&Row> = gated.iter().copied().filter(|r| r.j.verdict == Verdict::Worse).collect();
        let better: Vec<&Row> = gated.iter().copied().filter(|r| r.j.verdict == Verdict::Better).collect();
        let still = count(&gated, &[Verdict::Same, Verdict::NoChange]);
        let open: Vec<&Row> =
            gated.iter().copied().filter(|r| matches!(r.j.verdict, Verdict::Inconclusive | Verdict::TooFew)).collect();
        let missing = count(&gated, &[Verdict::Missing]);
        s.push_str(&format!("of {} gated rows, ", gated.len()));
        let mut parts = vec![];
        if worse.is_empty() {
            parts.push("none got worse".to_string());
        } else {
            let word = if t.gate { "REGRESSED" } else { "got worse" };
            parts.push(format!("{} {word}: {}", worse.len(), moved(&worse).join("; ")));
        }
        if !better.is_empty() {
            parts.push(format!("{} got better: {}", better.len(), moved(&better).join("; ")));
        }
        if still > 0 {
            parts.push(format!("{still} are shown unchanged (the same, or within their threshold)"));
        }
        if missing > 0 {
            parts.push(format!("{missing} could not be compared because a side has no value (a failed cell)"));
        }
        s.push_str(&parts.join("; "));
        s.push('.');
        let few = open.iter().filter(|r| r.j.verdict == Verdict::TooFew).count();
        if few > 0 {
            s.push_str(&format!(
                " {few} had fewer than 2 boots on a side: nothing is decided from one boot, and one boot cannot show the noise that would say how many more are needed."
            ));
        }
        let open: Vec<&Row> = open.into_iter().filter(|r| r.j.verdict == Verdict::Inconclusive).collect();
        if !open.is_empty() {
            // The two sides of a stored-baseline gate differ (10 and 6).
            let side = |f: fn(&Row) -> Option<usize>| open.iter().filter_map(|r| f(r)).min().unwrap_or(0);
            let (b, m) = (side(|r| r.j.base.map(|b| b.1)), side(|r| r.j.new.map(|n| n.1)));
            let n = if b == m { format!("{b} boots a side") } else { format!("{b} boots (base) and {m} (new)") };
            let needs: Vec<usize> = open.iter().filter_map(|r| boots_needed(r, gated.len())).collect();
            let metrics: std::collections::BTreeSet<&str> = open.iter().map(|r| r.metric.as_str()).collect();
            s.push_str(&format!(
                " {} cannot be decided with {n} ({})",
                open.len(),
                metrics.into_iter().collect::<Vec<_>>().join(", ")
            ));
            match (needs.iter().max(), open.len() - needs.len()) {
                (Some(m), 0) => {
                    s.push_str(&format!("; at the noise they showed, about {m} boots a side would decide them."))
                }
                (Some(m), rest) => s.push_str(&format!(
                    "; at the noise they showed, about {m} boots a side would decide {} of them, and not even {MAX_BOOTS} the other {rest}.",
                    needs.len()
                )),
                (None, _) => s.push_str(&format!("; at the noise they showed, not even {MAX_BOOTS} boots a side would.")),
            }
        }
    }
    let others: Vec<&Row> = t.rows.iter().filter(|r| !r.j.gated).collect();
    let decided = others.iter().filter(|r| matches!(r.j.verdict, Verdict::Better | Verdict::Worse | Verdict::Changed));
    let decided = decided.count();
    if !others.is_empty() {
        s.push_str(&format!(" Of {} informational rows, {decided} changed decidedly.", others.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::testing::cell;
    use crate::results::{Axis, Comparison};
    use crate::stats::noise::NoiseTable;

    fn judged(base: &[f64], new: &[f64], deterministic: bool) -> (Vec<CellResult>, Vec<Table>) {
        let mut cells = vec![
            cell("6.12-fixed", &[("dmabench.map_us", true, base)]),
            cell("6.12-dynamic", &[("dmabench.map_us", true, new)]),
        ];
        for c in &mut cells {
            c.reps = (0..base.len() as u32).map(crate::results::testing::passed).collect();
            c.metrics.values_mut().for_each(|m| m.decl.deterministic = deterministic);
        }
        let c = Comparison { axis: Axis::Kernel, base: "6.12-fixed".into(), new: "6.12-dynamic".into(), gate: true };
        let tables = crate::stats::compare::in_run(&cells, &[c], &NoiseTable::default());
        (cells, tables)
    }

    #[test]
    fn names_regressions_with_what_decided_them() {
        let (cells, tables) = judged(&[2.0; 6], &[3.0; 6], true);
        let p = paragraphs(&cells, &tables, None);
        assert!(p[0].starts_with("Correctness: 2 of 2 cells (12 boots) passed every boot."), "{}", p[0]);
        assert!(p[1].contains("1 REGRESSED: dmabench.map_us +50.0% on sev-emulated [default]"), "{}", p[1]);
        assert!(p[1].contains("(the same in every boot on each side, beyond its 5.0% floor)"), "{}", p[1]);
    }

    #[test]
    fn says_what_these_boots_cannot_decide_and_how_many_would() {
        let (cells, tables) = judged(&[100.0, 95.0, 105.0], &[100.0, 90.0, 110.0], false);
        let p = paragraphs(&cells, &tables, None);
        assert!(p[1].contains("1 cannot be decided with 3 boots a side (dmabench.map_us)"), "{}", p[1]);
        assert!(p[1].contains("boots a side would"), "{}", p[1]);
    }
}
