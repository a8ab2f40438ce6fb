//! One self-contained HTML page: the summary, the failures, the gate, the
//! charts (per-boot distributions of the rows that matter, the pool's size
//! across each growth boot) and every table. Styles and SVG are inline:
//! the file is read where it lands, without the network.

use super::{fmt_value, pct, summary, verdict_row, Row, RunReport, METHOD, VERDICT_HEADER};
use crate::failure::{Classify, Failure, Result};
use crate::results::{CellResult, Status};
use crate::stats::{self, Verdict};
use plotters::coord::ranged1d::{SegmentValue, SegmentedCoord};
use plotters::coord::types::{RangedCoordf64, RangedCoordu32};
use plotters::prelude::*;
use serde::Serialize;

const TEMPLATE: &str = include_str!("report.html");
const BASE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
/// Plotters writes SVG font sizes at 0.806 of the size asked for: 15.5
/// lands at 12.5 px, the smallest the report allows.
const FONT: f64 = 15.5;
const NEW: RGBColor = RGBColor(0xd6, 0x27, 0x28);

fn chart_error<E: std::fmt::Display>(e: E) -> Failure {
    Failure::infra(format!("cannot draw a chart: {e}"))
}

/// A value range from zero (for values that cannot go below it) with room
/// above: a cut axis makes a 2 % change fill the chart like a 100 % one.
fn span(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    let pad = if hi > lo { (hi - lo) * 0.15 } else { (hi.abs() * 0.05).max(1.0) };
    let hi = if hi > 0.0 { hi * 1.1 } else { hi + pad };
    (if lo >= 0.0 { 0.0 } else { lo - pad }, hi)
}

type TwoColumns<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<SegmentedCoord<RangedCoordu32>, RangedCoordf64>>;

/// One small SVG chart of two labelled columns over a value axis: `draw`
/// puts the points in, by column 0 or 1.
fn two_columns(
    caption: &str,
    labels: [&str; 2],
    unit: &str,
    y: std::ops::Range<f64>,
    draw: impl FnOnce(&mut TwoColumns) -> std::result::Result<(), String>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (360, 250)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        // The caption's lines, each at 13 px: a title is not one long line.
        let lines: Vec<&str> = caption.lines().collect();
        let (top, body) = root.split_vertically(8 + 16 * lines.len() as u32);
        for (i, l) in lines.iter().enumerate() {
            top.draw(&Text::new(l.to_string(), (6, 4 + 16 * i as i32), ("sans-serif", FONT + 1.0).into_font()))
                .map_err(chart_error)?;
        }
        let mut chart = ChartBuilder::on(&body)
            .margin(6)
            .x_label_area_size(24)
            .y_label_area_size(70)
            .build_cartesian_2d((0u32..1u32).into_segmented(), y)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            // Five labelled lines, no faint ones between: the dots matter.
            .y_labels(5)
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(0xe6, 0xe6, 0xe6))
            .label_style(("sans-serif", FONT))
            .axis_desc_style(("sans-serif", FONT))
            .y_desc(unit)
            .y_label_formatter(&|v| fmt_value(*v))
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) if *i < 2 => labels[*i as usize].to_string(),
                _ => String::new(),
            })
            .draw()
            .map_err(chart_error)?;
        draw(&mut chart).map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// Base and new side by side, one dot per boot, the median as a bar.
fn distribution(title: &str, sides: [&str; 2], unit: &str, base: &[f64], new: &[f64]) -> Result<String> {
    let (lo, hi) = span(base.iter().chain(new).copied());
    two_columns(title, sides, unit, lo..hi, |chart| {
        for (i, (values, color)) in [(base, BASE), (new, NEW)].into_iter().enumerate() {
            let i = i as u32;
            let dots = values.iter().map(|v| Circle::new((SegmentValue::CenterOf(i), *v), 4, color.filled()));
            chart.draw_series(dots).map_err(|e| e.to_string())?;
            if let Some(m) = stats::median(values) {
                let bar = vec![(SegmentValue::Exact(i), m), (SegmentValue::Exact(i + 1), m)];
                chart.draw_series([PathElement::new(bar, color.stroke_width(2))]).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    })
}

/// The pool's size (slabs) at boot and after the workload, a line per boot.
fn growth(c: &CellResult) -> Result<Option<String>> {
    let series = |name: &str| c.metrics.iter().find(|(k, _)| k.ends_with(name)).map(|(_, m)| m.samples.clone());
    let (Some(boot), Some(end)) = (series(".tlb_nslabs.boot"), series(".tlb_nslabs.end")) else {
        return Ok(None);
    };
    let lines: Vec<(f64, f64)> =
        boot.iter().filter_map(|b| end.iter().find(|e| e.rep == b.rep).map(|e| (b.value, e.value))).collect();
    if lines.iter().all(|(b, e)| b == e) {
        return Ok(None);
    }
    let (_, hi) = span(lines.iter().flat_map(|(b, e)| [*b, *e]));
    let svg = two_columns(&c.key.id(), ["at boot", "after workload"], "slabs", 0.0..hi, |chart| {
        for (b, e) in &lines {
            let pts = vec![(SegmentValue::CenterOf(0), *b), (SegmentValue::CenterOf(1), *e)];
            chart.draw_series(LineSeries::new(pts.clone(), NEW.stroke_width(2))).map_err(|e| e.to_string())?;
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, NEW.filled()))).map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    Ok(Some(svg))
}

#[derive(Serialize)]
struct HtmlRow {
    profile: String,
    workload: String,
    context: String,
    metric: String,
    unit: String,
    base: String,
    new: String,
    delta: String,
    ci: String,
    q: String,
    thr: String,
    mde: String,
    verdict: String,
}

#[derive(Serialize)]
struct HtmlTable {
    title: String,
    gate: bool,
    charts: Vec<String>,
    rows: Vec<HtmlRow>,
}

fn html_row(r: &Row, gate: bool) -> HtmlRow {
    let side = |m: Option<(f64, usize)>| m.map(|(v, n)| format!("{} ({n})", fmt_value(v))).unwrap_or("-".into());
    HtmlRow {
        profile: if r.emulated { format!("{} [emulated]", r.profile) } else { r.profile.clone() },
        workload: r.workload.clone(),
        context: r.context.clone(),
        metric: format!("{}{}", r.short_metric(), if r.j.gated { "*" } else { "" }),
        unit: r.unit.clone(),
        base: side(r.j.base),
        new: side(r.j.new),
        delta: pct(r.j.delta_pct),
        ci: r.j.ci_pct.map(|(l, h)| format!("[{l:+.1}, {h:+.1}]")).unwrap_or("-".into()),
        q: r.j.q.map(|p| format!("{p:.3}")).unwrap_or("-".into()),
        thr: super::thr_cell(r),
        mde: super::mde_cell(r),
        verdict: super::verdict_cell(r, gate),
    }
}

/// Rows worth a chart: the gated ones, and any that decided a change, when
/// both sides have boots to show and they are not one flat line.
fn charted(r: &Row) -> bool {
    let decided = matches!(r.j.verdict, Verdict::Better | Verdict::Worse | Verdict::Changed);
    let (a, b) = (&r.samples.0, &r.samples.1);
    let flat = a.iter().chain(b).all(|v| Some(v) == a.first());
    (r.j.gated || decided) && !a.is_empty() && !b.is_empty() && !flat
}

/// A comparison title's two sides (`kernel: A (base) vs B (new)`), short
/// enough for a chart's axis.
fn sides(title: &str) -> [String; 2] {
    let body = title.split_once(": ").map_or(title, |(_, b)| b);
    let (a, b) = body.split_once(" vs ").unwrap_or(("base", "new"));
    let clean = |s: &str| {
        let s = s.replace(" (base)", "").replace(" (new)", "");
        if s.len() > 22 {
            format!("{}~", &s[..21])
        } else {
            s
        }
    };
    [clean(a), clean(b)]
}

/// A chart's title: what, where, and what was decided, with n.
fn chart_title(r: &Row, gate: bool) -> String {
    let ci = r.j.ci_pct.map(|(lo, hi)| format!(" [{lo:+.1}, {hi:+.1}]")).unwrap_or_default();
    let n = |s: Option<(f64, usize)>| s.map(|(_, n)| n).unwrap_or(0);
    format!(
        "{} {}\n{} [{}]\nshift {}{ci}: {}, n {}/{}",
        r.profile,
        r.metric,
        r.workload,
        r.context,
        pct(r.j.delta_pct),
        super::verdict_cell(r, gate),
        n(r.j.base),
        n(r.j.new)
    )
}

/// The gated grid of a comparison as HTML cells, coloured by verdict.
#[derive(Serialize)]
struct Grid {
    title: String,
    profiles: Vec<String>,
    rows: Vec<(String, Vec<(String, String)>)>,
}

fn grid(t: &crate::stats::compare::Table) -> Option<Grid> {
    let gated: Vec<&Row> = t.rows.iter().filter(|r| r.j.gated).collect();
    if gated.is_empty() {
        return None;
    }
    let mut profiles: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let name = |r: &Row| format!("{} [{}]", r.metric, r.context);
    for r in &gated {
        if !profiles.contains(&r.profile) {
            profiles.push(r.profile.clone());
        }
        if !names.contains(&name(r)) {
            names.push(name(r));
        }
    }
    let rows = names
        .into_iter()
        .map(|n| {
            let cells = profiles
                .iter()
                .map(|p| match gated.iter().find(|r| &r.profile == p && name(r) == n) {
                    Some(r) => {
                        let class = match r.j.verdict {
                            _ if t.gate && r.j.regressed() => "REGRESSED",
                            // Decided, but within the floor no gate fails on.
                            Verdict::Worse if r.j.delta_pct.is_some_and(|d| d.abs() <= r.j.threshold_pct) => "minor",
                            Verdict::Better => "better",
                            Verdict::Worse => "worse",
                            Verdict::Changed => "changed",
                            Verdict::NoChange | Verdict::Same => "same",
                            Verdict::Inconclusive => "inconclusive",
                            Verdict::TooFew => "toofew",
                            Verdict::Missing => "missing",
                        };
                        let d = r.j.delta_pct.map(|d| format!("{d:+.1}%")).unwrap_or("n/a".into());
                        (format!("{d} {}", summary::mark(r.j.verdict, t.gate)), class.to_string())
                    }
                    None => (".".to_string(), "none".to_string()),
                })
                .collect();
            (n, cells)
        })
        .collect();
    Some(Grid { title: format!("{}{}", t.title, if t.gate { " [gated]" } else { "" }), profiles, rows })
}

pub fn render(r: &RunReport) -> Result<String> {
    let mut tables = Vec::new();
    for t in &r.tables {
        let mut charts = Vec::new();
        let [a, b] = sides(&t.title);
        for row in t.rows.iter().filter(|row| charted(row)) {
            let title = chart_title(row, t.gate);
            charts.push(distribution(&title, [&a, &b], &row.unit, &row.samples.0, &row.samples.1)?);
        }
        tables.push(HtmlTable {
            title: t.title.clone(),
            gate: t.gate,
            charts,
            rows: t.rows.iter().map(|row| html_row(row, t.gate)).collect(),
        });
    }
    let mut grown = Vec::new();
    for c in r.cells.iter().filter(|c| c.swiotlb_dynamic) {
        grown.extend(growth(c)?);
    }
    let failures: Vec<String> = r
        .cells
        .iter()
        .filter(|c| c.status() == Status::Fail && !c.failed_as_expected())
        .map(|c| {
            let why = c.worst_failure().map(|f| format!("[{}] {}", f.class, f.message)).unwrap_or("no boot ran".into());
            format!("{}: {why}", c.key.id())
        })
        .collect();
    let expected: Vec<String> = r
        .cells
        .iter()
        .filter(|c| c.status() == Status::Fail && c.failed_as_expected())
        .map(|c| format!("{}: {}", c.key.id(), c.expected_failure.as_ref().map(|e| e.why.as_str()).unwrap_or("")))
        .collect();
    #[derive(Serialize)]
    struct Page<'a> {
        run: &'a str,
        incomplete: Option<&'a str>,
        conclusion: Vec<String>,
        grids: Vec<Grid>,
        legend: &'a str,
        expected: Vec<String>,
        summary: String,
        failures: Vec<String>,
        gate: Option<&'a str>,
        growth: Vec<String>,
        tables: Vec<HtmlTable>,
        cell_header: [&'a str; 6],
        cells: Vec<Vec<String>>,
        header: &'a str,
        method: &'a str,
    }
    let page = Page {
        run: &r.name,
        incomplete: r.incomplete.as_deref(),
        conclusion: super::conclusion::paragraphs(&r.cells, &r.tables, r.gate.as_deref()),
        grids: r.tables.iter().filter_map(grid).collect(),
        legend: summary::LEGEND,
        expected,
        summary: summary::render(&r.head, &r.cells, &r.tables, r.gate.as_deref()),
        failures,
        gate: r.gate.as_deref(),
        growth: grown,
        tables,
        cell_header: VERDICT_HEADER,
        cells: r.cells.iter().map(verdict_row).collect(),
        header: &r.header,
        method: METHOD,
    };
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", TEMPLATE).infra(|| "HTML template".into())?;
    let page = env
        .get_template("report.html")
        .and_then(|t| t.render(minijinja::value::Serde(&page)))
        .infra(|| "cannot render the HTML report".into())?;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distribution_chart_is_an_svg_with_both_sides_and_labels() {
        let svg = distribution(
            "sev-emulated dmabench.map_us\nshift +50.0%: worse, n 3/2",
            ["6.12-fixed", "6.12-dynamic"],
            "us",
            &[1.9, 2.0, 2.1],
            &[2.9, 3.0],
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 5, "{svg}");
        for label in ["6.12-fixed", "6.12-dynamic", "dmabench.map_us", "shift +50.0%: worse, n 3/2"] {
            assert!(svg.contains(label), "{label}: {svg}");
        }
        // The axis starts at zero, and no text is smaller than 12 px.
        let zero = regex::Regex::new(r"(?s)<text[^>]*>\s*0\s*</text>").unwrap();
        assert!(zero.is_match(&svg), "{svg}");
        for size in regex::Regex::new(r#"font-size="([0-9.]+)""#).unwrap().captures_iter(&svg) {
            assert!(size[1].parse::<f64>().unwrap() >= 12.0, "{}", &size[0]);
        }
    }
}
