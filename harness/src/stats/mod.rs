//! Statistics for noisy virtual machines: medians (robust to the outlier
//! boots a busy host produces) and bootstrap confidence intervals of the
//! relative change, with a fixed seed so a report is reproducible.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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

/// A two-sided percentile-bootstrap interval for the relative change of the
/// median from `base` to `new`, in percent. None when either side has fewer
/// than two samples (one boot says nothing about noise) or the base median
/// is zero.
pub fn bootstrap_delta_ci(base: &[f64], new: &[f64], level: f64, iterations: usize, seed: u64) -> Option<(f64, f64)> {
    if base.len() < 2 || new.len() < 2 {
        return None;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let resample = |xs: &[f64], rng: &mut StdRng| -> f64 {
        let r: Vec<f64> = (0..xs.len()).map(|_| xs[rng.random_range(0..xs.len())]).collect();
        median(&r).unwrap()
    };
    let mut deltas = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let b = resample(base, &mut rng);
        let n = resample(new, &mut rng);
        if let Some(d) = delta_pct(b, n) {
            deltas.push(d);
        }
    }
    if deltas.len() < iterations / 2 {
        return None;
    }
    deltas.sort_by(|a, b| a.total_cmp(b));
    let lo = ((1.0 - level) / 2.0 * deltas.len() as f64).floor() as usize;
    let hi = (((1.0 + level) / 2.0) * deltas.len() as f64).ceil() as usize;
    Some((deltas[lo.min(deltas.len() - 1)], deltas[hi.min(deltas.len()) - 1]))
}

fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Two-sided p-value of Welch's t-test (unequal variances). None with fewer
/// than two samples a side. Two constant samples are either equal (p = 1)
/// or certainly different (p = 0): deterministic metrics such as MemTotal
/// need no noise to be believed.
pub fn welch_p(a: &[f64], b: &[f64]) -> Option<f64> {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let ((ma, va), (mb, vb)) = (mean_var(a), mean_var(b));
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    let se2 = sa + sb;
    if se2 == 0.0 {
        return Some(if ma == mb { 1.0 } else { 0.0 });
    }
    let t = (mb - ma) / se2.sqrt();
    let df = se2 * se2 / (sa * sa / (a.len() as f64 - 1.0) + sb * sb / (b.len() as f64 - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(2.0 * (1.0 - dist.cdf(t.abs())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_separates_signal_from_noise() {
        // Constant and different: certain.
        assert_eq!(welch_p(&[1978608.0; 3], &[2043872.0; 3]), Some(0.0));
        assert_eq!(welch_p(&[5.0; 3], &[5.0; 3]), Some(1.0));
        // Three noisy boots a side that happen to differ: not significant.
        let p = welch_p(&[5.6, 6.4, 4.9], &[4.1, 5.9, 3.8]).unwrap();
        assert!(p > 0.05, "{p}");
        // A clear shift over many boots: significant.
        let a: Vec<f64> = (0..10).map(|i| 14.0 + (i % 3) as f64 * 0.2).collect();
        let b: Vec<f64> = (0..10).map(|i| 15.0 + (i % 3) as f64 * 0.2).collect();
        assert!(welch_p(&a, &b).unwrap() < 0.001);
        assert_eq!(welch_p(&[1.0], &[2.0, 3.0]), None);
    }

    #[test]
    fn median_is_robust() {
        assert_eq!(median(&[14.3, 14.5, 22.5]), Some(14.5));
        assert_eq!(median(&[1.0, 2.0, 3.0, 100.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ci_brackets_a_real_shift_and_excludes_zero() {
        let base: Vec<f64> = (0..12).map(|i| 100.0 + (i % 3) as f64).collect();
        let new: Vec<f64> = (0..12).map(|i| 110.0 + (i % 3) as f64).collect();
        let (lo, hi) = bootstrap_delta_ci(&base, &new, 0.95, 2000, 1).unwrap();
        assert!(lo > 5.0 && hi < 15.0, "{lo} {hi}");
    }

    #[test]
    fn ci_of_identical_noise_contains_zero() {
        let a = [14.3, 14.6, 18.4, 14.4, 22.5, 14.5];
        let b = [14.5, 14.4, 14.6, 20.1, 14.3, 14.4];
        let (lo, hi) = bootstrap_delta_ci(&a, &b, 0.95, 2000, 7).unwrap();
        assert!(lo <= 0.0 && hi >= 0.0, "{lo} {hi}");
        assert!(bootstrap_delta_ci(&a[..1], &b, 0.95, 100, 1).is_none());
    }
}
