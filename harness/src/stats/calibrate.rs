//! A/A calibration: one kernel against itself, to learn how much each
//! metric moves between identical boots (the noise a gate must not call a
//! regression) and to show, on the spot, that the gate stays quiet.

use super::compare::{gate, judge_pairs, GateOutcome, Pair, Table};
use super::noise::NoiseTable;
use super::{held_still, mde_pct, ALPHA};
use crate::results::{Axis, CellResult, Metric};

/// Split every cell's boots by repetition parity into two arms (the
/// schedule interleaves repetitions, so the arms saw the same host), and
/// judge the arms against each other like any gated comparison.
pub fn split_arms(cells: &[CellResult]) -> (Vec<CellResult>, Vec<CellResult>) {
    let arm = |parity: u32| -> Vec<CellResult> {
        cells
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c.key.kernel = format!("{}~{}", c.key.kernel, if parity == 0 { "even" } else { "odd" });
                c.reps.retain(|r| r.rep % 2 == parity);
                c.metrics = c
                    .metrics
                    .iter()
                    .map(|(k, m)| {
                        let samples = m.samples.iter().filter(|s| s.rep % 2 == parity).cloned().collect();
                        (k.clone(), Metric { decl: m.decl.clone(), samples })
                    })
                    .collect();
                c
            })
            .collect()
    };
    (arm(0), arm(1))
}

/// The A/A table of a calibration run, judged with its own noise figures
/// (the harshest case: thresholds exactly at the measured noise).
pub fn aa_table(cells: &[CellResult], noise: &NoiseTable) -> (Table, GateOutcome) {
    let (even, odd) = split_arms(cells);
    let pairs: Vec<Pair> = even.iter().zip(&odd).collect();
    let t = judge_pairs("A/A: even boots (base) vs odd boots (new)".into(), true, &pairs, noise, &[Axis::Swiotlb]);
    let g = gate(std::slice::from_ref(&t));
    (t, g)
}

/// One row of the MDE table: what a nightly gate of `n_new` boots against
/// a baseline of `n_base` can detect for each gated metric.
pub struct MdeRow {
    pub cell: String,
    pub metric: String,
    pub noise_pct: f64,
    pub threshold_pct: f64,
    pub mde_pct: Option<f64>,
}

pub fn mde_table(cells: &[CellResult], noise: &NoiseTable, n_base: usize, n_new: usize) -> Vec<MdeRow> {
    let gated: Vec<(&CellResult, &String, &Metric)> =
        cells.iter().flat_map(|c| c.metrics.iter().filter(|(_, m)| m.decl.gate).map(move |(k, m)| (c, k, m))).collect();
    let family = gated.len().max(1);
    gated
        .into_iter()
        .map(|(c, k, m)| {
            let sd = if held_still(&m.decl, &m.values()) { 0.0 } else { noise.get(c, k).unwrap_or(f64::NAN) };
            let threshold = m.decl.floor_pct().max(sd);
            let mde = if sd == 0.0 {
                Some(threshold)
            } else {
                mde_pct(n_base, n_new, sd, ALPHA / family as f64).map(|x| x.max(threshold))
            };
            MdeRow {
                cell: format!("{}.{}.{}", c.key.profile, c.key.workload, c.key.swiotlb),
                metric: k.clone(),
                noise_pct: sd,
                threshold_pct: threshold,
                mde_pct: mde,
            }
        })
        .collect()
}
