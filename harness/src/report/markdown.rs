//! The Markdown report, for a pull-request or merge-request comment: it
//! must fit one (GitHub holds 65,536 characters; we stay under BUDGET) and
//! say its conclusion before any table. The conclusion, the summary grid
//! and the rows that decided something come first, in tables of at most
//! six columns; the full tables follow collapsed in `<details>` for as
//! long as the budget lasts, and what does not fit is named with where it
//! is (report.txt, report.html and the cells' JSON keep everything).

use super::conclusion::{self, row_name};
use super::{fmt_value, new_table, status, summary, verdict_cell, RunReport, METHOD};
use crate::results::Status;
use crate::stats::compare::Row;
use crate::stats::NoiseSource;
use comfy_table::Cell;

/// Characters a comment may take (GitHub's limit is 65,536).
pub const BUDGET: usize = 60_000;

fn decided_table(rows: &[(&Row, bool)]) -> String {
    let mut t = new_table(true);
    t.set_header(vec!["row", "base → new (n)", "shift (HL) [95% CI]", "threshold", "verdict"]);
    for (r, gate) in rows {
        let side = |s: Option<(f64, usize)>| s.map(|(m, n)| format!("{} ({n})", fmt_value(m))).unwrap_or("n/a".into());
        let ci = r.j.ci_pct.map(|(lo, hi)| format!(" [{lo:+.1}, {hi:+.1}]")).unwrap_or_default();
        let thr = match r.j.noise_source {
            NoiseSource::Deterministic => format!("{:.1}% floor (same every boot)", r.j.threshold_pct),
            NoiseSource::Calibrated => format!("{:.1}% calibrated", r.j.threshold_pct),
            NoiseSource::Observed => format!("{:.1}% observed", r.j.threshold_pct),
        };
        t.add_row(vec![
            Cell::new(format!("{}{}", row_name(r), if r.j.gated { " *" } else { "" })),
            Cell::new(format!("{} → {} {}", side(r.j.base), side(r.j.new), r.unit)),
            Cell::new(r.j.delta_pct.map(|d| format!("{d:+.1}%{ci}")).unwrap_or("from 0".into())),
            Cell::new(thr),
            Cell::new(verdict_cell(r, *gate)),
        ]);
    }
    format!("{t}\n")
}

pub fn render(r: &RunReport) -> String {
    let mut out = String::new();
    if let Some(line) = &r.incomplete {
        out.push_str(&format!("**{line}**\n\n"));
    }
    out.push_str(&format!("## bounce run {}\n\n", r.name));
    if r.env.dirty() {
        out.push_str(&format!(
            "**{}**\n\n",
            super::dirty_warning(&r.env).iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
        ));
    }
    for p in conclusion::paragraphs(&r.cells, &r.tables, r.gate.as_deref()) {
        out.push_str(&format!("{p}\n\n"));
    }
    out.push_str(&format!("```\n{}```\n\n", summary::render(&r.head, &r.cells, &r.tables, r.gate.as_deref())));
    let decided = r.decided_rows();
    if !decided.is_empty() {
        out.push_str(&format!(
            "### Rows that decided a change ({}; * gated)\n\nThe shift is the Hodges-Lehmann estimate relative to the base median; it can differ from the ratio of the medians shown.\n\n",
            decided.len()
        ));
        out.push_str(&decided_table(&decided));
        out.push('\n');
    }
    let expected: Vec<_> = r.cells.iter().filter(|c| c.status() == Status::Fail && c.failed_as_expected()).collect();
    if !expected.is_empty() {
        out.push_str("### Expected failures\n\n");
        for c in expected {
            let why = c.expected_failure.as_ref().map(|e| e.why.as_str()).unwrap_or("");
            out.push_str(&format!("- `{}`: {why}\n", c.key.id()));
        }
        out.push('\n');
    }
    // The rest, collapsed, while it fits; a pointer for what does not.
    let mut blocks: Vec<(String, String)> =
        vec![("provenance and method".into(), format!("```\n{}```\n\n{METHOD}\n", r.header))];
    for t in &r.tables {
        let title = format!("{}{} ({} rows)", t.title, if t.gate { " [gated]" } else { "" }, t.rows.len());
        blocks.push((title, super::render(t, true)));
    }
    blocks.push(("correctness, cell by cell".into(), super::verdicts(&r.cells, true)));
    let tail = format!("```\n{}```\n", status(&r.cells).0);
    let mut left_out = Vec::new();
    for (title, body) in blocks {
        let block = format!("<details><summary>{title}</summary>\n\n{body}\n</details>\n\n");
        // Room kept for the status lines and the pointer at the end.
        if out.len() + block.len() + tail.len() + 600 <= BUDGET {
            out.push_str(&block);
        } else {
            left_out.push(title);
        }
    }
    if !left_out.is_empty() {
        out.push_str(&format!(
            "Not shown here for length: {}. They are in report.txt and report.html in the run directory {}, and the samples in its cells/*.json.\n\n",
            left_out.join("; "),
            r.name
        ));
    }
    out.push_str(&tail);
    out
}
