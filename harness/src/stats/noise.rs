//! Noise figures from A/A calibration: how much each metric moves between
//! identical boots of one kernel, per host class, accelerator and clock,
//! profile and swiotlb setting. A gate's threshold for a metric is at least
//! its noise, so a metric that wobbles by 12 % (fio under TCG) is not judged
//! by the yardstick of one that wobbles by 2 % (dma_map_benchmark). A figure
//! from another host class or clock is never applied (an instruction-clock
//! map_us noise of 0 would judge a host-clock cell whose noise is 30-45 %),
//! and a figure older than `STALE_DAYS` is named and dropped.
//!
//! Drift figures are the other half: how far a metric's median moves
//! between runs of one kernel hours apart (`bounce calibrate --drift`),
//! which a comparison against stored samples must absorb and a same-run
//! A/B never meets.

use crate::failure::{Failure, Result};
use crate::results::env::{HostInfo, RunEnv};
use crate::results::{CellKey, CellResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Where calibrations are kept, beside the baselines they serve.
pub const FILE: &str = "results/baselines/noise.json";

/// Figures older than this (against the run judged) are not applied: a
/// host's QEMU, kernel and neighbours change within weeks.
pub const STALE_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseFigure {
    /// Relative standard deviation between boots (drift: between run
    /// medians), percent.
    pub sd_pct: f64,
    pub boots: usize,
    pub kernel: String,
    /// The run it was measured in (drift: the runs, comma-separated).
    pub run: String,
    /// `CPU MODEL xCORES` of the host it was measured on.
    #[serde(default)]
    pub host: String,
    /// `tcg`, `tcg+icount2`, `kvm`.
    #[serde(default)]
    pub clock: String,
    /// The day it was measured (YYYY-MM-DD).
    #[serde(default)]
    pub measured_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoiseTable {
    /// Keyed `HOST/CLOCK/PROFILE/SWIOTLB/WORKLOAD.METRIC`.
    pub figures: BTreeMap<String, NoiseFigure>,
    /// Between-run drift of each metric's median, keyed the same way.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub drift: BTreeMap<String, NoiseFigure>,
    /// The host class `applicable` cut the table to: lookups go by it.
    #[serde(skip)]
    cut_to: Option<String>,
}

/// The host class figures are kept for: the same CPU model and cores.
pub fn host_class(h: &HostInfo) -> String {
    format!("{} x{}", h.cpu_model, h.cores)
}

/// The accelerator and the clock guests ran on, as one key part.
pub fn clock_class(cell: &CellResult) -> String {
    match cell.accel.clock {
        crate::results::env::Clock::Host => cell.accel.accel.qemu_arg().to_string(),
        crate::results::env::Clock::Instructions(s) => format!("{}+icount{s}", cell.accel.accel.qemu_arg()),
    }
}

fn key(host: &str, clock: &str, cell: &CellKey, metric: &str) -> String {
    format!("{host}/{clock}/{}/{}/{metric}", cell.profile, cell.swiotlb)
}

/// The date part of an RFC 3339 time or a run name.
fn day(t: &str) -> &str {
    t.get(..10).unwrap_or(t)
}

fn days_between(earlier: &str, later: &str) -> Option<i64> {
    let parse = |d: &str| humantime::parse_rfc3339(&format!("{}T00:00:00Z", day(d))).ok();
    let (a, b) = (parse(earlier)?, parse(later)?);
    Some(
        b.duration_since(a)
            .map(|d| d.as_secs() as i64 / 86400)
            .unwrap_or_else(|e| -(e.duration().as_secs() as i64 / 86400)),
    )
}

/// What `applicable` kept and dropped, for the report's provenance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    pub used: usize,
    /// Figures of this host class and older than `STALE_DAYS`.
    pub stale: usize,
    pub newest: Option<String>,
}

impl Applied {
    /// For a report's provenance: short lines (a mail reply is 75 columns).
    pub fn describe(&self) -> Vec<String> {
        let mut v = vec![match &self.newest {
            Some(d) => format!("noise: {} figures calibrated on this host class, to {d}", self.used),
            None => "noise: none calibrated on this host class (each row's own samples)".to_string(),
        }];
        if self.stale > 0 {
            v.push(format!("noise: {} figures older than {STALE_DAYS} days not applied", self.stale));
        }
        v
    }
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

    /// The figures that apply to a run measured in `env`: its host class,
    /// and no older than `STALE_DAYS` before it started. (`get` then
    /// matches the clock per cell.)
    pub fn applicable(&self, env: &RunEnv) -> (NoiseTable, Applied) {
        let host = host_class(&env.host);
        let fresh = |f: &NoiseFigure| days_between(&f.measured_at, &env.started_at).is_none_or(|d| d <= STALE_DAYS);
        let here = |m: &BTreeMap<String, NoiseFigure>| -> BTreeMap<String, NoiseFigure> {
            m.iter().filter(|(_, f)| f.host == host && fresh(f)).map(|(k, f)| (k.clone(), f.clone())).collect()
        };
        let figures = here(&self.figures);
        let applied = Applied {
            used: figures.len(),
            stale: self.figures.values().filter(|f| f.host == host).count() - figures.len(),
            newest: figures.values().map(|f| day(&f.measured_at)).max().map(str::to_string),
        };
        let drift = here(&self.drift);
        (NoiseTable { figures, drift, cut_to: Some(host) }, applied)
    }

    /// The noise of `metric` in `cell` on its clock; only a table cut to
    /// the run's host (`applicable`) has any to give.
    pub fn get(&self, cell: &CellResult, metric: &str) -> Option<f64> {
        self.lookup(&self.figures, cell, metric)
    }

    /// Its drift between runs, likewise.
    pub fn drift(&self, cell: &CellResult, metric: &str) -> Option<f64> {
        self.lookup(&self.drift, cell, metric)
    }

    fn lookup(&self, m: &BTreeMap<String, NoiseFigure>, cell: &CellResult, metric: &str) -> Option<f64> {
        let host = self.cut_to.as_deref()?;
        m.get(&key(host, &clock_class(cell), &cell.key, metric)).map(|f| f.sd_pct)
    }

    /// Every metric's spread over every passing boot of each cell: the
    /// cells must all come from one kernel run against itself, in `env`.
    pub fn measure(cells: &[CellResult], run: &str, env: &RunEnv) -> NoiseTable {
        let host = host_class(&env.host);
        let mut figures = BTreeMap::new();
        for c in cells {
            for (name, m) in &c.metrics {
                let v = m.values();
                if let Some(sd) = relative_sd_pct(&v) {
                    let clock = clock_class(c);
                    figures.insert(
                        key(&host, &clock, &c.key, name),
                        NoiseFigure {
                            sd_pct: sd,
                            boots: v.len(),
                            kernel: c.key.kernel.clone(),
                            run: run.into(),
                            host: host.clone(),
                            clock,
                            measured_at: day(&env.started_at).to_string(),
                        },
                    );
                }
            }
        }
        NoiseTable { figures, ..NoiseTable::default() }
    }

    /// The drift of each metric's median across `runs` of one kernel (each
    /// with its env): the relative SD of the per-run medians. The runs'
    /// own boot noise is part of it, so it errs on the wide side.
    pub fn measure_drift(runs: &[(String, RunEnv, Vec<CellResult>)]) -> NoiseTable {
        let mut medians: BTreeMap<String, (Vec<f64>, NoiseFigure)> = BTreeMap::new();
        for (name, env, cells) in runs {
            let host = host_class(&env.host);
            for c in cells {
                for (metric, m) in &c.metrics {
                    let Some(med) = crate::stats::median(&m.values()) else { continue };
                    let clock = clock_class(c);
                    let e = medians.entry(key(&host, &clock, &c.key, metric)).or_insert_with(|| {
                        (
                            Vec::new(),
                            NoiseFigure {
                                sd_pct: 0.0,
                                boots: 0,
                                kernel: c.key.kernel.clone(),
                                run: String::new(),
                                host: host.clone(),
                                clock,
                                measured_at: String::new(),
                            },
                        )
                    });
                    e.0.push(med);
                    e.1.boots += m.values().len();
                    e.1.run = if e.1.run.is_empty() { name.clone() } else { format!("{},{name}", e.1.run) };
                    e.1.measured_at = e.1.measured_at.clone().max(day(&env.started_at).to_string());
                }
            }
        }
        let drift = medians
            .into_iter()
            .filter(|(_, (m, _))| m.len() == runs.len())
            .filter_map(|(k, (m, mut f))| {
                use statrs::statistics::Statistics;
                let (mean, sd) = (m.iter().mean(), m.iter().std_dev());
                f.sd_pct = match (mean == 0.0, sd == 0.0) {
                    (false, _) => sd / mean.abs() * 100.0,
                    (true, true) => 0.0,
                    // No scale to be relative to.
                    (true, false) => return None,
                };
                Some((k, f))
            })
            .collect();
        NoiseTable { drift, ..NoiseTable::default() }
    }

    /// Newer figures replace older ones for the same key; others stay.
    pub fn merge(&mut self, other: NoiseTable) {
        self.figures.extend(other.figures);
        self.drift.extend(other.drift);
    }
}

/// Runs for `measure_drift`, oldest first: one kernel, one host class,
/// each started at least `DRIFT_GAP_S` after the one before (runs minutes
/// apart share the host's state and would show no drift).
pub fn check_drift_runs(runs: &mut [(String, RunEnv, Vec<CellResult>)]) -> Result<()> {
    runs.sort_by(|a, b| a.1.started_at.cmp(&b.1.started_at));
    let kernel = |cells: &[CellResult]| cells.first().map(|c| c.key.kernel.clone()).unwrap_or_default();
    let (k0, h0) = (kernel(&runs[0].2), host_class(&runs[0].1.host));
    let at = |e: &RunEnv| humantime::parse_rfc3339(&e.started_at).ok();
    for w in runs.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if kernel(&b.2) != k0 || host_class(&b.1.host) != h0 {
            return Err(Failure::input(format!(
                "{}: kernel {} on `{}`, but {} ran {k0} on `{h0}`: drift is measured on one kernel and one host class",
                b.0,
                kernel(&b.2),
                host_class(&b.1.host),
                runs[0].0
            )));
        }
        let gap = match (at(&a.1), at(&b.1)) {
            (Some(x), Some(y)) => y.duration_since(x).map(|d| d.as_secs()).unwrap_or(0),
            _ => 0,
        };
        if gap < DRIFT_GAP_S {
            return Err(Failure::input(format!(
                "{} started {} min after {}: drift is measured across runs at least {} min apart",
                b.0,
                gap / 60,
                a.0,
                DRIFT_GAP_S / 60
            )));
        }
    }
    Ok(())
}

/// Runs closer than this are not separate enough to show drift.
pub const DRIFT_GAP_S: u64 = 3600;

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
    use crate::results::testing::{cell, env};

    /// Figures apply to the host class and clock they were measured on,
    /// and only for STALE_DAYS.
    #[test]
    fn figures_apply_to_their_host_and_clock_and_expire() {
        let c = cell("k", &[("dmabench.map_us", true, &[10.0, 11.0, 12.0, 10.5])]);
        let t = NoiseTable::measure(std::slice::from_ref(&c), "r", &env("Xeon", "7.2", "2026-12-07T10:00:00Z"));
        let f = t.figures.values().next().unwrap();
        assert_eq!((f.host.as_str(), f.clock.as_str(), f.measured_at.as_str()), ("Xeon x2", "tcg", "2026-12-07"));
        let (here, a) = t.applicable(&env("Xeon", "7.2", "2026-12-20T00:00:00Z"));
        assert!(here.get(&c, "dmabench.map_us").is_some());
        assert_eq!((a.used, a.stale), (1, 0));
        // Another host class: nothing applies.
        let (there, a) = t.applicable(&env("EPYC", "7.2", "2026-12-08T00:00:00Z"));
        assert_eq!(there.get(&c, "dmabench.map_us"), None);
        assert!(a.describe()[0].contains("none calibrated on this host class"), "{:?}", a.describe());
        // Another clock: the same cell on the instruction clock finds none.
        let mut counted = c.clone();
        counted.accel.clock = crate::results::env::Clock::Instructions(2);
        assert_eq!(here.get(&counted, "dmabench.map_us"), None);
        // Older than STALE_DAYS: named, not applied.
        let (late, a) = t.applicable(&env("Xeon", "7.2", "2027-02-01T00:00:00Z"));
        assert_eq!(late.get(&c, "dmabench.map_us"), None);
        assert_eq!((a.used, a.stale), (0, 1));
        assert_eq!(a.describe()[1], "noise: 1 figures older than 30 days not applied");
    }

    #[test]
    fn drift_needs_three_runs_an_hour_apart_of_one_kernel_on_one_host() {
        let run = |name: &str, at: &str, cpu: &str, kernel: &str| {
            (name.to_string(), env(cpu, "7.2", at), vec![cell(kernel, &[("dmabench.map_us", true, &[1.0, 1.0])])])
        };
        let mut ok = vec![
            run("c", "2026-12-07T13:00:00Z", "X", "k"),
            run("a", "2026-12-07T10:00:00Z", "X", "k"),
            run("b", "2026-12-07T11:30:00Z", "X", "k"),
        ];
        check_drift_runs(&mut ok).unwrap();
        assert_eq!(ok.iter().map(|r| r.0.as_str()).collect::<String>(), "abc");
        let mut close = ok.clone();
        close[2].1.started_at = "2026-12-07T11:50:00Z".into();
        let e = check_drift_runs(&mut close).unwrap_err();
        assert!(e.message.contains("c started 20 min after b"), "{}", e.message);
        let mut other = ok.clone();
        other[1] = run("b", "2026-12-07T11:30:00Z", "Y", "k");
        assert!(check_drift_runs(&mut other).unwrap_err().message.contains("one kernel and one host class"));
    }

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
