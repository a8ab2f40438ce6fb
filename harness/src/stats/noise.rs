//! Noise figures from A/A calibration: how much each metric moves between
//! identical boots of one kernel, per accelerator, profile and swiotlb
//! setting. A gate's threshold for a metric is at least its noise, so a
//! metric that wobbles by 12 % (fio under TCG) is not judged by the
//! yardstick of one that wobbles by 2 % (dma_map_benchmark).

use crate::failure::{Failure, Result};
use crate::results::{CellKey, CellResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Where calibrations are kept, beside the baselines they serve.
pub const FILE: &str = "results/baselines/noise.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseFigure {
    /// Relative standard deviation between boots, percent.
    pub sd_pct: f64,
    pub boots: usize,
    pub kernel: String,
    /// The run it was measured in.
    pub run: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoiseTable {
    /// Keyed `ACCEL/PROFILE/SWIOTLB/WORKLOAD.METRIC`.
    pub figures: BTreeMap<String, NoiseFigure>,
}

fn key(accel: &str, cell: &CellKey, metric: &str) -> String {
    format!("{accel}/{}/{}/{metric}", cell.profile, cell.swiotlb)
}

impl NoiseTable {
    /// A missing file is an empty table: verdicts then use the noise the
    /// compared samples show, and say so.
    pub fn load(path: &Path) -> Result<NoiseTable> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Failure::input(format!("{}: {e} (delete it and run `bounce calibrate` again)", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(NoiseTable::default()),
            Err(e) => Err(Failure::infra(format!("cannot read {}: {e}", path.display()))),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::results::store::write_json(path, self)
    }

    pub fn get(&self, cell: &CellResult, metric: &str) -> Option<f64> {
        self.figures.get(&key(cell.accel.accel.qemu_arg(), &cell.key, metric)).map(|f| f.sd_pct)
    }

    /// Every metric's spread over every passing boot of each cell: the
    /// cells must all come from one kernel run against itself.
    pub fn measure(cells: &[CellResult], run: &str) -> NoiseTable {
        let mut figures = BTreeMap::new();
        for c in cells {
            for (name, m) in &c.metrics {
                let v = m.values();
                if let Some(sd) = relative_sd_pct(&v) {
                    figures.insert(
                        key(c.accel.accel.qemu_arg(), &c.key, name),
                        NoiseFigure { sd_pct: sd, boots: v.len(), kernel: c.key.kernel.clone(), run: run.into() },
                    );
                }
            }
        }
        NoiseTable { figures }
    }

    /// Newer figures replace older ones for the same key; others stay.
    pub fn merge(&mut self, other: NoiseTable) {
        self.figures.extend(other.figures);
    }
}

/// Robust relative SD (1.4826 x MAD / median, the normal-consistent
/// scale), because the verdicts are robust too: a rank test and a
/// Hodges-Lehmann shift barely move for one odd boot, so one odd boot in
/// the calibration must not set a threshold five times the real noise
/// (measured: one slow boot of ten took dma32's map_us from 5 % to 24 %).
fn relative_sd_pct(xs: &[f64]) -> Option<f64> {
    if xs.len() < 3 {
        return None;
    }
    let med = crate::stats::median(xs)?;
    if med == 0.0 {
        return Some(0.0).filter(|_| xs.iter().all(|x| *x == 0.0));
    }
    let dev: Vec<f64> = xs.iter().map(|x| (x - med).abs()).collect();
    Some(1.4826 * crate::stats::median(&dev)? / med.abs() * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_relative_and_needs_three_boots() {
        assert!((relative_sd_pct(&[9.0, 10.0, 11.0]).unwrap() - 14.826).abs() < 1e-9);
        // One odd boot of ten barely moves it.
        let mut v = vec![2.6, 2.7, 2.7, 2.8, 2.8, 2.9, 2.9, 2.9, 2.7, 2.8];
        let quiet = relative_sd_pct(&v).unwrap();
        v[9] = 5.0;
        assert!(relative_sd_pct(&v).unwrap() < quiet * 1.5, "{quiet}");
        assert_eq!(relative_sd_pct(&[1.0, 2.0]), None);
        assert_eq!(relative_sd_pct(&[0.0, 0.0, 0.0]), Some(0.0));
        assert_eq!(relative_sd_pct(&[0.0, 1.0, -1.0]), None);
    }
}
