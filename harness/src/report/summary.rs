//! The first screen of a report: what changed, how sure, is anything
//! broken. Plain ASCII within 80 columns, so it pastes into a mailing-list
//! reply as it is; the tables below it hold the details.
//!
//! Per comparison and profile: the gated (headline) metrics that moved,
//! with their interval, and a count of the rest by verdict; then how far
//! the pools grew on each side; correctness and failures first of all.

use super::pct;
use crate::host::env::RunEnv;
use crate::results::{CellResult, Status};
use crate::stats::compare::{Row, Table};
use crate::stats::Verdict;
use std::collections::BTreeMap;

const WIDTH: usize = 80;

/// A line cut to 80 columns, marked where it was cut.
fn cut(mut l: String) -> String {
    if l.len() > WIDTH {
        l.truncate(WIDTH - 3);
        l.push_str("...");
    }
    l
}

/// The summary's first lines: the run, every kernel by version, swiotlb
/// flavour, cache key and series subjects, the host, QEMU and the
/// accelerator.
pub fn head(run: &str, env: &RunEnv) -> Vec<String> {
    let mut out = vec![cut(format!("bounce run {run} (harness {})", env.harness_rev))];
    for (name, k) in &env.kernels {
        out.push(cut(format!(
            "{name}: {} {} key {}",
            k.kernel_version,
            if k.swiotlb_dynamic { "SWIOTLB_DYNAMIC=y" } else { "SWIOTLB_DYNAMIC=n" },
            k.key
        )));
        if let Some(s) = &k.series {
            for (i, subject) in s.subjects.iter().enumerate() {
                out.push(cut(format!("  [{}/{}] {subject}", i + 1, s.subjects.len())));
            }
        }
    }
    let qemu: Vec<String> = env.qemu.values().map(|v| v.replace("emulator version ", "")).collect();
    out.push(cut(format!("host: {}, {} cores; {}", env.host.cpu_model, env.host.cores, qemu.join(", "))));
    let accel: Vec<String> = env.accel.iter().map(|(arch, a)| format!("{arch} {}", a.accel.qemu_arg())).collect();
    out.push(cut(format!("accel: {}", accel.join(", "))));
    out
}

fn ci(r: &Row) -> String {
    match r.j.ci_pct {
        Some((lo, hi)) => format!("[{lo:+.1}, {hi:+.1}]"),
        None => String::new(),
    }
}

/// One gated or decided row: name, delta, interval, verdict; the verdict
/// goes to a line of its own when the row would pass 80 columns.
fn line(r: &Row) -> String {
    // The shared axes by value only: `[default]`, `[6.12-fixed 1mib]`.
    let context: Vec<&str> = r.context.split_whitespace().map(|kv| kv.split_once('=').map_or(kv, |(_, v)| v)).collect();
    let mut name = if context.is_empty() { r.metric.clone() } else { format!("{} [{}]", r.metric, context.join(" ")) };
    if name.len() > 40 {
        name.truncate(39);
        name.push('~');
    }
    let verdict = match r.j.verdict {
        Verdict::Inconclusive => {
            format!("inconclusive (MDE {})", r.j.mde_pct.map(|m| format!("{m:.0}%")).unwrap_or("n/a".into()))
        }
        Verdict::Worse if r.j.gated => "WORSE".to_string(),
        v => v.to_string(),
    };
    // 71 columns before the verdict: the short ones fit on the line.
    let head = format!("    {name:<40} {:>8} {:<17}", pct(r.j.delta_pct), ci(r));
    if head.len() + 1 + verdict.len() <= WIDTH {
        format!("{head} {verdict}")
    } else {
        format!("{}\n{:>w$}", head.trim_end(), verdict, w = WIDTH)
    }
}

/// Words wrapped to 80 columns under an indent.
fn wrap(indent: &str, words: &[String]) -> String {
    let mut out = String::new();
    let mut cur = indent.to_string();
    for w in words {
        if cur.len() > indent.len() && cur.len() + 1 + w.len() > WIDTH {
            out.push_str(cur.trim_end());
            out.push('\n');
            cur = indent.to_string();
        }
        if cur.len() > indent.len() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if cur.len() > indent.len() {
        out.push_str(&cur);
        out.push('\n');
    }
    out
}

/// Per kernel and profile, the largest median pool growth (slabs) over
/// the workloads that grew it.
fn growth(cells: &[CellResult]) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for c in cells {
        let grown = c
            .metrics
            .iter()
            .find(|(k, _)| k.ends_with(".pool_growth_slabs"))
            .and_then(|(_, m)| crate::stats::median(&m.values()))
            .filter(|g| *g > 0.0);
        if let Some(g) = grown {
            out.entry((c.key.kernel.clone(), c.key.profile.clone()))
                .or_default()
                .push(format!("{}/{} +{g:.0}", c.key.workload, c.key.swiotlb));
        }
    }
    out
}

pub fn render(header: &[String], cells: &[CellResult], tables: &[Table], gate: Option<&str>) -> String {
    let mut out = String::new();
    for h in header {
        out.push_str(h);
        out.push('\n');
    }
    let boots: usize = cells.iter().map(|c| c.reps.len()).sum();
    let failed: Vec<&CellResult> =
        cells.iter().filter(|c| c.status() == Status::Fail && !c.failed_as_expected()).collect();
    let xfail = cells.iter().filter(|c| c.status() == Status::Fail && c.failed_as_expected()).count();
    let xpass = cells.iter().filter(|c| c.status() == Status::Pass && c.expected_failure.is_some()).count();
    out.push_str(&format!(
        "correctness: {} cells, {boots} boots: {} passed, {} FAILED, {xfail} failed as expected{}\n",
        cells.len(),
        cells.len() - failed.len() - xfail,
        failed.len(),
        if xpass > 0 { format!(", {xpass} XPASS") } else { String::new() }
    ));
    for c in &failed {
        let why = c.worst_failure().map(|f| format!("[{}] {}", f.class, f.message)).unwrap_or("no boot ran".into());
        out.push_str(&cut(format!("  FAIL {}: {why}", c.key.id())));
        out.push('\n');
    }
    if let Some(g) = gate {
        out.push_str(g.lines().next().unwrap_or(""));
        out.push('\n');
    }
    let grew = growth(cells);
    for t in tables {
        out.push('\n');
        out.push_str(&t.title);
        out.push('\n');
        let mut profiles: Vec<(&str, bool)> = Vec::new();
        for r in &t.rows {
            if !profiles.iter().any(|(p, _)| *p == r.profile) {
                profiles.push((&r.profile, r.emulated));
            }
        }
        for (p, emulated) in profiles {
            let rows: Vec<&Row> = t.rows.iter().filter(|r| r.profile == p).collect();
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for r in &rows {
                *counts.entry(r.j.verdict.label()).or_default() += 1;
            }
            let mut words = vec![format!("{p}{}: {} metrics:", if emulated { " [emulated]" } else { "" }, rows.len())];
            let n = counts.len();
            words.extend(
                counts.iter().enumerate().map(|(i, (v, c))| format!("{c} {v}{}", if i + 1 < n { "," } else { "" })),
            );
            out.push_str(&wrap("  ", &words));
            // Every gated row that was judged (the headline), then the
            // informational rows that decided a change; rows missing a
            // side (a cell that failed) are in the tally only.
            let judged = |r: &&&Row| !matches!(r.j.verdict, Verdict::Missing | Verdict::TooFew);
            for r in rows.iter().filter(|r| r.j.gated).filter(judged) {
                out.push_str(&line(r));
                out.push('\n');
            }
            let moved: Vec<&&Row> = rows
                .iter()
                .filter(|r| !r.j.gated && matches!(r.j.verdict, Verdict::Better | Verdict::Worse | Verdict::Changed))
                .collect();
            for r in moved.iter().take(4) {
                out.push_str(&line(r));
                out.push('\n');
            }
            if moved.len() > 4 {
                out.push_str(&format!("    ... {} more decided informational rows below\n", moved.len() - 4));
            }
        }
    }
    if !grew.is_empty() {
        out.push_str("\npool growth (median slabs added in a boot, by workload/swiotlb setting):\n");
        for ((kernel, profile), g) in &grew {
            let mut words = vec![format!("{kernel} {profile}:")];
            words.extend(g.iter().cloned());
            out.push_str(&wrap("  ", &words));
        }
        let still: Vec<&str> = {
            let mut k: Vec<&str> = cells.iter().map(|c| c.key.kernel.as_str()).collect();
            k.sort();
            k.dedup();
            k.into_iter().filter(|k| !grew.keys().any(|(g, _)| g == k)).collect()
        };
        if !still.is_empty() {
            out.push_str(&wrap("  ", &[format!("no growth on: {}", still.join(", "))]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::testing::cell;
    use crate::results::{Axis, Comparison};
    use crate::stats::noise::NoiseTable;

    #[test]
    fn the_summary_leads_with_correctness_and_headline_rows_within_80_columns() {
        let base: &[f64] = &[1.9, 2.0, 1.9, 2.0, 1.9, 2.0];
        let slow: &[f64] = &[2.9, 3.0, 2.9, 3.1, 2.9, 3.0];
        let mut cells = [
            cell(
                "6.12-fixed",
                &[("dmabench.map_us", true, base), ("dmabench.a_very_long_informational_metric_name_x", false, base)],
            ),
            cell(
                "6.12-dynamic",
                &[("dmabench.map_us", true, slow), ("dmabench.a_very_long_informational_metric_name_x", false, slow)],
            ),
        ];
        for c in &mut cells {
            c.reps = (0..6).map(crate::results::testing::passed).collect();
        }
        let c = Comparison { axis: Axis::Kernel, base: "6.12-fixed".into(), new: "6.12-dynamic".into(), gate: true };
        let tables = crate::stats::compare::in_run(&cells, &[c], &NoiseTable::default());
        let text = render(&["bounce run R (harness h)".into()], &cells, &tables, None);
        assert!(text.lines().all(|l| l.len() <= WIDTH && l.is_ascii()), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "correctness: 2 cells, 12 boots: 2 passed, 0 FAILED, 0 failed as expected");
        assert!(lines.iter().any(|l| l.starts_with("  sev-emulated [emulated]: 2 metrics: 2 worse")), "{text}");
        let headline = lines.iter().find(|l| l.contains("dmabench.map_us")).unwrap();
        assert!(headline.contains("%") && headline.ends_with("WORSE"), "{headline}");
        assert!(headline.contains("dmabench.map_us [default]"), "{headline}");
        assert!(lines.iter().any(|l| l.contains("a_very_long") && l.ends_with("worse")), "{text}");
    }
}
