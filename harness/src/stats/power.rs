//! The power of the test the verdicts really use, the exact two-sided
//! Mann-Whitney test at the handful of boots a cell gets: the shift it
//! detects with `POWER` probability, by simulation against its exact
//! critical value. At 4 to 6 boots a side a normal approximation is far
//! off (the test's p-values are coarse steps), which is why this exists.

use super::POWER;
use rand::{rngs::StdRng, Rng, SeedableRng};
use statrs::distribution::{ContinuousCDF, Normal};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Draws per power estimate: its standard error at 80 % is 0.9 points.
const DRAWS: usize = 2000;
/// Beyond this many splits, U's null distribution is taken as normal.
const MAX_EXACT: usize = 30;

/// How many of the `C(n1+n2, n1)` equally likely rank splits give each U,
/// by the usual recursion on the largest rank.
fn null_counts(n1: usize, n2: usize) -> Vec<f64> {
    // f[a][b] = counts of U for sizes a, b.
    let mut f: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); n2 + 1]; n1 + 1];
    for a in 0..=n1 {
        for b in 0..=n2 {
            f[a][b] = if a == 0 || b == 0 {
                vec![1.0]
            } else {
                let mut v = vec![0.0; a * b + 1];
                // The largest rank is on side a (adds b to U) or on side b.
                for (u, c) in f[a - 1][b].iter().enumerate() {
                    v[u + b] += c;
                }
                for (u, c) in f[a][b - 1].iter().enumerate() {
                    v[u] += c;
                }
                v
            };
        }
    }
    f[n1][n2].clone()
}

/// The largest c with P(U <= c) <= level / 2 under the null: the test
/// rejects when U <= c or U >= n1 n2 - c. None when even U = 0 is too
/// likely (no outcome at this n is significant).
pub fn critical_u(n1: usize, n2: usize, level: f64) -> Option<usize> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    if n1.max(n2) > MAX_EXACT {
        let (a, b) = (n1 as f64, n2 as f64);
        let sd = (a * b * (a + b + 1.0) / 12.0).sqrt();
        let z = Normal::standard().inverse_cdf(level / 2.0);
        let c = (a * b / 2.0 + z * sd).floor();
        return (c >= 0.0).then_some(c as usize);
    }
    let counts = null_counts(n1, n2);
    let total: f64 = counts.iter().sum();
    let mut cum = 0.0;
    let mut c = None;
    for (u, n) in counts.iter().enumerate() {
        cum += n;
        if cum / total <= level / 2.0 {
            c = Some(u);
        } else {
            break;
        }
    }
    c
}

/// The probability that the test rejects when the new side is shifted by
/// `delta` standard deviations of normal noise; a fixed seed, so the same
/// arguments give the same answer and a search over delta sees one curve.
pub fn power(n1: usize, n2: usize, level: f64, delta: f64) -> f64 {
    let Some(c) = critical_u(n1, n2, level) else { return 0.0 };
    let top = n1 * n2 - c;
    let normal = Normal::standard();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let draw = |rng: &mut StdRng| normal.inverse_cdf(rng.random_range(1e-12..1.0 - 1e-12));
    let mut rejected = 0;
    let (mut a, mut b) = (vec![0.0; n1], vec![0.0; n2]);
    for _ in 0..DRAWS {
        a.iter_mut().for_each(|x| *x = draw(&mut rng));
        b.iter_mut().for_each(|x| *x = draw(&mut rng) + delta);
        let u: usize = a.iter().map(|x| b.iter().filter(|y| *y < x).count()).sum();
        if u <= c || u >= top {
            rejected += 1;
        }
    }
    rejected as f64 / DRAWS as f64
}

/// The smallest shift (in standard deviations) detected with `POWER`
/// probability, by bisection; remembered per (n1, n2, level), since the
/// answer for any noise is this times the noise.
pub fn mde_sd(n1: usize, n2: usize, level: f64) -> Option<f64> {
    // (n1, n2, level's bits) -> the MDE in SDs.
    type Seen = Mutex<HashMap<(usize, usize, u64), Option<f64>>>;
    static SEEN: OnceLock<Seen> = OnceLock::new();
    let key = (n1, n2, level.to_bits());
    if let Some(v) = SEEN.get_or_init(Default::default).lock().unwrap().get(&key) {
        return *v;
    }
    let v = critical_u(n1, n2, level).and_then(|_| {
        let (mut lo, mut hi) = (0.0, 1.0);
        while power(n1, n2, level, hi) < POWER {
            hi *= 2.0;
            if hi > 64.0 {
                return None;
            }
        }
        for _ in 0..14 {
            let mid = (lo + hi) / 2.0;
            if power(n1, n2, level, mid) < POWER {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(hi)
    });
    SEEN.get_or_init(Default::default).lock().unwrap().insert(key, v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_null_distribution_and_critical_values_are_exact() {
        // 3 vs 3: 20 splits, U = 0 once.
        let c = null_counts(3, 3);
        assert_eq!(c.iter().sum::<f64>(), 20.0);
        assert_eq!(c[0], 1.0);
        // 2/20 = 0.1 two-sided at best: nothing is significant at 0.05.
        assert_eq!(critical_u(3, 3, 0.05), None);
        // 4 vs 4: 2/70 = 0.029 <= 0.05 at U = 0, 4/70 = 0.057 > 0.05 at 1.
        assert_eq!(critical_u(4, 4, 0.05), Some(0));
        assert_eq!(critical_u(5, 5, 0.05), Some(2));
    }

    #[test]
    fn the_printed_mde_has_its_power_and_the_old_one_did_not() {
        let k = mde_sd(4, 4, 0.05).unwrap();
        // The t-approximation used before, at 4 vs 4:
        // (t(6, .975) + t(6, .8)) * sqrt(1/4 + 1/4) / sqrt(3/pi)
        // = (2.447 + 0.906) * 0.7071 / 0.9772 = 2.43 SD; the exact test
        // detects that well under 80 % of the time.
        let old = 2.43;
        assert!(power(4, 4, 0.05, old) < 0.7, "{}", power(4, 4, 0.05, old));
        assert!(k > old && power(4, 4, 0.05, k) >= POWER, "{k}");
        // More boots, smaller MDE; a stricter level, larger.
        assert!(mde_sd(8, 8, 0.05).unwrap() < k);
        assert!(mde_sd(8, 8, 0.01).unwrap() > mde_sd(8, 8, 0.05).unwrap());
        assert_eq!(mde_sd(3, 3, 0.05), None);
    }
}
