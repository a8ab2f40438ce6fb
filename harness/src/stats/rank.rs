//! Rank statistics that stay valid at the handful of boots a cell gets:
//! the Mann-Whitney test with exact p-values (ties included), and the
//! Hodges-Lehmann shift with its distribution-free (Moses) interval.
//!
//! Why exact: at 3 boots a side the normal approximation says p = 0.0495
//! for complete separation, while the true smallest p is 2/20 = 0.1; a gate
//! built on the approximation calls noise a regression. statrs has the
//! exact test but refuses ties, and ties are the rule here (map latencies
//! come in 0.1 us steps, fio percentiles in buckets); its exact p-value is
//! also wrong in 0.19.1 whenever the first sample is the smaller one (it
//! returns 1 - P(U >= u): p = 1 for complete separation at 3 + 3). So small
//! samples get the exact conditional distribution, every split of the
//! pooled mid-ranks, and statrs serves the large-sample approximation.

use itertools::Itertools;
use statrs::stats_tests::mannwhitneyu::{mannwhitneyu, MannWhitneyUMethod};
use statrs::stats_tests::Alternative;

/// Above this many splits the exact distribution costs more than it is
/// worth, and the normal approximation is good (both sides > 10 boots).
const MAX_EXACT_SPLITS: u64 = 200_000;

fn choose(n: usize, k: usize) -> u64 {
    (0..k).fold(1u64, |acc, i| acc.saturating_mul((n - i) as u64) / (i as u64 + 1))
}

/// The smallest two-sided p-value any outcome can have with `n1` and `n2`
/// boots: complete separation. If it exceeds the level, no data decides.
pub fn min_p(n1: usize, n2: usize) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    (2.0 / choose(n1 + n2, n1) as f64).min(1.0)
}

fn mid_ranks(pooled: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..pooled.len()).collect();
    idx.sort_by(|&a, &b| pooled[a].total_cmp(&pooled[b]));
    let mut ranks = vec![0.0; pooled.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && pooled[idx[j + 1]] == pooled[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Two-sided p-value of the Mann-Whitney test of `a` against `b`. None
/// when a side is empty or any value is not finite.
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() || a.iter().chain(b).any(|x| !x.is_finite()) {
        return None;
    }
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let splits = choose(pooled.len(), a.len());
    if splits > MAX_EXACT_SPLITS {
        let method = MannWhitneyUMethod::AsymptoticInclContinuityCorrection;
        return mannwhitneyu(a, b, method, Alternative::TwoSided).ok().map(|(_, p)| p);
    }
    let ranks = mid_ranks(&pooled);
    // Every value identical: nothing distinguishes the sides.
    if ranks.iter().all(|r| *r == ranks[0]) {
        return Some(1.0);
    }
    let n1 = a.len();
    let mean = n1 as f64 * (pooled.len() as f64 + 1.0) / 2.0;
    let observed = (ranks[..n1].iter().sum::<f64>() - mean).abs();
    let mut extreme = 0u64;
    for pick in (0..pooled.len()).combinations(n1) {
        let r: f64 = pick.iter().map(|&i| ranks[i]).sum();
        // A relative epsilon: mid-ranks are halves, sums are exact in f64.
        if (r - mean).abs() >= observed - 1e-9 {
            extreme += 1;
        }
    }
    Some(extreme as f64 / splits as f64)
}

/// The Hodges-Lehmann estimate of the shift from `a` to `b` (the median of
/// every pairwise difference) and a distribution-free interval of at least
/// `level` confidence (Moses), from the exact null distribution of U.
/// The interval is None when the sample is too small for that level: with
/// 3 boots a side no interval reaches 95 % (the widest covers 90 %).
pub fn hodges_lehmann(a: &[f64], b: &[f64], level: f64) -> Option<(f64, Option<(f64, f64)>)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut d: Vec<f64> = a.iter().cartesian_product(b).map(|(x, y)| y - x).collect();
    d.sort_by(|x, y| x.total_cmp(y));
    let m = d.len();
    let est = if m % 2 == 1 { d[m / 2] } else { (d[m / 2 - 1] + d[m / 2]) / 2.0 };
    let k = moses_k(a.len(), b.len(), (1.0 - level) / 2.0);
    let ci = (k > 0).then(|| (d[k - 1], d[m - k]));
    Some((est, ci))
}

/// The largest k with P(U <= k - 1) <= tail under the untied null: the
/// interval runs from the k-th smallest pairwise difference to the k-th
/// largest. Zero when even U = 0 is too likely.
fn moses_k(n1: usize, n2: usize, tail: f64) -> usize {
    let splits = choose(n1 + n2, n1);
    if splits > MAX_EXACT_SPLITS {
        // Normal approximation of U's quantile, fine at these sizes.
        let (n1f, n2f) = (n1 as f64, n2 as f64);
        let sd = (n1f * n2f * (n1f + n2f + 1.0) / 12.0).sqrt();
        use statrs::distribution::{ContinuousCDF, Normal};
        let z = Normal::standard().inverse_cdf(1.0 - tail);
        return (n1f * n2f / 2.0 - z * sd).floor().max(0.0) as usize;
    }
    // Counts of each U over every split of ranks 1..=n1+n2.
    let mut counts = vec![0u64; n1 * n2 + 1];
    let base = n1 * (n1 + 1) / 2;
    for pick in (1..=n1 + n2).combinations(n1) {
        counts[pick.iter().sum::<usize>() - base] += 1;
    }
    let mut cum = 0u64;
    for (u, c) in counts.iter().enumerate() {
        cum += c;
        if cum as f64 / splits as f64 > tail {
            return u;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_p_needs_enough_boots() {
        assert!((min_p(3, 3) - 0.1).abs() < 1e-12);
        assert!((min_p(5, 5) - 2.0 / 252.0).abs() < 1e-12);
        // Complete separation at 3 a side is p = 0.1, not 0.0495.
        let p = mann_whitney_p(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!((p - 0.1).abs() < 1e-12, "{p}");
    }

    #[test]
    fn tied_samples_get_the_exact_conditional_p() {
        // 0.1 us steps: 1.9 1.9 2.0 vs 2.0 2.1 2.1. Enumerated by hand: of
        // the 20 splits, 4 are at least this far from the mean rank sum.
        let p = mann_whitney_p(&[1.9, 1.9, 2.0], &[2.0, 2.1, 2.1]).unwrap();
        assert!((p - 0.2).abs() < 1e-12, "{p}");
        assert_eq!(mann_whitney_p(&[5.0; 4], &[5.0; 4]), Some(1.0));
        assert_eq!(mann_whitney_p(&[f64::NAN, 1.0], &[1.0]), None);
    }

    #[test]
    fn untied_p_matches_scipy_exact_and_ties_stay_conservative() {
        // scipy.stats.mannwhitneyu's documented example, method="exact":
        // statistic 17, p 0.1111 (and the same with the sides swapped).
        let a = [19.0, 22.0, 16.0, 29.0, 24.0];
        let b = [20.0, 11.0, 17.0, 12.0];
        for (x, y) in [(&a[..], &b[..]), (&b[..], &a[..])] {
            let p = mann_whitney_p(x, y).unwrap();
            assert!((p - 1.0 / 9.0).abs() < 1e-12, "{p}");
        }
        // Separated with ties is no more significant than separated without.
        let tied = mann_whitney_p(&[1.0, 1.0, 2.0, 2.0, 3.0], &[4.0, 4.0, 5.0, 6.0, 6.0]).unwrap();
        assert!(tied >= min_p(5, 5) - 1e-12);
    }

    #[test]
    fn moses_interval_has_its_coverage_or_none() {
        assert_eq!(moses_k(3, 3, 0.025), 0);
        assert_eq!(moses_k(4, 4, 0.025), 1);
        assert_eq!(moses_k(5, 5, 0.025), 3);
        let (est, ci) = hodges_lehmann(&[10.0, 11.0, 12.0, 13.0, 14.0], &[20.0, 21.0, 22.0, 23.0, 24.0], 0.95).unwrap();
        assert_eq!(est, 10.0);
        let (lo, hi) = ci.unwrap();
        assert!(lo > 0.0 && lo <= 10.0 && hi >= 10.0, "{lo} {hi}");
        assert_eq!(hodges_lehmann(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], 0.95).unwrap().1, None);
    }
}
