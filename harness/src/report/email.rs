//! The review reply (`bounce report RUN --format email`): what a reviewer
//! pastes under a patch on a mailing list. Plain ASCII within 75 columns
//! (a reply quotes it with `> ` and stays under 78), the conclusion first,
//! then the gated grid, the rows that decided something, the expected
//! failures with their reasons, how to reproduce it and where the rest
//! lives; everything else stays in the full report.

use super::conclusion::{self, row_name};
use super::{fmt_value, summary, RunReport};
use crate::results::Status;
use crate::stats::compare::Row;
use crate::stats::NoiseSource;

pub const WIDTH: usize = 75;
/// Decided rows listed before the reply points at the full report: two
/// lines each keep the default matrix's reply near 150 lines.
const MAX_ROWS: usize = 24;

fn fill(text: &str, first: &str, rest: &str) -> String {
    let opts = textwrap::Options::new(WIDTH)
        .initial_indent(first)
        .subsequent_indent(rest)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .break_words(true);
    format!("{}\n", textwrap::fill(text, &opts))
}

fn cut(l: String) -> String {
    summary::cut_to(l, WIDTH)
}

/// One decided row: where and what, the medians, the shift (the
/// Hodges-Lehmann estimate, which can differ from the medians' ratio) with
/// its interval, n, the threshold and what set it, and the verdict.
fn row(r: &Row, gate: bool) -> String {
    let side = |s: Option<(f64, usize)>| s.map(|(m, _)| fmt_value(m)).unwrap_or("n/a".into());
    let n = |s: Option<(f64, usize)>| s.map(|(_, n)| n.to_string()).unwrap_or("0".into());
    let ci = r.j.ci_pct.map(|(lo, hi)| format!(" [{lo:+.1}, {hi:+.1}]")).unwrap_or_default();
    let shift = r.j.delta_pct.map(|d| format!("shift {d:+.1}%{ci}")).unwrap_or("from 0".into());
    let thr = match r.j.noise_source {
        NoiseSource::Deterministic => format!("the same every boot, floor {:.1}%", r.j.threshold_pct),
        NoiseSource::Calibrated => format!("threshold {:.1}% (calibrated)", r.j.threshold_pct),
        NoiseSource::Observed => format!("threshold {:.1}% (as observed)", r.j.threshold_pct),
    };
    let text = format!(
        "{}: {} -> {} {} (n {}/{}), {shift}, {thr}: {}",
        row_name(r),
        side(r.j.base),
        side(r.j.new),
        r.unit,
        n(r.j.base),
        n(r.j.new),
        super::verdict_cell(r, gate)
    );
    fill(&text, "  - ", "      ")
}

pub fn render(r: &RunReport) -> String {
    let mut out = String::new();
    for h in &r.head {
        out.push_str(&cut(h.clone()));
        out.push('\n');
    }
    if let Some(line) = &r.incomplete {
        out.push_str(&fill(line, "", "  "));
    }
    out.push('\n');
    for p in conclusion::paragraphs(&r.cells, &r.tables, r.gate.as_deref()) {
        out.push_str(&fill(&p, "", ""));
        out.push('\n');
    }
    if !r.tables.is_empty() {
        out.push_str("Gated metrics, shift (%) by profile (* emulated) and verdict:\n");
        out.push_str(&fill(summary::LEGEND, "  ", "  "));
        for t in &r.tables {
            out.push('\n');
            out.push_str(&cut(format!("{}{}", t.title, if t.gate { " [gated]" } else { "" })));
            out.push('\n');
            out.push_str(&summary::grid_within(t, WIDTH - 36));
        }
        out.push('\n');
    }
    let decided = r.decided_rows();
    if !decided.is_empty() {
        out.push_str(&format!("Rows that decided a change ({}):\n", decided.len()));
        // Gated rows first, then by the size of the change.
        let mut sorted = decided.clone();
        sorted.sort_by(|a, b| {
            b.0.j
                .gated
                .cmp(&a.0.j.gated)
                .then(b.0.j.delta_pct.unwrap_or(0.0).abs().total_cmp(&a.0.j.delta_pct.unwrap_or(0.0).abs()))
        });
        for (row_, gate) in sorted.iter().take(MAX_ROWS) {
            out.push_str(&row(row_, *gate));
        }
        if sorted.len() > MAX_ROWS {
            out.push_str(&format!("  ... and {} more in report.txt\n", sorted.len() - MAX_ROWS));
        }
        out.push('\n');
    }
    let failed: Vec<_> = r.cells.iter().filter(|c| c.status() == Status::Fail).collect();
    let expected: Vec<_> = failed.iter().filter(|c| c.failed_as_expected()).collect();
    if !expected.is_empty() {
        out.push_str("Expected failures (declared in the matrix, with the reason):\n");
        for c in &expected {
            let why = c.expected_failure.as_ref().map(|e| e.why.as_str()).unwrap_or("");
            out.push_str(&fill(&format!("{}: {why}", c.key.id()), "  - ", "    "));
        }
        out.push('\n');
    }
    let unexpected: Vec<_> = failed.iter().filter(|c| !c.failed_as_expected()).collect();
    if !unexpected.is_empty() {
        out.push_str("Failures:\n");
        for c in &unexpected {
            let why = c.worst_failure().map(|f| format!("[{}] {}", f.class, f.message)).unwrap_or("no boot ran".into());
            out.push_str(&fill(&format!("{}: {why}", c.key.id()), "  - ", "    "));
        }
        out.push('\n');
    }
    out.push_str("Reproduce:\n");
    let seed = r.env.order_seed.map(|s| format!(" --seed {s}")).unwrap_or_default();
    out.push_str(&fill(&format!("bounce matrix --matrix {}{seed}", r.env.matrix_file), "  ", "    "));
    out.push_str(&fill(&format!("harness {}", r.env.harness_rev), "  ", "    "));
    for (name, k) in &r.env.kernels {
        if let Some(s) = &k.series {
            let hash =
                if s.patchset_hash.is_empty() { String::new() } else { format!(", patchset {}", s.patchset_hash) };
            out.push_str(&fill(&format!("{name}: {} patches{hash}", s.subjects.len()), "  ", "    "));
        }
    }
    out.push('\n');
    out.push_str(&fill(
        &format!(
            "Every row, cell and boot: report.txt, report.md and report.html in the run directory {} (cells/*.json are the raw samples).",
            r.name
        ),
        "",
        "",
    ));
    out
}
