//! Verdicts for noisy virtual machines, valid at the handful of boots a
//! cell really gets.
//!
//! The boot is the unit of independence: a cell contributes one value per
//! boot and per metric (a workload that repeats a measurement inside a boot
//! reports one aggregate), so nothing here pretends 3 boots are 30 samples.
//! A row is decided by an exact rank test (corrected with Benjamini-Hochberg
//! over its family: the gated metrics of a comparison, or the rest) and a
//! threshold the change must exceed; when neither a change nor its absence
//! can be shown the verdict is `inconclusive`, with the smallest change the
//! same n would detect (MDE), never a `~` that reads as "no change".

pub mod calibrate;
pub mod compare;
pub mod errors;
pub mod noise;
pub mod power;
pub mod rank;

use crate::results::{Better, MetricDecl};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Family-wise significance level, after Benjamini-Hochberg.
pub const ALPHA: f64 = 0.05;
/// Confidence of the shift's interval.
pub const CI_LEVEL: f64 = 0.95;
/// The MDE is the change detected this often.
pub const POWER: f64 = 0.8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A decided change in the metric's better direction.
    Better,
    /// A decided change in its worse direction: on a gated metric, a regression.
    Worse,
    /// A decided change of an informational metric.
    Changed,
    /// Shown to be within the threshold (the interval lies inside ±T).
    NoChange,
    /// Deterministic and identical in every boot.
    Same,
    /// Neither a change nor its absence is shown at this n.
    Inconclusive,
    /// Fewer than two boots on a side.
    TooFew,
    /// The metric is missing on one side.
    Missing,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Changed => "changed",
            Verdict::NoChange => "no change",
            Verdict::Same => "same",
            Verdict::Inconclusive => "inconclusive",
            Verdict::TooFew => "n<2",
            Verdict::Missing => "missing",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Where a row's noise figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseSource {
    /// From an A/A calibration of this profile and metric (`bounce calibrate`).
    Calibrated,
    /// From the spread of the samples being compared (no calibration).
    Observed,
    /// Declared deterministic: identical boots give identical values.
    Deterministic,
}

/// One metric of one pair of cells, judged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Judgement {
    /// Median and number of boots.
    pub base: Option<(f64, usize)>,
    pub new: Option<(f64, usize)>,
    /// The Hodges-Lehmann shift relative to the base median, percent.
    pub delta_pct: Option<f64>,
    /// Its distribution-free interval (None: too few boots for 95 %).
    pub ci_pct: Option<(f64, f64)>,
    /// Exact two-sided rank-test p, and after Benjamini-Hochberg.
    pub p: Option<f64>,
    pub q: Option<f64>,
    /// A decided change must exceed this (percent).
    pub threshold_pct: f64,
    /// Relative boot-to-boot standard deviation, percent.
    pub noise_pct: Option<f64>,
    pub noise_source: NoiseSource,
    /// The smallest change this n detects with `POWER` after correction;
    /// None when no outcome at this n can be significant.
    pub mde_pct: Option<f64>,
    pub gated: bool,
    pub verdict: Verdict,
}

pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Relative change of the median, in percent.
pub fn delta_pct(base: f64, new: f64) -> Option<f64> {
    (base != 0.0).then(|| (new / base - 1.0) * 100.0)
}

/// The relative standard deviation (percent) of boots within each side,
/// pooled: the noise the comparison itself shows. Plain SD, not MAD: at
/// n = 3 a MAD of zero is common and would claim a noiseless metric.
pub fn pooled_sd_pct(a: &[f64], b: &[f64]) -> Option<f64> {
    let mut ss = 0.0;
    let mut df = 0.0;
    for xs in [a, b] {
        let m = median(xs)?;
        if m == 0.0 || xs.len() < 2 {
            continue;
        }
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        ss += xs.iter().map(|x| ((x - mean) / m * 100.0).powi(2)).sum::<f64>();
        df += xs.len() as f64 - 1.0;
    }
    (df > 0.0).then(|| (ss / df).sqrt())
}

/// The minimum detectable effect (percent) of the two-sided exact rank
/// test at `level` with `n1`/`n2` boots and normal boot noise `sd_pct`:
/// the shift it detects with `POWER` probability, found by simulating the
/// test itself (`power::mde_sd`), not a t-approximation, which at these
/// n overstated power (43 % at its "80 %" MDE with 4 boots a side). None
/// when even complete separation would not reach `level`.
pub fn mde_pct(n1: usize, n2: usize, sd_pct: f64, level: f64) -> Option<f64> {
    power::mde_sd(n1, n2, level).map(|k| k * sd_pct)
}

fn constant(xs: &[f64]) -> bool {
    xs.windows(2).all(|w| w[0] == w[1])
}

/// Declared deterministic, and it held still: every value within a tenth
/// of its floor of the median (MemTotal moves by 4 KiB of 2 GiB between
/// identical boots). Otherwise it is judged like any noisy metric.
pub fn held_still(decl: &MetricDecl, xs: &[f64]) -> bool {
    let tol = decl.floor_pct() / 10.0 / 100.0;
    decl.deterministic && median(xs).is_some_and(|m| xs.iter().all(|x| (x - m).abs() <= m.abs() * tol))
}

/// Judge one metric. `noise` is the calibrated boot noise (percent) when
/// there is one; `family` the number of rows corrected together with this
/// one, for the MDE. The verdict is provisional until `correct()` has
/// turned p into q over the whole family.
pub fn judge(decl: &MetricDecl, base: &[f64], new: &[f64], noise: Option<f64>, family: usize) -> Judgement {
    let bm = median(base);
    let nm = median(new);
    let exact = held_still(decl, base) && held_still(decl, new);
    let (noise_pct, noise_source) = if exact {
        (Some(0.0), NoiseSource::Deterministic)
    } else if let Some(n) = noise {
        (Some(n), NoiseSource::Calibrated)
    } else {
        (pooled_sd_pct(base, new), NoiseSource::Observed)
    };
    let threshold_pct = decl.floor_pct().max(noise_pct.unwrap_or(0.0));
    let hl = rank::hodges_lehmann(base, new, CI_LEVEL);
    let rel = |d: f64| bm.filter(|b| *b != 0.0).map(|b| d / b.abs() * 100.0);
    let delta_pct = hl.and_then(|(est, _)| rel(est));
    let ci_pct = hl.and_then(|(_, ci)| ci).and_then(|(lo, hi)| Some((rel(lo)?, rel(hi)?)));
    let p = rank::mann_whitney_p(base, new);
    let level = ALPHA / family.max(1) as f64;
    // The MDE is what these boots can detect; the threshold is printed
    // beside it, never merged into it. Calibrated noise is the least the
    // spread can be: boots that spread wider tonight (an outlier, a heavy
    // tail) detect less, and the MDE says so (at the calibrated spread
    // alone, 1 MiB storage boots resampled from a stored run were caught
    // at the printed MDE on 70 % of nights, not 80 %).
    let mde_noise = match (noise_source, noise_pct) {
        (NoiseSource::Calibrated, Some(n)) => Some(pooled_sd_pct(base, new).map_or(n, |o| o.max(n))),
        (_, n) => n,
    };
    let mde =
        if exact { Some(threshold_pct) } else { mde_noise.and_then(|sd| mde_pct(base.len(), new.len(), sd, level)) };
    let mut j = Judgement {
        base: bm.map(|m| (m, base.len())),
        new: nm.map(|m| (m, new.len())),
        delta_pct,
        ci_pct,
        p,
        q: p,
        threshold_pct,
        noise_pct,
        noise_source,
        mde_pct: mde,
        gated: decl.gate,
        verdict: Verdict::Inconclusive,
    };
    j.verdict = decide(decl, base, new, &j);
    j
}

fn direction(decl: &MetricDecl, up: bool) -> Verdict {
    match decl.better {
        Better::None => Verdict::Changed,
        Better::Higher if up => Verdict::Better,
        Better::Lower if !up => Verdict::Better,
        _ => Verdict::Worse,
    }
}

fn decide(decl: &MetricDecl, base: &[f64], new: &[f64], j: &Judgement) -> Verdict {
    let (Some((b, _)), Some((n, _))) = (j.base, j.new) else {
        return Verdict::Missing;
    };
    // Nothing is decided from one boot a side, not even a metric declared
    // deterministic: one boot cannot show that it held still.
    if base.len() < 2 || new.len() < 2 {
        return Verdict::TooFew;
    }
    // Both sides held still: every difference beyond the jitter identical
    // boots show is real, whatever its size (the gate's floor decides
    // whether it fails; see `Judgement::regressed`).
    if j.noise_source == NoiseSource::Deterministic {
        return match j.delta_pct {
            _ if b == n && constant(base) && constant(new) => Verdict::Same,
            Some(d) if d.abs() <= decl.floor_pct() / 10.0 => Verdict::NoChange,
            _ => direction(decl, n > b),
        };
    }
    // Declared deterministic, one side held still and the other moved: a
    // change of behaviour (a pool that doubles in one boot of six), not
    // noise to average away. Decided in the moving side's direction.
    if decl.deterministic && held_still(decl, base) != held_still(decl, new) {
        let (still, moving) = if held_still(decl, base) { (b, new) } else { (n, base) };
        let mean = moving.iter().sum::<f64>() / moving.len() as f64;
        let up = if held_still(decl, base) { mean > still } else { still > mean };
        return direction(decl, up);
    }
    let t = j.threshold_pct;
    let significant = j.q.is_some_and(|q| q < ALPHA);
    let beyond = match j.delta_pct {
        Some(d) => d.abs() > t,
        // From a zero median any decided shift is beyond every percentage.
        None => b == 0.0 && n != 0.0,
    };
    if significant && beyond {
        let up = j.delta_pct.map(|d| d > 0.0).unwrap_or(n > b);
        return direction(decl, up);
    }
    match j.ci_pct {
        Some((lo, hi)) if lo > -t && hi < t => Verdict::NoChange,
        _ if constant(base) && constant(new) && b == n => Verdict::NoChange,
        _ => Verdict::Inconclusive,
    }
}

impl Judgement {
    /// A gated metric worse by more than its threshold: what fails a gate.
    /// A deterministic row's decided change below its floor stays a
    /// decided `worse` in the tables and does not fail the gate.
    pub fn regressed(&self) -> bool {
        const ONE_SIDED: Option<&str> = Some("one side the same in every boot, the other moved");
        self.gated
            && self.verdict == Verdict::Worse
            && (self.rule() == ONE_SIDED
                || match self.delta_pct {
                    Some(d) => d.abs() > self.threshold_pct,
                    None => true,
                })
    }

    /// Where the verdict came from, when it was not the rank test: the
    /// rule a reader needs to read the row right.
    pub fn rule(&self) -> Option<&'static str> {
        match (self.noise_source, self.verdict) {
            (NoiseSource::Deterministic, Verdict::Better | Verdict::Worse | Verdict::Changed) => {
                Some("the same in every boot on each side")
            }
            (NoiseSource::Deterministic, _) => None,
            (_, Verdict::Better | Verdict::Worse | Verdict::Changed) if self.q.is_none_or(|q| q >= ALPHA) => {
                Some("one side the same in every boot, the other moved")
            }
            _ => None,
        }
    }
}

/// Benjamini-Hochberg over one family of rows, then the final verdicts.
pub fn correct(decls: &[&MetricDecl], samples: &[(&[f64], &[f64])], rows: &mut [Judgement]) {
    let idx: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].p.is_some()).collect();
    if idx.is_empty() {
        return;
    }
    let ps: Vec<f64> = idx.iter().map(|&i| rows[i].p.unwrap()).collect();
    let qs = adjustp::adjust(&ps, adjustp::Procedure::BenjaminiHochberg);
    for (k, &i) in idx.iter().enumerate() {
        rows[i].q = Some(qs[k].min(1.0));
        rows[i].verdict = decide(decls[i], samples[i].0, samples[i].1, &rows[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(better: Better) -> MetricDecl {
        MetricDecl {
            unit: "us".into(),
            better,
            description: String::new(),
            gate: true,
            deterministic: false,
            counted: false,
            floor_pct: None,
        }
    }

    fn judged(d: &MetricDecl, a: &[f64], b: &[f64]) -> Judgement {
        let mut rows = vec![judge(d, a, b, None, 1)];
        correct(&[d], &[(a, b)], &mut rows);
        rows.pop().unwrap()
    }

    #[test]
    fn three_boots_a_side_never_decide_a_noisy_metric() {
        let d = decl(Better::Lower);
        // Complete separation, +100 %: still p = 0.1 at n = 3.
        let j = judged(&d, &[1.9, 2.0, 1.9], &[4.0, 4.1, 4.0]);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert_eq!(j.mde_pct, None, "no n=3 outcome is significant");
        assert!((j.p.unwrap() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn six_boots_decide_a_real_slowdown_and_pass_noise() {
        let d = decl(Better::Lower);
        let base = [1.9, 2.0, 1.9, 2.0, 1.9, 2.1];
        assert_eq!(judged(&d, &base, &[2.9, 3.0, 2.8, 3.1, 2.9, 3.0]).verdict, Verdict::Worse);
        assert_eq!(judged(&d, &base, &[1.4, 1.3, 1.4, 1.3, 1.4, 1.3]).verdict, Verdict::Better);
        // Identical noise: inconclusive or no change, never a verdict.
        let j = judged(&d, &base, &[2.0, 1.9, 2.1, 1.9, 2.0, 1.9]);
        assert!(matches!(j.verdict, Verdict::NoChange | Verdict::Inconclusive), "{j:?}");
        // Significant but inside the 5 % floor: not a regression.
        let j = judged(&d, &[100.0, 100.1, 100.2, 100.0, 100.1, 100.2], &[102.0, 102.1, 102.2, 102.0, 102.1, 102.2]);
        assert!(j.q.unwrap() < ALPHA);
        assert_ne!(j.verdict, Verdict::Worse);
    }

    #[test]
    fn deterministic_metrics_decide_from_one_boot_pattern() {
        let mut d = decl(Better::Higher);
        d.deterministic = true;
        d.floor_pct = Some(0.5);
        assert_eq!(judged(&d, &[1975952.0; 3], &[2041216.0; 3]).verdict, Verdict::Better);
        // A few KiB of kernel text is below the floor.
        assert_eq!(judged(&d, &[1975952.0; 3], &[1975948.0; 3]).verdict, Verdict::NoChange);
        // 4 KiB of wobble between identical boots is still deterministic.
        assert_eq!(judged(&d, &[1975948.0, 1975952.0, 1975948.0], &[2041216.0; 3]).verdict, Verdict::Better);
        // Declared deterministic but it moved: judged as noisy, not decided.
        let j = judged(&d, &[100.0, 101.0, 100.0], &[120.0, 121.0, 120.0]);
        assert_eq!((j.noise_source, j.verdict), (NoiseSource::Observed, Verdict::Inconclusive));
        assert_eq!(judged(&d, &[5.0; 3], &[5.0; 3]).verdict, Verdict::Same);
        d.better = Better::None;
        assert_eq!(judged(&d, &[128.0; 3], &[256.0; 3]).verdict, Verdict::Changed);
        // A bucketed fio percentile that happens to be constant is not
        // deterministic: no zero-variance shortcut.
        let f = decl(Better::Lower);
        assert_eq!(judged(&f, &[64.0; 3], &[74.0; 3]).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn one_boot_a_side_decides_nothing_even_when_declared_deterministic() {
        let mut d = decl(Better::Lower);
        d.deterministic = true;
        assert_eq!(judged(&d, &[12.0], &[12.7]).verdict, Verdict::TooFew);
        assert_eq!(judged(&d, &[12.0, 12.0], &[12.7, 12.7]).verdict, Verdict::Worse);
    }

    #[test]
    fn a_deterministic_metric_that_moves_on_one_side_changed_behaviour() {
        let mut d = decl(Better::None);
        d.deterministic = true;
        d.floor_pct = Some(1.0);
        // A pool that doubles in one boot of six is not `no change`.
        let j = judged(&d, &[128.0; 6], &[128.0, 128.0, 128.0, 128.0, 128.0, 256.0]);
        assert_eq!(j.verdict, Verdict::Changed, "{j:?}");
        assert_eq!(j.rule(), Some("one side the same in every boot, the other moved"));
        let mut lower = decl(Better::Lower);
        lower.deterministic = true;
        let j = judged(&lower, &[10.0; 6], &[10.0, 10.0, 10.0, 10.0, 10.0, 13.0]);
        assert_eq!(j.verdict, Verdict::Worse);
        assert!(j.regressed(), "a gated counted metric that moved worse fails the gate");
    }

    #[test]
    fn a_change_that_repeats_in_every_boot_is_decided_whatever_its_size() {
        let mut d = decl(Better::Lower);
        d.counted = true;
        let d = d.on_clock(crate::host::accel::Clock::Instructions(2));
        assert_eq!(d.floor_pct(), crate::results::COUNTED_FLOOR_PCT);
        // map_us 7.70 -> 7.90 in every boot: +2.6 %, past the 1 % floor.
        let j = judged(&d, &[7.7; 3], &[7.9; 3]);
        assert_eq!((j.verdict, j.regressed()), (Verdict::Worse, true), "{j:?}");
        // Half a percent: decided worse, below the floor, not a regression.
        let j = judged(&d, &[100.0; 3], &[100.5; 3]);
        assert_eq!((j.verdict, j.regressed()), (Verdict::Worse, false), "{j:?}");
        assert_eq!(j.rule(), Some("the same in every boot on each side"));
    }

    #[test]
    fn benjamini_hochberg_raises_the_bar_for_many_metrics() {
        let d = decl(Better::Lower);
        let base = [1.9, 2.0, 1.9, 2.0, 1.9];
        let new = [2.9, 3.0, 2.8, 3.1, 2.9];
        // Alone, n = 5 separated decides (p = 0.008).
        assert_eq!(judged(&d, &base, &new).verdict, Verdict::Worse);
        // One real change among 10 gated metrics: q = 0.08, not decided.
        let quiet: Vec<f64> = base.to_vec();
        let mut rows: Vec<Judgement> =
            (0..10).map(|i| judge(&d, &base, if i == 0 { &new } else { &quiet }, None, 10)).collect();
        let samples: Vec<(&[f64], &[f64])> =
            (0..10).map(|i| (&base[..], if i == 0 { &new[..] } else { &quiet[..] })).collect();
        correct(&[&d; 10], &samples, &mut rows);
        assert_eq!(rows[0].verdict, Verdict::Inconclusive);
        assert_eq!(rows[0].mde_pct, None, "n=5 cannot reach 0.05/10");
    }

    #[test]
    fn mde_shrinks_with_boots_and_grows_with_noise() {
        let a = mde_pct(6, 6, 5.0, 0.05).unwrap();
        let b = mde_pct(12, 12, 5.0, 0.05).unwrap();
        let c = mde_pct(6, 6, 10.0, 0.05).unwrap();
        assert!(b < a && c > a, "{a} {b} {c}");
        assert_eq!(mde_pct(3, 3, 1.0, 0.05), None);
    }

    /// Calibrated noise is a floor for the MDE, not a cap: boots that
    /// spread wider than calibration said print the wider MDE, and boots
    /// that spread less keep the calibrated one. The threshold stays the
    /// calibrated one either way.
    #[test]
    fn the_mde_takes_the_wider_of_the_calibrated_and_the_observed_spread() {
        let d = decl(Better::Higher);
        let tight = [100.0, 100.5, 99.5, 100.2, 99.8, 100.1];
        let wide = [100.0, 110.0, 90.0, 105.0, 95.0, 100.0];
        let calibrated = |a: &[f64], b: &[f64]| judge(&d, a, b, Some(2.0), 1);
        let at_2 = mde_pct(6, 6, 2.0, ALPHA).unwrap();
        assert_eq!(calibrated(&tight, &tight).mde_pct, Some(at_2));
        let observed = pooled_sd_pct(&wide, &wide).unwrap();
        assert!(observed > 2.0, "{observed}");
        let j = calibrated(&wide, &wide);
        assert_eq!(j.mde_pct, mde_pct(6, 6, observed, ALPHA));
        assert!(j.mde_pct.unwrap() > at_2);
        assert_eq!((j.noise_pct, j.noise_source), (Some(2.0), NoiseSource::Calibrated));
    }

    #[test]
    fn median_is_robust() {
        assert_eq!(median(&[14.3, 14.5, 22.5]), Some(14.5));
        assert_eq!(median(&[1.0, 2.0, 3.0, 100.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
