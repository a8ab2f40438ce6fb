//! The matrix: which kernels, on which guests, running what, with which
//! swiotlb boot settings, how many times, compared how.

pub mod run;

use crate::failure::{Failure, Result};
use crate::guest::profile::Profile;
use crate::kernel::arch::Arch;
use crate::kernel::series::{Series, SeriesSource};
use crate::kernel::variant::Variant;
pub use crate::results::{Axis, Comparison, ExpectedFailure};
use crate::results::{CellKey, Shard};
use crate::workload::Workload;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    pub repetitions: u32,
    pub kernels: Vec<String>,
    /// Patch series to put on kernels of the matrix: each adds variants
    /// `KERNEL+SERIES` (and `KERNEL+SERIES@N` per patch) to the kernel axis.
    #[serde(default)]
    pub series: Vec<SeriesEntry>,
    pub profiles: Vec<String>,
    pub workloads: Vec<String>,
    /// Workload parameters to override, by workload (smaller sizes for a
    /// quick run, longer runs for a publication).
    #[serde(default)]
    pub params: BTreeMap<String, BTreeMap<String, serde_yaml::Value>>,
    /// Name -> extra kernel command line (empty: the kernel's default pool),
    /// optionally only for some workloads or profiles.
    pub swiotlb: BTreeMap<String, SwiotlbSetting>,
    #[serde(default)]
    pub compare: Vec<Comparison>,
    /// Cells known to fail, and why: a regression gate must stay green on
    /// a failure that is the point (a fixed 1 MiB pool cannot map a
    /// framebuffer), and must notice when one starts passing.
    #[serde(default)]
    pub expect_fail: Vec<ExpectedFailure>,
    /// Seconds a guest may take to reach init (default: 60 with KVM, 240
    /// under TCG, which a busy two-core host needs).
    #[serde(default)]
    pub boot_timeout_s: Option<u64>,
}

impl Matrix {
    /// Put a known variant on the kernel axis for this run: a series'
    /// prefix a bisection boots, or a kernel a resumed run's plan names.
    pub fn join_kernel_axis(&mut self, kernel: &str) {
        if !self.kernels.iter().any(|k| k == kernel) {
            self.kernels.push(kernel.to_string());
        }
    }

    /// The expected failure declared for a cell, if any.
    pub fn expected_failure(&self, key: &CellKey) -> Option<&ExpectedFailure> {
        let id = key.id();
        self.spec.expect_fail.iter().find(|e| glob::Pattern::new(&e.cells).is_ok_and(|p| p.matches(&id)))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesEntry {
    /// An mbox, a directory of patches or a quilt `series` file, relative
    /// to the matrix file.
    pub path: PathBuf,
    /// The kernels it goes on (default: every kernel of the matrix).
    #[serde(default)]
    pub on: Vec<String>,
    /// Also build every prefix of the series, to tell which patch moved a
    /// metric.
    #[serde(default)]
    pub per_patch: bool,
}

/// A value of the swiotlb axis: kernel words, or kernel words that apply
/// only to some workloads or profiles (a pool small enough to force growth
/// says nothing new about MemTotal).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SwiotlbSetting {
    Words(String),
    Restricted {
        args: String,
        #[serde(default)]
        workloads: Vec<String>,
        #[serde(default)]
        profiles: Vec<String>,
    },
}

impl SwiotlbSetting {
    pub fn args(&self) -> &str {
        match self {
            SwiotlbSetting::Words(w) => w,
            SwiotlbSetting::Restricted { args, .. } => args,
        }
    }

    fn applies(&self, workload: &str, profile: &str) -> bool {
        match self {
            SwiotlbSetting::Words(_) => true,
            SwiotlbSetting::Restricted { workloads, profiles, .. } => {
                (workloads.is_empty() || workloads.iter().any(|w| w == workload))
                    && (profiles.is_empty() || profiles.iter().any(|p| p == profile))
            }
        }
    }
}

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

/// The 1-based line of the first occurrence of `needle` in the file, so
/// semantic errors point at a line like syntax errors do.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1).unwrap_or(1)
}

/// More boots than this is a typo, and would only be found out hours later
/// (or as an allocation of billions of planned boots).
pub const MAX_REPS: u32 = 1000;

impl Matrix {
    pub fn load(root: &Path, file: &Path) -> Result<Matrix> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::input(format!("cannot read {}: {e}", file.display())))?;
        let spec: MatrixFile = crate::yaml::parse(file, &text)?;
        let at =
            |needle: &str, msg: String| Failure::input(format!("{}:{}: {msg}", file.display(), line_of(&text, needle)));
        if !(1..=MAX_REPS).contains(&spec.repetitions) {
            return Err(at("repetitions", format!("repetitions must be 1 to {MAX_REPS}")));
        }
        if let Some(t) = spec.boot_timeout_s.filter(|t| !(1..=crate::guest::machine::MAX_TIMEOUT_S).contains(t)) {
            return Err(at(
                "boot_timeout_s",
                format!("boot_timeout_s: {t} is not 1 to {} seconds", crate::guest::machine::MAX_TIMEOUT_S),
            ));
        }
        for (axis, list) in [
            ("kernels", spec.kernels.len()),
            ("profiles", spec.profiles.len()),
            ("workloads", spec.workloads.len()),
            ("swiotlb", spec.swiotlb.len()),
        ] {
            if list == 0 {
                return Err(at(axis, format!("`{axis}` is empty: the matrix would have no cells")));
            }
        }
        let mut variants = BTreeMap::new();
        for k in &spec.kernels {
            let v = Variant::load(root, k).map_err(|e| at(k, e.message))?;
            variants.insert(k.clone(), v);
        }
        let mut kernels = spec.kernels.clone();
        let mut compare = spec.compare.clone();
        let mut on_kernels = Vec::new();
        let dir = file.parent().unwrap_or(Path::new("."));
        for entry in &spec.series {
            let needle = entry.path.display().to_string();
            let path = crate::kernel::variant::resolve(dir, &entry.path);
            let series = Series::load(&SeriesSource::Path(path)).map_err(|e| at(&needle, e.message))?;
            let on = if entry.on.is_empty() { spec.kernels.clone() } else { entry.on.clone() };
            for base in &on {
                let v = variants
                    .get(base)
                    .cloned()
                    .ok_or_else(|| at(base, format!("series {needle}: `on: {base}` is not a kernel of this matrix")))?;
                let mut prev = base.clone();
                let mut prefixes = Vec::new();
                for n in 1..=series.patches.len() {
                    let upto = (n < series.patches.len()).then_some(n);
                    let d = v.with_series(&series, upto);
                    prefixes.push(d.name.clone());
                    if entry.per_patch || upto.is_none() {
                        if entry.per_patch {
                            compare.push(Comparison {
                                axis: Axis::Kernel,
                                base: prev.clone(),
                                new: d.name.clone(),
                                gate: true,
                            });
                        }
                        prev = d.name.clone();
                        kernels.push(d.name.clone());
                    }
                    variants.insert(d.name.clone(), d);
                }
                let full = v.with_series(&series, None).name;
                let whole = Comparison { axis: Axis::Kernel, base: base.clone(), new: full, gate: true };
                if !compare.contains(&whole) {
                    compare.push(whole);
                }
                on_kernels.push(SeriesOnKernel { series: series.clone(), base: base.clone(), prefixes });
            }
        }
        let mut profiles = BTreeMap::new();
        let mut arches = BTreeMap::new();
        for p in &spec.profiles {
            let prof = Profile::load(root, p).map_err(|e| at(p, e.message))?;
            if !arches.contains_key(&prof.arch) {
                arches.insert(prof.arch.clone(), Arch::load(root, &prof.arch).map_err(|e| at(p, e.message))?);
            }
            profiles.insert(p.clone(), prof);
        }
        let mut workloads = BTreeMap::new();
        for w in &spec.workloads {
            let mut wl = Workload::load(root, w).map_err(|e| at(w, e.message))?;
            if let Some(over) = spec.params.get(w) {
                wl = wl.with_params(over).map_err(|e| at("params", e.message))?;
            }
            workloads.insert(w.clone(), wl);
        }
        for w in spec.params.keys().filter(|w| !spec.workloads.contains(w)) {
            return Err(at("params", format!("params: `{w}` is not a workload of this matrix")));
        }
        for (name, setting) in &spec.swiotlb {
            crate::paths::check_name("swiotlb setting", name).map_err(|e| at(name, e))?;
            let args = setting.args();
            if args.split_whitespace().any(|w| !w.starts_with("swiotlb=") && !w.starts_with("iommu=")) {
                return Err(at(
                    name,
                    format!("swiotlb setting `{name}`: expected only swiotlb=/iommu= words, found `{args}`"),
                ));
            }
            if let SwiotlbSetting::Restricted { workloads, profiles, .. } = setting {
                for w in workloads.iter().filter(|w| !spec.workloads.contains(w)) {
                    return Err(at(name, format!("swiotlb setting `{name}`: `{w}` is not a workload of this matrix")));
                }
                for p in profiles.iter().filter(|p| !spec.profiles.contains(p)) {
                    return Err(at(name, format!("swiotlb setting `{name}`: `{p}` is not a profile of this matrix")));
                }
            }
        }
        for e in &spec.expect_fail {
            if let Err(err) = glob::Pattern::new(&e.cells) {
                return Err(at(&e.cells, format!("expect_fail: `{}` is not a glob: {err}", e.cells)));
            }
        }
        for c in &compare {
            let values: Vec<&String> = match c.axis {
                Axis::Kernel => kernels.iter().collect(),
                Axis::Profile => spec.profiles.iter().collect(),
                Axis::Workload => spec.workloads.iter().collect(),
                Axis::Swiotlb => spec.swiotlb.keys().collect(),
            };
            for v in [&c.base, &c.new] {
                if !values.contains(&v) {
                    return Err(at(v, format!("compare: `{v}` is not a value of the {} axis", c.axis)));
                }
            }
        }
        Ok(Matrix {
            file: file.to_path_buf(),
            spec,
            kernels,
            variants,
            arches,
            profiles,
            workloads,
            compare,
            series: on_kernels,
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;

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
        let e = load_text(&GOOD.replace("1mib: swiotlb=512,1", "1mib: mem=1G")).unwrap_err();
        assert!(e.message.starts_with("matrix.yaml:7: swiotlb setting `1mib`"), "{}", e.message);
        let e = load_text(&GOOD.replace("workloads: [memory, dmabench]", "workload: [memory]")).unwrap_err();
        assert!(e.message.starts_with("matrix.yaml:4:1: unknown field `workload`"), "{}", e.message);
    }
}
