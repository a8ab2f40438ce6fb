//! From a loaded matrix to boots: the cells (and the combinations that
//! cannot run), the builds they need, the seeded order, a shard's share.

use super::{Axis, Matrix, Skipped};
use crate::results::{CellKey, Shard};
use std::collections::BTreeSet;

impl Matrix {
    /// Every runnable cell, ordered so that cells differing only in kernel
    /// sit next to each other (run back to back, A/B interleaved), and the
    /// combinations that cannot run with the reason.
    pub fn expand(&self) -> (Vec<CellKey>, Vec<Skipped>) {
        let mut cells = Vec::new();
        let mut skipped = Vec::new();
        for p in &self.spec.profiles {
            for w in &self.spec.workloads {
                for (s, setting) in &self.spec.swiotlb {
                    if !setting.applies(w, p) {
                        continue;
                    }
                    for k in &self.kernels {
                        let key =
                            CellKey { kernel: k.clone(), profile: p.clone(), workload: w.clone(), swiotlb: s.clone() };
                        match self.why_not(&key) {
                            None => cells.push(key),
                            Some(why) => skipped.push(Skipped { key, why }),
                        }
                    }
                }
            }
        }
        (cells, skipped)
    }

    fn why_not(&self, key: &CellKey) -> Option<String> {
        let v = &self.variants[&key.kernel];
        let p = &self.profiles[&key.profile];
        let w = &self.workloads[&key.workload];
        if !v.supports(&p.arch) {
            return Some(format!(
                "kernel {} is not built for {} (its arches: {})",
                v.name,
                p.arch,
                v.arches.join(", ")
            ));
        }
        if let Some(why) = p.unavailable() {
            return Some(why);
        }
        if !p.workloads.is_empty() && !p.workloads.contains(&key.workload) {
            return Some(format!("profile is only for {}", p.workloads.join(", ")));
        }
        if !w.profiles.is_empty() && !w.profiles.contains(&key.profile) {
            return Some(format!("workload is only for {}", w.profiles.join(", ")));
        }
        for need in &w.needs {
            if !p.has(need) {
                return Some(format!("profile has no `{need}`"));
            }
        }
        None
    }

    /// The (variant, arch) builds the runnable cells need, in first-use order.
    pub fn builds(&self, cells: &[CellKey]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for c in cells {
            let b = (c.kernel.clone(), self.profiles[&c.profile].arch.clone());
            if !out.contains(&b) {
                out.push(b);
            }
        }
        out
    }

    /// Run order: repetition-major, so a drifting host spreads over every
    /// cell instead of landing on one kernel. Within a repetition the
    /// cells that differ only in kernel stay side by side (A and B see the
    /// same host load) in a random order, and those groups run in a random
    /// order too, so no kernel always goes first: seeded, and the seed is
    /// kept with the run.
    pub fn schedule(&self, cells: &[CellKey], seed: u64) -> Vec<(CellKey, u32)> {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut groups: Vec<Vec<CellKey>> = Vec::new();
        for c in cells {
            match groups.last_mut() {
                Some(g) if g[0].with_axis(Axis::Kernel, &c.kernel) == *c => g.push(c.clone()),
                _ => groups.push(vec![c.clone()]),
            }
        }
        let mut out = Vec::new();
        for r in 0..self.spec.repetitions {
            let mut order = groups.clone();
            order.shuffle(&mut rng);
            for mut g in order {
                g.shuffle(&mut rng);
                out.extend(g.into_iter().map(|c| (c, r)));
            }
        }
        out
    }

    /// Shard `s`'s share of a schedule. The unit dealt out is a group of
    /// boots that differ only in kernel (one repetition of one cell's
    /// kernels): each fixed-vs-dynamic pair is measured on one machine,
    /// every boot lands in exactly one shard, and shards differ by at most
    /// one group. Groups go round-robin in a fixed order (repetition,
    /// then cell), so every machine computes the same split.
    pub fn share(schedule: Vec<(CellKey, u32)>, s: Shard) -> Vec<(CellKey, u32)> {
        let group = |c: &CellKey, rep: u32| (rep, c.with_axis(Axis::Kernel, ""));
        let groups: BTreeSet<(u32, CellKey)> = schedule.iter().map(|(c, r)| group(c, *r)).collect();
        let mine: BTreeSet<&(u32, CellKey)> =
            groups.iter().enumerate().filter(|(i, _)| *i as u32 % s.of == s.index - 1).map(|(_, g)| g).collect();
        schedule.into_iter().filter(|(c, r)| mine.contains(&group(c, *r))).collect()
    }
}
