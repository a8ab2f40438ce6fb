//! The details of a report as plain ASCII within 80 columns, for a
//! mailing-list reply: every comparison row in two lines (what moved, then
//! how sure), every cell's verdict, and the run's provenance wrapped.

use super::{fmt_value, pct, Row, Table};
use crate::results::CellResult;
use crate::stats::NoiseSource;

pub const WIDTH: usize = 80;

/// Prose wrapped to 80 columns; continuation lines indented by `indent`.
pub fn wrap(text: &str, indent: &str) -> String {
    let opts = textwrap::Options::new(WIDTH)
        .subsequent_indent(indent)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .break_words(true);
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(&textwrap::fill(line, &opts));
        out.push('\n');
    }
    out
}

/// One comparison row: `metric (unit)  base -> new  delta`, then
/// `verdict [CI]: q, threshold, MDE` under it.
fn row(r: &Row, gate: bool) -> String {
    let side = |m: Option<(f64, usize)>| m.map(|(v, n)| format!("{} ({n})", fmt_value(v))).unwrap_or("-".into());
    let name = format!("{}{} ({})", r.short_metric(), if r.j.gated { "*" } else { "" }, r.unit);
    let first = format!("  {name:<32} {:>14} -> {:<14} {:>7}", side(r.j.base), side(r.j.new), pct(r.j.delta_pct));
    let verdict = super::verdict_cell(r, gate);
    let ci = r.j.ci_pct.map(|(l, h)| format!(" [{l:+.1}, {h:+.1}]")).unwrap_or_default();
    let how = match (r.j.noise_source, r.j.q) {
        (NoiseSource::Deterministic, _) => {
            format!("the same in every boot; a change beyond the {:.1}% floor decides", r.j.threshold_pct)
        }
        (src, q) => format!(
            "q {}, threshold {}{:.1}%, MDE {}",
            q.map(|p| if p < 0.001 { "<0.001".to_string() } else { format!("{p:.3}") }).unwrap_or("-".into()),
            if src == NoiseSource::Observed { "~" } else { "" },
            r.j.threshold_pct,
            r.j.mde_pct.map(|m| format!("{m:.1}%")).unwrap_or("n/a".into())
        ),
    };
    let mut out = wrap(first.trim_end(), "      ");
    out.push_str(&wrap(&format!("      {verdict}{ci}: {how}"), "        "));
    out
}

/// A comparison, its rows grouped under `profile / workload / context`.
pub fn table(t: &Table) -> String {
    let mut out = wrap(&format!("{}{}", t.title, if t.gate { " [gated]" } else { "" }), "  ");
    let mut group = None;
    for r in t.rows.iter().filter(|r| r.j.verdict != crate::stats::Verdict::Missing) {
        let g = (r.profile.as_str(), r.workload.as_str(), r.context.as_str());
        if group != Some(g) {
            group = Some(g);
            let emulated = if r.emulated { " [emulated]" } else { "" };
            out.push_str(&wrap(&format!(" {}{emulated} / {} / {}", r.profile, r.workload, r.context), "   "));
        }
        out.push_str(&row(r, t.gate));
    }
    for l in super::missing_lines(t) {
        out.push_str(&wrap(&format!(" {l}"), "   "));
    }
    out
}

/// Every cell's correctness verdict: its name, then the evidence.
pub fn cells(cells: &[CellResult]) -> String {
    let mut out = String::from("correctness, cell by cell\n");
    for c in cells {
        let v = super::verdict_row(c);
        out.push_str(&wrap(&format!("  {}", v[0]), "      "));
        let evidence = format!("      {}: {} boots, bounced {}, growth {}, log {}", v[5], v[1], v[2], v[3], v[4]);
        out.push_str(&wrap(&evidence, "        "));
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
    fn details_are_ascii_within_80_columns_and_say_how_sure() {
        let base: &[f64] = &[1.9, 2.0, 1.9, 2.0, 1.9, 2.0];
        let slow: &[f64] = &[2.9, 3.0, 2.9, 3.1, 2.9, 3.0];
        let long = "dmabench.a_metric_name_long_enough_to_need_wrapping_on_its_own_line";
        let cells = [
            cell("6.12-fixed", &[("dmabench.map_us", true, base), (long, false, base)]),
            cell("6.12-dynamic", &[("dmabench.map_us", true, slow), (long, false, slow)]),
        ];
        let c = Comparison { axis: Axis::Kernel, base: "6.12-fixed".into(), new: "6.12-dynamic".into(), gate: true };
        let tables = crate::stats::compare::in_run(&cells, &[c], &NoiseTable::default());
        let text = format!("{}{}", table(&tables[0]), super::cells(&cells));
        assert!(text.lines().all(|l| l.len() <= WIDTH && l.is_ascii()), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        let i = lines.iter().position(|l| l.contains("map_us* (us)")).expect(&text);
        assert!(lines[i].contains("1.95 (6) -> 2.95 (6)") && lines[i].ends_with("+51.3%"), "{text}");
        assert!(lines[i + 1].trim_start().starts_with("REGRESSED [+46.2, +56.4]: q "), "{text}");
        assert!(text.contains("a_metric_name_long_enough"), "{text}");
    }
}
