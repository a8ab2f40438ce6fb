//! The gate's error rates, measured: how often a nightly gate of an
//! unchanged kernel fails (false alarms per night, over every gated row at
//! once), and how often it catches a seeded regression on each gated row,
//! by running the gate's own code (`judge_pairs`, `gate`) over simulated
//! nights drawn from a stored run of one kernel.
//!
//! Two ways to draw a night, both printed:
//! - resampled: each side's boots drawn with replacement from the stored
//!   boots of its cell, whole boots (a boot's metrics move together);
//! - modelled: each gated metric normal around its stored median with the
//!   calibrated noise (a metric that held still stays still).
//!
//! Both draw the two sides from one run, so neither sees the drift between
//! runs on different days that a stored-baseline gate also meets: the
//! rates are the gate's own, not the host's.

use super::compare::{gate, judge_pairs, Pair};
use super::noise::NoiseTable;
use super::{held_still, median};
use crate::results::{Axis, Better, CellResult, Metric, Sample};
use rand::{rngs::StdRng, Rng, SeedableRng};
use statrs::distribution::{ContinuousCDF, Normal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    Resampled,
    Modelled,
}

impl Draw {
    pub fn describe(self) -> &'static str {
        match self {
            Draw::Resampled => "boots resampled from the stored run",
            Draw::Modelled => "normal noise at the calibrated spread",
        }
    }
}

/// One gated row's power: the share of nights on which the gate failed
/// with this row among its regressions, per seeded change.
#[derive(Debug, Clone)]
pub struct RowPower {
    pub cell: String,
    pub metric: String,
    pub threshold_pct: f64,
    /// The MDE the report prints for this row at these sizes: its median
    /// over the nights simulated (each night prints its own, from the
    /// calibrated noise or the spread of its boots, whichever is wider).
    pub mde_pct: Option<f64>,
    /// (change in the worse direction, percent; share of nights on which
    /// the gate failed on this row).
    pub power: Vec<(f64, f64)>,
    /// The share of nights on which the row's own test detected a change
    /// of the MDE that night printed (q below the gate's level, in the
    /// worse direction; the deterministic rule for rows that held still),
    /// whether or not it passed the threshold: what the MDE promises.
    pub at_mde: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct ErrorRates {
    pub draw: Draw,
    /// Unchanged nights simulated (the false-alarm rate's denominator).
    pub nights: usize,
    /// Nights simulated per seeded change (the powers' denominator).
    pub power_nights: usize,
    pub n_base: usize,
    pub n_new: usize,
    /// Nights on which the unchanged kernel failed the gate.
    pub false_alarms: usize,
    pub rows: Vec<RowPower>,
}

impl ErrorRates {
    pub fn false_alarm_rate(&self) -> f64 {
        self.false_alarms as f64 / self.nights.max(1) as f64
    }

    /// The exact (Clopper-Pearson) 95 % upper bound of the false-alarm
    /// rate: what the nights simulated can promise.
    pub fn false_alarm_upper(&self) -> f64 {
        let (k, n) = (self.false_alarms as f64, self.nights as f64);
        if k >= n {
            return 1.0;
        }
        statrs::distribution::Beta::new(k + 1.0, n - k).map(|b| b.inverse_cdf(0.975)).unwrap_or(1.0)
    }
}

/// The gated metrics of one stored cell: only they decide a gate (the
/// rest are corrected in a family of their own), so nights carry no more.
fn gated_only(c: &CellResult) -> CellResult {
    let mut c = c.clone();
    c.metrics.retain(|_, m| m.decl.gate);
    c
}

/// One side of a night: `n` boots of `cell`, drawn as `draw` says; the
/// metric `worse` (if any) moved by `pct` percent in its worse direction.
fn side(cell: &CellResult, n: usize, draw: Draw, noise: &NoiseTable, rng: &mut StdRng, kernel: &str) -> CellResult {
    let mut c = cell.clone();
    c.key.kernel = kernel.to_string();
    let reps: Vec<u32> = cell.reps.iter().map(|r| r.rep).collect();
    let picks: Vec<u32> = (0..n).map(|_| reps[rng.random_range(0..reps.len())]).collect();
    let z = Normal::standard();
    for (name, m) in c.metrics.iter_mut() {
        let stored = cell.metrics[name].values();
        let samples: Vec<f64> = match draw {
            Draw::Resampled => picks
                .iter()
                .filter_map(|p| cell.metrics[name].samples.iter().find(|s| s.rep == *p).map(|s| s.value))
                .collect(),
            Draw::Modelled => {
                let mid = median(&stored).unwrap_or(0.0);
                let sd = if held_still(&m.decl, &stored) { 0.0 } else { noise.get(cell, name).unwrap_or(0.0) };
                (0..n).map(|_| mid * (1.0 + sd / 100.0 * z.inverse_cdf(rng.random_range(1e-12..1.0 - 1e-12)))).collect()
            }
        };
        m.samples = samples.into_iter().enumerate().map(|(i, value)| Sample { rep: i as u32, value }).collect();
    }
    c
}

/// The row's test found a change in the worse direction: the
/// deterministic rule's (or the one-sided rule's) `worse`, or a q below
/// the gate's level with the shift on the worse side.
fn detected(r: &super::compare::Row, tables: usize, better: Better) -> bool {
    if r.j.verdict == super::Verdict::Worse {
        return true;
    }
    let significant = r.j.noise_source != super::NoiseSource::Deterministic
        && r.j.q.is_some_and(|q| q < super::ALPHA / tables.max(1) as f64);
    let worse_side = |d: f64| if better == Better::Higher { d < 0.0 } else { d > 0.0 };
    significant && r.j.delta_pct.is_some_and(worse_side)
}

fn worsen(m: &mut Metric, pct: f64) {
    let f = match m.decl.better {
        Better::Higher => 1.0 - pct / 100.0,
        _ => 1.0 + pct / 100.0,
    };
    m.samples.iter_mut().for_each(|s| s.value *= f);
}

/// Simulate `nights` nightly gates of `n_new` boots a cell against a
/// baseline of `n_base`, from the stored `cells` of one kernel; on the
/// first `power_nights` of them, also each gated row worsened by each of
/// `shifts` and by its printed MDE, one row at a time. (A false-alarm
/// rate near 1 % needs thousands of nights; a power near 80 %, hundreds.)
pub fn measure(
    cells: &[CellResult],
    noise: &NoiseTable,
    (n_base, n_new): (usize, usize),
    (nights, power_nights): (usize, usize),
    shifts: &[f64],
    draw: Draw,
    seed: u64,
) -> ErrorRates {
    let cells: Vec<CellResult> = cells.iter().filter(|c| !c.reps.is_empty()).map(gated_only).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let judge = |base: &[CellResult], new: &[CellResult]| {
        let pairs: Vec<Pair> = base.iter().zip(new).collect();
        let t = judge_pairs("simulated night".into(), true, &pairs, noise, &[Axis::Swiotlb]);
        let g = gate(std::slice::from_ref(&t));
        (t, g)
    };
    // Every gated row, named and with the MDE the report would print.
    let rows: Vec<(usize, String)> =
        cells.iter().enumerate().flat_map(|(i, c)| c.metrics.keys().map(move |k| (i, k.clone()))).collect();
    let mut out_rows: Vec<RowPower> = Vec::new();
    let mut caught = vec![vec![0usize; shifts.len() + 1]; rows.len()];
    let mut mdes: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut false_alarms = 0;
    for night in 0..nights {
        let base: Vec<CellResult> = cells.iter().map(|c| side(c, n_base, draw, noise, &mut rng, "base")).collect();
        let new: Vec<CellResult> = cells.iter().map(|c| side(c, n_new, draw, noise, &mut rng, "new")).collect();
        let (t, g) = judge(&base, &new);
        if !g.regressions.is_empty() {
            false_alarms += 1;
        }
        if night == 0 {
            out_rows =
                rows.iter()
                    .map(|(i, k)| {
                        let c = &cells[*i];
                        let r = t.rows.iter().find(|r| {
                            r.new_cell.swiotlb == c.key.swiotlb && r.profile == c.key.profile && r.metric == *k
                        });
                        RowPower {
                            cell: format!("{}.{}.{}", c.key.profile, c.key.workload, c.key.swiotlb),
                            metric: k.clone(),
                            threshold_pct: r.map(|r| r.j.threshold_pct).unwrap_or(f64::NAN),
                            mde_pct: r.and_then(|r| r.j.mde_pct),
                            power: Vec::new(),
                            at_mde: None,
                        }
                    })
                    .collect();
        }
        if night >= power_nights {
            continue;
        }
        for (ri, (i, k)) in rows.iter().enumerate() {
            let c = &cells[*i];
            let this = |r: &super::compare::Row| {
                r.metric == *k && r.profile == c.key.profile && r.new_cell.swiotlb == c.key.swiotlb
            };
            // Tonight's printed MDE, from the unchanged night's boots.
            let mde = t.rows.iter().find(|r| this(r)).and_then(|r| r.j.mde_pct);
            mdes[ri].extend(mde);
            for (si, pct) in shifts.iter().copied().map(Some).chain([mde]).enumerate() {
                let Some(pct) = pct else { continue };
                let mut moved = new.clone();
                if let Some(m) = moved[*i].metrics.get_mut(k) {
                    worsen(m, pct);
                }
                let (t, g) = judge(&base, &moved);
                let hit = if si < shifts.len() {
                    g.regressions.iter().any(|(_, r)| this(r))
                } else {
                    t.rows.iter().filter(|r| this(r)).any(|r| detected(r, g.tables, c.metrics[k].decl.better))
                };
                if hit {
                    caught[ri][si] += 1;
                }
            }
        }
    }
    for (ri, r) in out_rows.iter_mut().enumerate() {
        let share = |n: usize| n as f64 / power_nights.min(nights).max(1) as f64;
        r.power = shifts.iter().enumerate().map(|(si, s)| (*s, share(caught[ri][si]))).collect();
        if !mdes[ri].is_empty() {
            r.mde_pct = median(&mdes[ri]);
            // Of the nights that printed one.
            r.at_mde = Some(caught[ri][shifts.len()] as f64 / mdes[ri].len() as f64);
        } else {
            r.at_mde = None;
        }
    }
    ErrorRates { draw, nights, power_nights: power_nights.min(nights), n_base, n_new, false_alarms, rows: out_rows }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::testing;

    fn cell(profile: &str, values: &[f64], deterministic: bool) -> CellResult {
        let mut c = testing::cell("k", &[("dmabench.map_us", true, values)]);
        c.key.profile = profile.into();
        let m = c.metrics.get_mut("dmabench.map_us").unwrap();
        m.decl.deterministic = deterministic;
        m.decl.floor_pct = Some(5.0);
        c.reps = (0..values.len() as u32).map(testing::passed).collect();
        c
    }
    /// A noisy row at 3.5 % spread, 10 boots against 6: the gate stays
    /// quiet on nearly every unchanged night and catches a large regression
    /// nearly always; a row that held still is caught at every change past
    /// its floor and at none within it.
    #[test]
    fn an_unchanged_kernel_rarely_fails_and_a_large_regression_is_caught() {
        let noisy: Vec<f64> = [100.0, 104.0, 97.0, 101.0, 95.0, 103.0, 99.0, 106.0, 98.0, 102.0].to_vec();
        let cells = vec![cell("a", &noisy, false), cell("b", &[12.0; 10], true)];
        let noise =
            NoiseTable::measure(&cells, "t", &crate::results::testing::env("cpu", "7.2", "2026-12-07T10:00:00Z"));
        for draw in [Draw::Resampled, Draw::Modelled] {
            let e = measure(&cells, &noise, (10, 6), (400, 100), &[3.0, 25.0], draw, 7);
            assert!(e.false_alarm_rate() <= 0.03, "{draw:?}: {}", e.false_alarm_rate());
            let noisy_row = e.rows.iter().find(|r| r.cell.starts_with("a.")).unwrap();
            let still_row = e.rows.iter().find(|r| r.cell.starts_with("b.")).unwrap();
            assert!(noisy_row.power[1].1 >= 0.9, "{draw:?}: {:?}", noisy_row.power);
            // A real change within the threshold fails the gate only when
            // its estimate lands beyond it (15 % of nights here, measured).
            assert!(noisy_row.power[0].1 < 0.5, "{:?}", noisy_row.power);
            assert_eq!(still_row.power, [(3.0, 0.0), (25.0, 1.0)]);
        }
    }

    #[test]
    fn the_upper_bound_of_no_false_alarm_in_300_nights_is_the_rule_of_three() {
        let e = ErrorRates {
            draw: Draw::Modelled,
            nights: 300,
            power_nights: 0,
            n_base: 10,
            n_new: 6,
            false_alarms: 0,
            rows: vec![],
        };
        assert!((e.false_alarm_upper() - 0.0122).abs() < 0.0005, "{}", e.false_alarm_upper());
    }
}
