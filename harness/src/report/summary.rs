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
fn cut(l: String) -> String {
    cut_to(l, WIDTH)
}

/// A line cut to `width` columns, marked where it was cut.
pub(super) fn cut_to(mut l: String, width: usize) -> String {
    if l.len() > width {
        l.truncate(width - 3);
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
    let accel: Vec<String> = env.accel.iter().map(|(arch, a)| format!("{arch} {}", a.short())).collect();
    out.push(cut(format!("accel: {}", accel.join(", "))));
    out
}

/// A verdict in one character, after the delta in a grid cell.
pub(super) fn mark(v: Verdict, gate: bool) -> char {
    match v {
        Verdict::Same => '=',
        Verdict::NoChange => '~',
        Verdict::Inconclusive => '?',
        Verdict::Better => '+',
        Verdict::Worse if gate => '!',
        Verdict::Worse => '-',
        Verdict::Changed => 'c',
        Verdict::TooFew => '<',
        Verdict::Missing => 'x',
    }
}

/// Every mark the grids use, each with one meaning (a missing delta is
/// `n/a`, never `-`, which is "worse").
pub const LEGEND: &str =
    "= same, ~ no change, ? inconclusive, + better, - worse, ! REGRESSED, x a side failed, < n<2, . not in this comparison";

const NAME: usize = 44;
const COL: usize = 9;

/// A comparison's gated rows as a grid: a line per metric and setting, a
/// column per profile (at most four to a grid, to stay within 80
/// columns), each cell the delta and its verdict's mark. Rows decided
/// either way follow with their interval.
pub(super) fn grid(t: &Table) -> String {
    grid_within(t, NAME)
}

/// The grid with `name` columns for the metric (the rest is four profile
/// columns of 9): 44 fits 80 columns, 39 a list reply's 75.
pub(super) fn grid_within(t: &Table, name_width: usize) -> String {
    let rows: Vec<&Row> = t.rows.iter().filter(|r| r.j.gated).collect();
    if rows.is_empty() {
        return "  (no gated metrics)\n".to_string();
    }
    let mut profiles: Vec<(&str, bool)> = Vec::new();
    for r in &rows {
        if !profiles.iter().any(|(p, _)| *p == r.profile) {
            profiles.push((&r.profile, r.emulated));
        }
    }
    let name = |r: &Row| {
        // The shared axes by value only: `[default]`, `[6.12-fixed 1mib]`.
        let context: Vec<&str> =
            r.context.split_whitespace().map(|kv| kv.split_once('=').map_or(kv, |(_, v)| v)).collect();
        let mut n = if context.is_empty() { r.metric.clone() } else { format!("{} [{}]", r.metric, context.join(" ")) };
        if n.len() > name_width - 2 {
            n.truncate(name_width - 3);
            n.push('~');
        }
        n
    };
    let mut lines: Vec<String> = Vec::new();
    for r in &rows {
        let n = name(r);
        if !lines.contains(&n) {
            lines.push(n);
        }
    }
    let mut out = String::new();
    for chunk in profiles.chunks(4) {
        // A long profile name goes over two header lines, split at its
        // first `-`: `sev` above `emulated*`.
        let labels: Vec<(String, String)> = chunk
            .iter()
            .map(|(p, emulated)| {
                let star = if *emulated { "*" } else { "" };
                let fit = |s: &str| if s.len() > COL - 1 { format!("{}~", &s[..COL - 2]) } else { s.to_string() };
                match p.split_once('-') {
                    Some((a, b)) if p.len() + star.len() > COL - 1 => (fit(&format!("{a}{star}")), fit(b)),
                    _ => (String::new(), fit(&format!("{p}{star}"))),
                }
            })
            .collect();
        if labels.iter().any(|(top, _)| !top.is_empty()) {
            let mut top = format!("  {:<w$}", "", w = name_width - 2);
            for (t, _) in &labels {
                top.push_str(&format!("{t:>COL$}"));
            }
            out.push_str(top.trim_end());
            out.push('\n');
        }
        let mut head = format!("  {:<w$}", "gated metric [setting]", w = name_width - 2);
        for (_, label) in &labels {
            head.push_str(&format!("{label:>COL$}"));
        }
        out.push_str(head.trim_end());
        out.push('\n');
        for line in &lines {
            let mut l = format!("  {line:<w$}", w = name_width - 2);
            let mut any = false;
            for (p, _) in chunk {
                let cell = rows.iter().find(|r| r.profile == *p && name(r) == *line);
                let text = match cell {
                    Some(r) => {
                        any = true;
                        let d = r.j.delta_pct.map(|d| format!("{d:+.1}")).unwrap_or("n/a".into());
                        format!("{d} {}", mark(r.j.verdict, t.gate))
                    }
                    None => ".".to_string(),
                };
                l.push_str(&format!("{text:>COL$}"));
            }
            if any {
                out.push_str(l.trim_end());
                out.push('\n');
            }
        }
    }
    // A deterministic row's grid cell says it all; a measured one that
    // decided also gets its interval.
    let measured = |r: &&&Row| r.j.noise_source != crate::stats::NoiseSource::Deterministic;
    for r in rows.iter().filter(measured).filter(|r| matches!(r.j.verdict, Verdict::Better | Verdict::Worse)) {
        let ci = r.j.ci_pct.map(|(lo, hi)| format!(" [{lo:+.1}, {hi:+.1}]")).unwrap_or_default();
        let v = if t.gate && r.j.verdict == Verdict::Worse { "REGRESSED".to_string() } else { r.j.verdict.to_string() };
        let mut l = format!("    {v} {} {} {}{ci}", r.profile, name(r), pct(r.j.delta_pct));
        if l.len() > name_width + 4 * COL {
            l.truncate(name_width + 4 * COL - 3);
            l.push_str("...");
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Items wrapped to 80 columns under an indent, never inside an item.
fn wrap(indent: &str, items: &[String]) -> String {
    const KEEP: char = '\u{a0}';
    let opts = textwrap::Options::new(WIDTH)
        .initial_indent(indent)
        .subsequent_indent(indent)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .break_words(false);
    let joined: Vec<String> = items.iter().map(|i| i.replace(' ', &KEEP.to_string())).collect();
    format!("{}\n", textwrap::fill(&joined.join(" "), &opts).replace(KEEP, " "))
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
    let xpass = cells.iter().filter(|c| c.xpass().is_some()).count();
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
    if !tables.is_empty() {
        out.push_str("\ngated metrics, shift (%) by profile (* emulated) and verdict:\n");
        out.push_str(&wrap("  ", &LEGEND.split(", ").map(String::from).collect::<Vec<_>>()));
    }
    for t in tables {
        out.push('\n');
        out.push_str(&cut(format!("{}{}", t.title, if t.gate { " [gated]" } else { "" })));
        out.push('\n');
        out.push_str(&grid(t));
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
        // The grid: the gated row with its delta and mark under the profile.
        let i = lines.iter().position(|l| l.starts_with("  gated metric [setting]")).expect(&text);
        assert!(lines[i - 1].trim() == "sev*" && lines[i].ends_with("emulated"), "{text}");
        assert!(lines[i + 1].starts_with("  dmabench.map_us [default]") && lines[i + 1].ends_with("+51.3 !"), "{text}");
        // Decided and measured: its interval follows the grid.
        let decided = "    REGRESSED sev-emulated dmabench.map_us [default] +51.3% [+46.2, +56.4]";
        assert!(lines.contains(&decided), "{text}");
        // Informational rows are in the tally only.
        assert!(!text.contains("a_very_long"), "{text}");
    }
}
