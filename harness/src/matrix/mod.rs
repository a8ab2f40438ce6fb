//! The matrix: which kernels, on which guests, running what, with which
//! swiotlb boot settings, how many times, compared how.
//!
//! `schema`: the file's shape. `load`: reading and checking it and all it
//! names. `expand`: cells, builds, order, shards. `run`: booting them.

mod expand;
mod load;
pub mod run;
mod schema;

pub use crate::results::{Axis, Comparison, ExpectedFailure};
pub use load::MAX_REPS;
pub use schema::{MatrixFile, SeriesEntry, SwiotlbSetting};

use crate::guest::profile::Profile;
use crate::kernel::arch::Arch;
use crate::kernel::series::Series;
use crate::kernel::variant::Variant;
use crate::results::CellKey;
use crate::workload::Workload;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A loaded and checked matrix, with everything it names loaded too.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub file: PathBuf,
    pub spec: MatrixFile,
    /// Every value of the kernel axis: the listed variants, then those the
    /// series derive from them.
    pub kernels: Vec<String>,
    pub variants: BTreeMap<String, Variant>,
    pub arches: BTreeMap<String, Arch>,
    pub profiles: BTreeMap<String, Profile>,
    pub workloads: BTreeMap<String, Workload>,
    /// The comparisons to report: the file's, then base vs series (and
    /// patch by patch) for every series.
    pub compare: Vec<Comparison>,
    /// Every series put on a kernel, with the kernel names of its prefixes
    /// (built only when a run asks for them: `per_patch`, or a bisection).
    pub series: Vec<SeriesOnKernel>,
}

/// How the kernel axis names a pinned last good build.
pub const GOOD_SUFFIX: &str = "@good";

/// A series on one base kernel: `prefixes[k - 1]` is the kernel after
/// patch k, the last one the whole series.
#[derive(Debug, Clone)]
pub struct SeriesOnKernel {
    pub series: Series,
    pub base: String,
    pub prefixes: Vec<String>,
}

/// A cell the matrix cannot run, and why (shown by --dry-run).
#[derive(Debug, Clone)]
pub struct Skipped {
    pub key: CellKey,
    pub why: String,
}

impl Matrix {
    /// Put a known variant on the kernel axis for this run: a series'
    /// prefix a bisection boots, or a kernel a resumed run's plan names.
    pub fn join_kernel_axis(&mut self, kernel: &str) {
        if !self.kernels.iter().any(|k| k == kernel) {
            self.kernels.push(kernel.to_string());
        }
    }

    /// Put the last good build of `kernel` (cache keys by arch, named by a
    /// stored baseline) on the kernel axis as `KERNEL@good`, and judge
    /// `kernel` against it in a gated comparison: the two boot interleaved
    /// in one run, so drift between nights cannot pass for a change.
    pub fn pin_last_good(&mut self, kernel: &str, keys: BTreeMap<String, String>) -> Option<String> {
        let v = self.variants.get(kernel)?;
        let name = format!("{kernel}{GOOD_SUFFIX}");
        let pinned = v.pinned_to(&name, keys);
        if pinned.arches.is_empty() {
            return None;
        }
        self.variants.insert(name.clone(), pinned);
        let at = self.kernels.iter().position(|k| k == kernel).unwrap_or(0);
        if !self.kernels.contains(&name) {
            self.kernels.insert(at, name.clone());
        }
        let c =
            Comparison { axis: crate::results::Axis::Kernel, base: name.clone(), new: kernel.to_string(), gate: true };
        if !self.compare.contains(&c) {
            self.compare.insert(0, c);
        }
        Some(name)
    }

    /// The expected failure declared for a cell, if any.
    pub fn expected_failure(&self, key: &CellKey) -> Option<&ExpectedFailure> {
        let id = key.id();
        self.spec.expect_fail.iter().find(|e| glob::Pattern::new(&e.cells).is_ok_and(|p| p.matches(&id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::{Failure, Result};
    use crate::results::Shard;
    use std::path::Path;

    fn load_in(dir: &Path, text: &str) -> Result<Matrix> {
        let f = dir.join("matrix.yaml");
        std::fs::write(&f, text).unwrap();
        Matrix::load(&crate::paths::project_root(), &f)
            .map_err(|e| Failure::input(e.message.replace(&f.display().to_string(), "matrix.yaml")))
    }

    fn load_text(text: &str) -> Result<Matrix> {
        load_in(tempfile::tempdir().unwrap().path(), text)
    }

    const GOOD: &str = "repetitions: 2\nkernels: [6.12-fixed, 6.12-dynamic]\nprofiles: [dma32]\nworkloads: [memory, dmabench]\nswiotlb:\n  default: \"\"\n  1mib: swiotlb=512,1\ncompare:\n  - {axis: kernel, base: 6.12-fixed, new: 6.12-dynamic}\n";

    #[test]
    fn expands_the_full_product_interleaving_kernels() {
        let m = load_text(GOOD).unwrap();
        let (cells, skipped) = m.expand();
        assert_eq!(cells.len(), 2 * 2 * 2);
        assert!(skipped.is_empty());
        assert_eq!(cells[0].kernel, "6.12-fixed");
        assert_eq!(cells[1].kernel, "6.12-dynamic");
        assert_eq!(cells[0].with_axis(Axis::Kernel, "6.12-dynamic"), cells[1]);
        let sched = m.schedule(&cells, 1);
        assert_eq!(sched.len(), 16);
        // Every cell once per repetition, A and B of a pair side by side.
        for r in 0..2u32 {
            let rep: Vec<&CellKey> = sched[r as usize * 8..][..8]
                .iter()
                .map(|(c, rr)| {
                    assert_eq!(*rr, r);
                    c
                })
                .collect();
            for c in &cells {
                assert_eq!(rep.iter().filter(|x| **x == c).count(), 1);
            }
            for pair in rep.chunks(2) {
                assert_eq!(pair[0].with_axis(Axis::Kernel, &pair[1].kernel), *pair[1]);
            }
        }
        // Seeded: the same seed, the same order; another seed, another.
        assert_eq!(m.schedule(&cells, 1), sched);
        assert!((2..20).any(|s| m.schedule(&cells, s) != sched));
        assert_eq!(
            m.builds(&cells),
            [("6.12-fixed".into(), "x86_64".into()), ("6.12-dynamic".into(), "x86_64".into())]
        );
    }

    /// The baseline's last good build boots beside tonight's kernel: on the
    /// kernel axis next to it, only where it was built, in a gated
    /// comparison the schedule keeps interleaved.
    #[test]
    fn a_pinned_last_good_build_is_judged_against_its_kernel_in_the_same_run() {
        let mut m = load_text(&GOOD.replace("profiles: [dma32]", "profiles: [dma32, arm64]")).unwrap();
        let keys: BTreeMap<String, String> = [("x86_64".to_string(), "abc".to_string())].into();
        assert_eq!(m.pin_last_good("6.12-dynamic", keys.clone()).as_deref(), Some("6.12-dynamic@good"));
        assert_eq!(m.kernels, ["6.12-fixed", "6.12-dynamic@good", "6.12-dynamic"]);
        assert_eq!(m.variants["6.12-dynamic@good"].pinned, keys);
        let c = &m.compare[0];
        assert_eq!((c.base.as_str(), c.new.as_str(), c.gate), ("6.12-dynamic@good", "6.12-dynamic", true));
        let (cells, skipped) = m.expand();
        // Built for x86_64 only: its arm64 cells are skipped, saying why.
        assert!(skipped.iter().any(|s| s.key.kernel == "6.12-dynamic@good" && s.why.contains("not built for arm64")));
        let good: Vec<&CellKey> = cells.iter().filter(|c| c.kernel == "6.12-dynamic@good").collect();
        assert_eq!(good.len(), 2 * 2);
        for (c, _) in m.schedule(&cells, 3).iter().filter(|(c, _)| c.kernel == "6.12-dynamic@good") {
            assert!(cells.contains(&c.with_axis(Axis::Kernel, "6.12-dynamic")));
        }
        // A kernel the matrix does not have, or no arch it boots: nothing.
        assert_eq!(m.pin_last_good("6.1", keys), None);
        assert_eq!(m.pin_last_good("6.12-fixed", [("riscv".to_string(), "k".to_string())].into()), None);
    }

    #[test]
    fn a_restricted_setting_makes_cells_only_where_it_applies() {
        let m = load_text(&GOOD.replace("1mib: swiotlb=512,1", "1mib: {args: 'swiotlb=512,1', workloads: [dmabench]}"))
            .unwrap();
        let (cells, skipped) = m.expand();
        assert_eq!(cells.len(), 2 * 2 + 2);
        assert!(skipped.is_empty());
        assert!(cells.iter().filter(|c| c.swiotlb == "1mib").all(|c| c.workload == "dmabench"));
    }

    #[test]
    fn shards_split_the_default_matrix_exactly_keeping_kernel_pairs_together() {
        let root = crate::paths::project_root();
        let m = Matrix::load(&root, &root.join("matrix.yaml")).unwrap();
        let (cells, _) = m.expand();
        let whole = m.schedule(&cells, 7);
        for n in 1..=5u32 {
            let mut seen: BTreeMap<(CellKey, u32), u32> = BTreeMap::new();
            let mut sizes = Vec::new();
            for k in 1..=n {
                // Another machine, another seed: the same share.
                let share = Matrix::share(m.schedule(&cells, 100 + k as u64), Shard { index: k, of: n });
                sizes.push(share.len());
                for b in &share {
                    *seen.entry(b.clone()).or_default() += 1;
                    let partner = b.0.with_axis(
                        Axis::Kernel,
                        if b.0.kernel == "6.12-fixed" { "6.12-dynamic" } else { "6.12-fixed" },
                    );
                    if cells.contains(&partner) {
                        assert!(
                            share.contains(&(partner, b.1)),
                            "{n} shards: {} rep {} without its pair",
                            b.0.id(),
                            b.1
                        );
                    }
                }
            }
            assert_eq!(seen.len(), whole.len(), "{n} shards");
            assert!(seen.values().all(|&v| v == 1), "{n} shards: a boot in two shards");
            assert!(whole.iter().all(|b| seen.contains_key(b)));
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 2 * whole.len() / (n as usize * 4) + 2, "{n} shards: unbalanced {sizes:?}");
        }
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, of: 3 }));
        for bad in ["0/3", "4/3", "3", "a/b", ""] {
            assert!(bad.parse::<Shard>().unwrap_err().contains("K/N"), "{bad}");
        }
    }

    #[test]
    fn default_matrix_loads() {
        let root = crate::paths::project_root();
        let m = Matrix::load(&root, &root.join("matrix.yaml")).unwrap();
        assert!(!m.expand().0.is_empty());
    }

    #[test]
    fn a_variant_meets_only_profiles_of_its_arches() {
        let m = load_text(
            &GOOD
                .replace("kernels: [6.12-fixed, 6.12-dynamic]", "kernels: [6.1, 6.12-dynamic]")
                .replace("profiles: [dma32]", "profiles: [dma32, arm64]")
                .replace("6.12-fixed, new", "6.1, new"),
        )
        .unwrap();
        let (cells, skipped) = m.expand();
        assert!(cells.iter().all(|c| !(c.kernel == "6.1" && c.profile == "arm64")));
        assert!(cells.iter().any(|c| c.kernel == "6.12-dynamic" && c.profile == "arm64"));
        assert!(skipped.iter().any(|s| s.key.kernel == "6.1" && s.why.contains("not built for arm64")), "{skipped:?}");
        assert!(m.builds(&cells).contains(&("6.12-dynamic".into(), "arm64".into())));
    }

    #[test]
    fn a_series_adds_kernels_and_comparisons_patch_by_patch() {
        let dir = tempfile::tempdir().unwrap();
        let patch = |n: u32| {
            format!("From {n:040} Mon Sep 17 00:00:00 2001\nFrom: A <a@b>\nSubject: [PATCH {n}/3] p{n}\n\n---\ndiff --git a/f{n} b/f{n}\nnew file mode 100644\n--- /dev/null\n+++ b/f{n}\n@@ -0,0 +1 @@\n+{n}\n-- \n2.39.2\n\n")
        };
        std::fs::write(dir.path().join("demo.mbox"), (1..=3).map(patch).collect::<String>()).unwrap();
        let text =
            GOOD.replace("profiles:", "series:\n  - {path: demo.mbox, on: [6.12-dynamic], per_patch: true}\nprofiles:");
        let m = load_in(dir.path(), &text).unwrap();
        assert_eq!(
            m.kernels,
            ["6.12-fixed", "6.12-dynamic", "6.12-dynamic+demo@1", "6.12-dynamic+demo@2", "6.12-dynamic+demo"]
        );
        let pairs: Vec<(String, String)> = m.compare.iter().map(|c| (c.base.clone(), c.new.clone())).collect();
        assert_eq!(
            pairs[1..],
            [
                ("6.12-dynamic".into(), "6.12-dynamic+demo@1".into()),
                ("6.12-dynamic+demo@1".into(), "6.12-dynamic+demo@2".into()),
                ("6.12-dynamic+demo@2".into(), "6.12-dynamic+demo".into()),
                ("6.12-dynamic".into(), "6.12-dynamic+demo".into()),
            ]
        );
        assert_eq!(m.variants["6.12-dynamic+demo@2"].extra.as_ref().unwrap().patches.len(), 2);
        let e = load_in(dir.path(), &text.replace("on: [6.12-dynamic]", "on: [6.13]")).unwrap_err();
        assert!(e.message.contains("`on: 6.13` is not a kernel of this matrix"), "{}", e.message);

        // Without per_patch only the whole series is on the kernel axis,
        // but every prefix is a known variant a bisection can ask for.
        let m = load_in(dir.path(), &text.replace(", per_patch: true", "")).unwrap();
        assert_eq!(m.kernels, ["6.12-fixed", "6.12-dynamic", "6.12-dynamic+demo"]);
        assert_eq!(m.series.len(), 1);
        assert_eq!(m.series[0].base, "6.12-dynamic");
        assert_eq!(m.series[0].prefixes, ["6.12-dynamic+demo@1", "6.12-dynamic+demo@2", "6.12-dynamic+demo"]);
        assert!(m.variants.contains_key("6.12-dynamic+demo@1"));
        assert_eq!(crate::bisect::pick(&m, None, None).unwrap().series.patches[1].subject, "p2");
        let e = crate::bisect::pick(&m, Some("other"), None).unwrap_err();
        assert!(e.message.contains("no series matches (it has: demo on 6.12-dynamic)"), "{}", e.message);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = load_text("repetitions: 2\nkernels: [6.12-fixed\n").unwrap_err();
        assert!(e.message.starts_with("matrix.yaml:"), "{}", e.message);
        let e = load_text(&GOOD.replace("6.12-dynamic]", "6.12-dynamc]")).unwrap_err();
        assert!(e.message.starts_with("matrix.yaml:2: unknown kernel variant `6.12-dynamc`"), "{}", e.message);
        let e = load_text(&GOOD.replace("repetitions: 2", "repetitions: two")).unwrap_err();
        assert!(e.message.starts_with("matrix.yaml:1:14: repetitions: invalid type"), "{}", e.message);
        let e = load_text(&GOOD.replace("new: 6.12-dynamic}", "new: 6.6}")).unwrap_err();
        assert!(e.message.contains("`6.6` is not a value of the kernel axis"), "{}", e.message);
        let e =
            load_text(&GOOD.replace("1mib: swiotlb=512,1", "1mib: {args: 'swiotlb=1', workloads: [fio]}")).unwrap_err();
        assert!(e.message.contains("`fio` is not a workload of this matrix"), "{}", e.message);
        let e = load_text(&GOOD.replace("1mib: swiotlb=512,1", "1mib: swiotlb=256,4")).unwrap_err();
        assert!(
            e.message.starts_with("matrix.yaml:7: swiotlb setting `1mib`: 256 slabs in 4 areas is under one 128-slab segment an area: the kernel would make the pool 512 slabs"),
            "{}",
            e.message
        );
        let e = load_text(&GOOD.replace("1mib: swiotlb=512,1", "1mib: swiotlb=512,3")).unwrap_err();
        assert!(e.message.contains("3 areas: the kernel would make it 4; ask for a power of two"), "{}", e.message);
        assert!(load_text(&GOOD.replace("1mib: swiotlb=512,1", "1mib: swiotlb=512,4")).is_ok());
        let e = load_text(&GOOD.replace("1mib: swiotlb=512,1", "1mib: mem=1G")).unwrap_err();
        assert!(e.message.starts_with("matrix.yaml:7: swiotlb setting `1mib`"), "{}", e.message);
        let e = load_text(&GOOD.replace("workloads: [memory, dmabench]", "workload: [memory]")).unwrap_err();
        assert!(e.message.starts_with("matrix.yaml:4:1: unknown field `workload`"), "{}", e.message);
    }
}
