//! The one result model. Guests produce it, the store writes it, every
//! report reads it. Metrics are flat `workload.metric` names (as lkp-tests
//! does) so any two runs compare without special cases.

pub mod env;
pub mod merge;
pub mod store;

use crate::failure::{Failure, FailureClass};
use env::{AccelChoice, Clock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
    /// Informational (a pool size, a count of slabs): shown, never judged.
    None,
}

/// Declared once, where the workload is defined (as mmtests does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricDecl {
    pub unit: String,
    pub better: Better,
    pub description: String,
    /// A headline metric: a regression beyond its threshold fails `--gate`.
    /// The rest are shown and judged but never fail a run, so a nightly
    /// gate tests a few metrics (and corrects for those few) instead of
    /// hundreds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gate: bool,
    /// Identical boots give identical values (a pool size, MemTotal): a
    /// difference present in every boot is decided without a noise model.
    /// Never set it on a timing or a throughput.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deterministic: bool,
    /// A guest's timing of CPU work alone (no device or host peer inside
    /// the timed span, e.g. one dma_map_single). On the instruction clock
    /// it counts instructions and repeats exactly between identical boots,
    /// so samples taken there are deterministic (see `on_clock`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counted: bool,
    /// The smallest relative change (percent) worth failing a gate on,
    /// whatever calibration says: TCG guests on a shared host drift by a
    /// few percent between runs. Default: `DEFAULT_FLOOR_PCT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_pct: Option<f64>,
}

/// Below this a change is not worth a red gate on an emulated guest.
pub const DEFAULT_FLOOR_PCT: f64 = 5.0;

/// The floor of a counted timing on the instruction clock, where it is
/// deterministic: in the published default-matrix run 135 of 144 counted
/// dmabench series repeat exactly across boots and the other 9 move by one
/// step of dma_map_benchmark's 0.1 us resolution (judged as noisy, not
/// exact), so a change that repeats in every boot is real at any size;
/// 1 % (one more instruction in a hundred on the map path) is the
/// smallest worth a red nightly.
pub const COUNTED_FLOOR_PCT: f64 = 1.0;

impl MetricDecl {
    pub fn is_directional(&self) -> bool {
        self.better != Better::None
    }
    pub fn floor_pct(&self) -> f64 {
        self.floor_pct.unwrap_or(DEFAULT_FLOOR_PCT)
    }

    /// The declaration that goes with samples measured on `clock`: a
    /// counted timing is deterministic on the instruction clock.
    pub fn on_clock(&self, clock: Clock) -> MetricDecl {
        let mut d = self.clone();
        if self.counted && matches!(clock, Clock::Instructions(_)) {
            d.deterministic = true;
            d.floor_pct = Some(self.floor_pct().min(COUNTED_FLOOR_PCT));
        }
        d
    }
}

/// An axis of the matrix: what a comparison varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    Kernel,
    Profile,
    Workload,
    Swiotlb,
}

impl Axis {
    pub const ALL: [Axis; 4] = [Axis::Kernel, Axis::Profile, Axis::Workload, Axis::Swiotlb];
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Axis::Kernel => "kernel",
            Axis::Profile => "profile",
            Axis::Workload => "workload",
            Axis::Swiotlb => "swiotlb",
        })
    }
}

/// "Put `base` and `new` side by side along `axis`, all else equal."
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    pub axis: Axis,
    pub base: String,
    pub new: String,
    /// Its gated metrics decide `--gate` (base vs a patch series is gated
    /// by default; fixed vs dynamic, which differ by design, is not).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gate: bool,
}

/// Cells (a glob over `KERNEL.PROFILE.WORKLOAD.SWIOTLB`) that are expected
/// to fail with this class.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailure {
    pub cells: String,
    pub class: FailureClass,
    pub why: String,
    /// Words every expected failure's message holds: another failure of
    /// the same class in these cells is not the one declared, and fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// A known bug these cells hit only sometimes: a pass is a pass, not
    /// an XPASS asking for the declaration to go.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub intermittent: bool,
}

/// A kernel log line that matched a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Finding {
    pub rule: String,
    pub line: String,
    /// Set when the workload declared this line as caused on purpose.
    pub expected_because: Option<String>,
}

/// The coordinates of a cell in the matrix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CellKey {
    pub kernel: String,
    pub profile: String,
    pub workload: String,
    /// Name of the swiotlb boot setting (an axis of the matrix).
    pub swiotlb: String,
}

impl CellKey {
    pub fn id(&self) -> String {
        format!("{}.{}.{}.{}", self.kernel, self.profile, self.workload, self.swiotlb)
    }
    /// The value of an axis, for comparisons along any axis.
    pub fn axis(&self, axis: Axis) -> &str {
        match axis {
            Axis::Kernel => &self.kernel,
            Axis::Profile => &self.profile,
            Axis::Workload => &self.workload,
            Axis::Swiotlb => &self.swiotlb,
        }
    }
    pub fn with_axis(&self, axis: Axis, value: &str) -> CellKey {
        let mut k = self.clone();
        *match axis {
            Axis::Kernel => &mut k.kernel,
            Axis::Profile => &mut k.profile,
            Axis::Workload => &mut k.workload,
            Axis::Swiotlb => &mut k.swiotlb,
        } = value.into();
        k
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
}

/// One boot of one cell.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RepResult {
    pub rep: u32,
    pub status: Status,
    pub failure: Option<Failure>,
    pub boot_s: Option<f64>,
    pub total_s: f64,
    /// Relative to the run directory.
    pub guest_dir: String,
    #[serde(default)]
    pub log_findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Sample {
    pub rep: u32,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Metric {
    #[serde(flatten)]
    pub decl: MetricDecl,
    pub samples: Vec<Sample>,
}

impl Metric {
    pub fn values(&self) -> Vec<f64> {
        self.samples.iter().map(|s| s.value).collect()
    }
}

/// Everything about one cell: written after every repetition, so an
/// interrupted run keeps what it measured.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CellResult {
    pub key: CellKey,
    /// The kernel's build key (content hash) and whether it is dynamic.
    pub kernel_build: String,
    pub swiotlb_dynamic: bool,
    pub swiotlb_cmdline: String,
    pub accel: AccelChoice,
    pub emulated: bool,
    pub reps: Vec<RepResult>,
    pub metrics: BTreeMap<String, Metric>,
    /// The matrix said this cell fails, and why.
    #[serde(default)]
    pub expected_failure: Option<ExpectedFailure>,
}

impl CellResult {
    pub fn status(&self) -> Status {
        if !self.reps.is_empty() && self.reps.iter().all(|r| r.status == Status::Pass) {
            Status::Pass
        } else {
            Status::Fail
        }
    }

    /// Failed as the matrix said it would: every failed repetition has the
    /// declared class (and the declared words).
    pub fn failed_as_expected(&self) -> bool {
        self.expected_failure.as_ref().is_some_and(|e| {
            self.status() == Status::Fail
                && self
                    .reps
                    .iter()
                    .filter_map(|r| r.failure.as_ref())
                    .all(|f| f.class == e.class && e.matches.as_deref().is_none_or(|w| f.message.contains(w)))
        })
    }

    /// Passed, though the matrix said it fails every time: its
    /// declaration is out of date.
    pub fn xpass(&self) -> Option<&ExpectedFailure> {
        self.expected_failure.as_ref().filter(|e| self.status() == Status::Pass && !e.intermittent)
    }

    /// The most serious failure among the repetitions.
    pub fn worst_failure(&self) -> Option<&Failure> {
        self.reps.iter().filter_map(|r| r.failure.as_ref()).max_by_key(|f| f.class)
    }
}

/// What a run set out to boot and how far it got: written before the
/// first boot, rewritten at the end. A run killed outright stays
/// `running`; a report tells either apart from a finished one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunPlan {
    /// Every boot, in run order.
    pub boots: Vec<PlannedBoot>,
    pub state: RunState,
    /// Set in a shard's run: which share of the whole plan it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardOf>,
    /// How the last invocation spent its time (`bounce bench matrix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<RunTiming>,
}

/// Wall time of a run: getting ready (kernels, initramfs, accelerator),
/// then booting, with how many guests could run at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunTiming {
    pub jobs: usize,
    pub prepare_s: f64,
    pub boots_s: f64,
}

/// Share `index` of `of` (both from 1): `--shard 2/3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shard {
    pub index: u32,
    pub of: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let parsed = s.split_once('/').and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, of)) if index >= 1 && index <= of => Ok(Shard { index, of }),
            _ => Err(format!("`{s}`: a shard is K/N with 1 <= K <= N, e.g. 2/3")),
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardOf {
    pub shard: Shard,
    /// The whole plan's boots, across all shards: what a merge must total.
    pub whole_plan_boots: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlannedBoot {
    pub cell: CellKey,
    pub rep: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Complete,
    Interrupted,
}

impl RunPlan {
    /// The planned boots no cell has a record of, in run order.
    pub fn missing(&self, cells: &[CellResult]) -> Vec<PlannedBoot> {
        let done: std::collections::BTreeSet<(&CellKey, u32)> =
            cells.iter().flat_map(|c| c.reps.iter().map(move |r| (&c.key, r.rep))).collect();
        self.boots.iter().filter(|b| !done.contains(&(&b.cell, b.rep))).cloned().collect()
    }

    /// One line for the top of a report when the run is not whole.
    pub fn incomplete(&self, cells: &[CellResult]) -> Option<String> {
        let missing = self.missing(cells).len();
        let how = match (self.state, missing) {
            (RunState::Complete, 0) => return None,
            (RunState::Interrupted, _) => "INTERRUPTED",
            (RunState::Running, _) => "UNFINISHED (still running, or the harness was killed)",
            (RunState::Complete, _) => "INCOMPLETE",
        };
        Some(format!(
            "{how}: {} of {} planned boots ran; `bounce matrix --resume RUN` runs the {missing} missing",
            self.boots.len() - missing,
            self.boots.len()
        ))
    }
}

/// `message` with every absolute path into `guest_dir` (a boot's
/// `guests/CELL/rep-N`) cut to the part under the run directory: a run is
/// copied, published and read elsewhere, where only its own layout holds.
pub fn relative_to_run(message: &str, guest_dir: &str) -> String {
    if guest_dir.is_empty() {
        return message.to_string();
    }
    let needle = format!("/{}", guest_dir.trim_end_matches('/'));
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(&needle) {
        let (before, after) = (&rest[..at], &rest[at + needle.len()..]);
        // `rep-1` is no prefix of `rep-10`.
        let whole = !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        let start = before.rfind(|c: char| c.is_whitespace() || "([{`'\"=,;".contains(c)).map(|i| i + 1).unwrap_or(0);
        if whole && before[start..].starts_with('/') {
            out.push_str(&before[..start]);
            out.push_str(guest_dir.trim_end_matches('/'));
        } else {
            out.push_str(before);
            out.push_str(&needle);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

impl CellResult {
    /// Every failure's paths made relative to the run directory (see
    /// [`relative_to_run`]): what a run stored before records did so.
    pub fn relative_paths(&mut self) {
        for r in &mut self.reps {
            if let Some(f) = &mut r.failure {
                f.message = relative_to_run(&f.message, &r.guest_dir);
            }
        }
    }
}

/// Cells made by hand, for the tests of everything that reads the model.
#[cfg(test)]
pub mod testing {
    use super::env::Accel;
    use super::*;

    /// A boot that passed.
    pub fn passed(rep: u32) -> RepResult {
        RepResult {
            rep,
            status: Status::Pass,
            failure: None,
            boot_s: None,
            total_s: 1.0,
            guest_dir: String::new(),
            log_findings: Vec::new(),
        }
    }

    /// A run's record on host `cpu` (2 cores, QEMU `qemu`), started at
    /// `started_at`.
    pub fn env(cpu: &str, qemu: &str, started_at: &str) -> super::env::RunEnv {
        serde_json::from_value(serde_json::json!({
            "started_at": started_at, "command": "", "matrix_file": "", "harness_rev": "",
            "host": {"cpu_model": cpu, "cores": 2, "mem_total_kib": 1, "kernel": "", "kvm_device": false},
            "qemu": {"qemu-system-x86_64": qemu},
            "accel": {"x86_64": {"accel": "tcg", "reason": ""}},
            "kernels": {}
        }))
        .unwrap()
    }

    /// A sev-emulated dmabench cell of `kernel` with `(metric, gated,
    /// per-boot values)`, lower is better.
    pub fn cell(kernel: &str, values: &[(&str, bool, &[f64])]) -> CellResult {
        let metrics = values
            .iter()
            .map(|(name, gate, v)| {
                let decl = MetricDecl {
                    unit: "us".into(),
                    better: Better::Lower,
                    description: String::new(),
                    gate: *gate,
                    deterministic: false,
                    counted: false,
                    floor_pct: None,
                };
                let samples = v.iter().enumerate().map(|(i, x)| Sample { rep: i as u32, value: *x }).collect();
                (name.to_string(), Metric { decl, samples })
            })
            .collect();
        CellResult {
            key: CellKey {
                kernel: kernel.into(),
                profile: "sev-emulated".into(),
                workload: "dmabench".into(),
                swiotlb: "default".into(),
            },
            kernel_build: "k".into(),
            swiotlb_dynamic: true,
            swiotlb_cmdline: String::new(),
            accel: AccelChoice { accel: Accel::Tcg, reason: "test".into(), clock: Default::default() },
            emulated: true,
            reps: Vec::new(),
            metrics,
            expected_failure: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::cell;
    use super::*;

    /// A declaration with `matches` expects that failure, not any of its
    /// class; an intermittent one lets a pass be a pass.
    #[test]
    fn an_expected_failure_is_the_one_declared_and_an_intermittent_one_may_pass() {
        let e: ExpectedFailure = serde_yaml::from_str(
            "{cells: '*', class: correctness, why: a known bug, matches: 'swiotlb buffer is full', intermittent: true}",
        )
        .unwrap();
        let mut c = cell("a", &[]);
        c.expected_failure = Some(e);
        let failed = |m: &str| RepResult {
            status: Status::Fail,
            failure: Some(crate::failure::Failure::new(FailureClass::Correctness, m.to_string())),
            ..super::testing::passed(1)
        };
        c.reps = vec![
            super::testing::passed(0),
            failed("kernel log (swiotlb-full): swiotlb buffer is full (sz: 4096 bytes)"),
        ];
        assert!(c.failed_as_expected());
        c.reps.push(failed("storage: fio verify failed"));
        assert!(!c.failed_as_expected(), "another correctness failure is not the one declared");
        c.reps = vec![super::testing::passed(0)];
        assert!(c.xpass().is_none(), "an intermittent bug may not show");
        c.expected_failure.as_mut().unwrap().intermittent = false;
        assert!(c.xpass().is_some(), "a declared failure that never came is out of date");
    }

    #[test]
    fn a_plan_knows_which_boots_are_missing_and_says_so_once() {
        let mut c = cell("a", &[]);
        c.reps = vec![super::testing::passed(0), super::testing::passed(2)];
        let boots = (0..3).map(|rep| PlannedBoot { cell: c.key.clone(), rep }).collect();
        let mut plan = RunPlan { boots, state: RunState::Interrupted, shard: None, timing: None };
        let cells = [c];
        assert_eq!(plan.missing(&cells), [PlannedBoot { cell: cells[0].key.clone(), rep: 1 }]);
        assert_eq!(
            plan.incomplete(&cells).unwrap(),
            "INTERRUPTED: 2 of 3 planned boots ran; `bounce matrix --resume RUN` runs the 1 missing"
        );
        plan.state = RunState::Running;
        assert!(plan.incomplete(&cells).unwrap().starts_with("UNFINISHED"));
        plan.boots.truncate(1);
        plan.state = RunState::Complete;
        assert_eq!(plan.incomplete(&cells), None);
    }

    #[test]
    fn paths_into_a_boots_directory_become_relative_to_the_run() {
        let g = "guests/k.p.w.s/rep-1";
        let abs = "/work/x/results/runs/R-dirty/guests/k.p.w.s/rep-1";
        assert_eq!(
            relative_to_run(&format!("rc=1 (channel: {abs}/channel.log)"), g),
            "rc=1 (channel: guests/k.p.w.s/rep-1/channel.log)"
        );
        assert_eq!(
            relative_to_run(&format!("QEMU exited [{abs}/qemu.stderr]; console: {abs}/console.log"), g),
            "QEMU exited [guests/k.p.w.s/rep-1/qemu.stderr]; console: guests/k.p.w.s/rep-1/console.log"
        );
        // Another boot's directory, a relative path and other files stay.
        for kept in [
            "see /r/guests/k.p.w.s/rep-10/console.log",
            "see guests/k.p.w.s/rep-1/console.log",
            "see x/guests/k.p.w.s/rep-1/console.log",
            "[/root/.cache/bounce/kvm-probe/qemu.stderr]",
        ] {
            assert_eq!(relative_to_run(kept, g), kept);
        }
        assert_eq!(relative_to_run("no path", ""), "no path");
    }
}
