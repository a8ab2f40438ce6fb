//! Workloads: defined once in `workloads/NAME.yaml` (guest program,
//! parameters, devices and host services it needs, metrics with unit and
//! better-direction, expected kernel log lines), judged here from what the
//! guest reported.

pub mod checks;
pub mod dmacheck;
pub mod drm;
pub mod fio;
pub mod net;
pub mod parse;
pub mod services;
pub mod stream;

use crate::failure::{Classify, Failure, FailureClass, Result};
use crate::guest::channel::Transcript;
use crate::guest::profile::Need;
use crate::guest::qemu::Attach;
use crate::results::MetricDecl;
use checks::Finding;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    #[serde(skip)]
    pub name: String,
    #[serde(skip)]
    pub file: PathBuf,
    pub description: String,
    /// The guest script under workloads/ that defines `workload_main`.
    pub guest: String,
    /// Which parser and checks read its output (default: its own name); a
    /// variant of a workload (a test's corrupting storage run) reuses them.
    #[serde(default)]
    pub kind: Option<Kind>,
    /// `host` when the workload's point needs its guest's vCPUs running at
    /// once, which the instruction clock (one vCPU) cannot give: its
    /// guests run on the host's clock.
    #[serde(default)]
    pub clock: WorkloadClock,
    /// vCPUs for its guests, instead of the profile's (only on the host's
    /// clock: the instruction clock runs one).
    #[serde(default)]
    pub vcpus: Option<u32>,
    /// Seconds the guest may take after reaching init, under TCG on a busy
    /// two-core host.
    pub timeout_s: u64,
    /// What a profile must have for this workload to run on it.
    #[serde(default)]
    pub needs: Vec<Need>,
    /// The only profiles it means something on (empty: every profile
    /// with what it needs).
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Attach the read-only tools disk (Debian's fio and iperf3).
    #[serde(default)]
    pub tools: bool,
    /// Host-side peers the harness runs while the guest does.
    #[serde(default)]
    pub services: Vec<services::Service>,
    /// When true a run in which nothing bounced fails: the cell was meant to
    /// test swiotlb and silently did not.
    #[serde(default)]
    pub must_bounce: bool,
    /// Record every swiotlb_map() with the swiotlb_bounced tracepoint (the
    /// bounced-bytes evidence). A latency microbenchmark turns it off: the
    /// tracepoint would be part of what it measures.
    #[serde(default = "yes")]
    pub trace_bounces: bool,
    /// Passed to the guest as `bounce.KEY=VALUE`; a matrix may override them.
    #[serde(default)]
    pub params: BTreeMap<String, serde_yaml::Value>,
    /// Kernel log lines this workload causes on purpose.
    #[serde(default)]
    pub expected_log: Vec<ExpectedLog>,
    /// `name` or `family.*` (any one word in place of the star).
    pub metrics: BTreeMap<String, MetricDecl>,
}

/// CONFIG_NR_CPUS of the harness's guest kernels.
pub const MAX_VCPUS: u32 = 8;

/// What reads a workload's output: each kind has one parser and one set of
/// checks, chosen here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Memory,
    Dmabench,
    Dmacheck,
    Growth,
    Storage,
    Network,
    Drm,
    /// No parser of its own: only what every workload reports (the swiotlb
    /// counters, the bounce evidence) and the common checks.
    Common,
}

impl Kind {
    const ALL: [(&'static str, Kind); 8] = [
        ("memory", Kind::Memory),
        ("dmabench", Kind::Dmabench),
        ("dmacheck", Kind::Dmacheck),
        ("growth", Kind::Growth),
        ("storage", Kind::Storage),
        ("network", Kind::Network),
        ("drm", Kind::Drm),
        ("common", Kind::Common),
    ];

    fn named(name: &str) -> Option<Kind> {
        Kind::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadClock {
    /// Whatever the run's clock is (the instruction clock under TCG).
    #[default]
    Any,
    /// Always the host's clock, with the profile's vCPUs.
    Host,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedLog {
    pub pattern: String,
    pub why: String,
    /// Only on these kernels: `fixed` (CONFIG_SWIOTLB_DYNAMIC=n), `dynamic`,
    /// or `any`. A full pool is expected of a fixed kernel with a small
    /// pool; on a dynamic one it is a failure to grow.
    #[serde(default)]
    pub on: KernelKind,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KernelKind {
    #[default]
    Any,
    Fixed,
    Dynamic,
}

impl KernelKind {
    pub fn matches(self, dynamic: bool) -> bool {
        match self {
            KernelKind::Any => true,
            KernelKind::Fixed => !dynamic,
            KernelKind::Dynamic => dynamic,
        }
    }
}

/// Everything a finished guest left for judging.
pub struct GuestOutput<'a> {
    pub transcript: &'a Transcript,
    /// The guest's directory (screendumps land here).
    pub dir: &'a Path,
    /// What the host-side services saw.
    pub services: &'a services::Report,
    /// Whether the kernel under test has CONFIG_SWIOTLB_DYNAMIC=y.
    pub dynamic: bool,
}

/// A judged run: its metrics (keyed `workload.metric`), the first failure
/// and every kernel-log finding.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub metrics: BTreeMap<String, f64>,
    pub failure: Option<Failure>,
    pub findings: Vec<Finding>,
}

/// Metrics every workload reports: the bounce evidence and what the pool
/// did (workloads/common/metrics.yaml).
pub fn common_metrics(root: &Path) -> Result<BTreeMap<String, MetricDecl>> {
    crate::yaml::load(&root.join("workloads/common/metrics.yaml"))
}

impl Workload {
    pub fn load(root: &Path, name: &str) -> Result<Workload> {
        let dir = root.join("workloads");
        let (value, file): (serde_yaml::Value, _) = crate::yaml::load_named(&dir, "workload", name)?;
        let mut w: Workload = match value.get("extends").cloned() {
            None => crate::yaml::load(&file)?,
            Some(base) => {
                let base = base.as_str().map(str::to_string).ok_or_else(|| {
                    Failure::input(format!("{}: extends: expected the name of a workload", file.display()))
                })?;
                let merged = extend(&dir, &base, value).input(|| format!("{}: extends: {base}", file.display()))?;
                serde_yaml::from_value(merged).map_err(|e| Failure::input(format!("{}: {e}", file.display())))?
            }
        };
        w.name = name.to_string();
        w.file = file;
        if w.kind.is_none() {
            w.kind = Some(Kind::named(name).ok_or_else(|| {
                Failure::input(format!(
                    "{}: no parser reads a workload named `{name}`: add `kind:` (one of {})",
                    w.file.display(),
                    Kind::ALL.map(|(n, _)| n).join(", ")
                ))
            })?);
        }
        if !(1..=crate::guest::machine::MAX_TIMEOUT_S).contains(&w.timeout_s) {
            return Err(Failure::input(format!(
                "{}: timeout_s {} is not 1 to {} seconds",
                w.file.display(),
                w.timeout_s,
                crate::guest::machine::MAX_TIMEOUT_S
            )));
        }
        for (k, v) in &w.params {
            param_word(k, v).input(|| format!("{}", w.file.display()))?;
        }
        if let Some((p, known)) = crate::yaml::first_unknown(&root.join("profiles"), &w.profiles) {
            return Err(Failure::input(format!(
                "{}: profiles: `{p}` is not a profile (known: {known})",
                w.file.display()
            )));
        }
        if let Some(n) = w.vcpus {
            if w.clock != WorkloadClock::Host {
                return Err(Failure::input(format!(
                    "{}: vcpus {n} needs `clock: host` (the instruction clock runs one vCPU)",
                    w.file.display()
                )));
            }
            if !(1..=MAX_VCPUS).contains(&n) {
                return Err(Failure::input(format!(
                    "{}: vcpus {n}: the guest kernels are built for 1 to {MAX_VCPUS} CPUs (CONFIG_NR_CPUS in kernels/config/guest-common.config)",
                    w.file.display()
                )));
            }
        }
        if !root.join("workloads").join(&w.guest).exists() {
            return Err(Failure::input(format!(
                "{}: guest program `{}` not found in workloads/",
                w.file.display(),
                w.guest
            )));
        }
        for (k, d) in common_metrics(root)? {
            if w.metrics.insert(k.clone(), d).is_some() {
                return Err(Failure::input(format!(
                    "{}: metric `{k}` is one every workload reports (workloads/common/metrics.yaml)",
                    w.file.display()
                )));
            }
        }
        Ok(w)
    }

    /// Override parameters (from a matrix); unknown names are a typo.
    pub fn with_params(&self, over: &BTreeMap<String, serde_yaml::Value>) -> Result<Workload> {
        let mut w = self.clone();
        for (k, v) in over {
            if !w.params.contains_key(k) {
                return Err(Failure::input(format!(
                    "workload {}: no parameter `{k}` (it has: {})",
                    self.name,
                    self.params.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            param_word(k, v).input(|| format!("workload {}", self.name))?;
            w.params.insert(k.clone(), v.clone());
        }
        Ok(w)
    }

    /// Kernel command line words that carry the workload and its parameters.
    pub fn cmdline(&self) -> Vec<String> {
        let mut v = vec![format!("bounce.workload={}", self.guest.trim_end_matches(".sh"))];
        if !self.trace_bounces {
            v.push("bounce.trace=0".into());
        }
        // Checked when loaded and when overridden: one word each.
        v.extend(self.params.iter().filter_map(|(k, val)| param_word(k, val).ok()));
        v
    }

    pub fn param_u64(&self, name: &str) -> Option<u64> {
        self.params.get(name).and_then(|v| v.as_u64())
    }

    /// What this workload needs attached to its guest; creates the scratch
    /// disk in the guest's directory (sparse: only what is written costs).
    pub fn attach(&self, guest_dir: &Path, tools: Option<PathBuf>) -> Result<Attach> {
        let mut a = Attach { nic: self.needs(Need::Nic), gpu: self.needs(Need::Gpu), tools, ..Attach::default() };
        if self.needs(Need::Disk) {
            let mib = self.param_u64("disk_mib").unwrap_or(64);
            std::fs::create_dir_all(guest_dir).infra(|| format!("cannot create {}", guest_dir.display()))?;
            let img = guest_dir.join("scratch.img");
            let f = std::fs::File::create(&img).infra(|| format!("cannot create {}", img.display()))?;
            f.set_len(mib << 20).infra(|| format!("cannot size {}", img.display()))?;
            a.disk = Some(img);
        }
        Ok(a)
    }

    fn needs(&self, what: Need) -> bool {
        self.needs.contains(&what)
    }

    /// The declaration of a produced metric name (exact, or `family.*`).
    pub fn declaration(&self, name: &str) -> Option<&MetricDecl> {
        self.metrics.get(name).or_else(|| {
            let (family, _) = name.rsplit_once('.')?;
            self.metrics.get(&format!("{family}.*"))
        })
    }

    /// Judge a finished guest: parse its metrics, then its correctness.
    pub fn evaluate(&self, out: &GuestOutput) -> Evaluation {
        let mut ev = Evaluation::default();
        let raw = match self.parse(out) {
            Ok(r) => r,
            Err(f) => {
                ev.failure = Some(f);
                return ev;
            }
        };
        for (k, v) in raw {
            if self.declaration(&k).is_none() {
                ev.failure = Some(Failure::infra(format!(
                    "parser for `{}` produced undeclared metric `{k}` (declare it in {})",
                    self.name,
                    self.file.display()
                )));
                return ev;
            }
            // Guest output is untrusted: JSON has no NaN, so a stored `nan`
            // would come back as null and make the run unreadable.
            if !v.is_finite() {
                ev.failure = Some(Failure::new(
                    FailureClass::Workload,
                    format!("workload `{}` reported {k} = {v}, not a number a run can keep", self.name),
                ));
                return ev;
            }
            ev.metrics.insert(format!("{}.{k}", self.name), v);
        }
        let (failure, findings) = checks::judge(out, self);
        ev.findings = findings;
        ev.failure = failure.or_else(|| self.check(out).err());
        ev
    }

    fn parse(&self, out: &GuestOutput) -> Result<BTreeMap<String, f64>> {
        let t = out.transcript;
        let mut m = match self.kind() {
            Kind::Memory => parse::memory(t)?,
            Kind::Dmabench => parse::dmabench(t)?,
            Kind::Dmacheck => dmacheck::metrics(t)?,
            Kind::Growth => parse::growth(t)?,
            Kind::Storage => fio::metrics(t)?,
            Kind::Network => net::metrics(t, out.services)?,
            Kind::Drm => drm::metrics(t)?,
            Kind::Common => BTreeMap::new(),
        };
        m.extend(parse::common(t));
        Ok(m)
    }

    fn kind(&self) -> Kind {
        // Set by `load` from the name when the file gives none.
        self.kind.unwrap_or(Kind::Memory)
    }

    /// The workload's own correctness: data that came back wrong.
    fn check(&self, out: &GuestOutput) -> Result<()> {
        match self.kind() {
            Kind::Storage => fio::check(out.transcript).and_then(|()| {
                fio::check_disk(
                    out.transcript,
                    &out.dir.join("scratch.img"),
                    self.param_u64("seed").unwrap_or(1),
                    self.param_u64("disk_check_mib").unwrap_or(8) << 20,
                )
            }),
            Kind::Network => net::check(out.transcript, out.services),
            Kind::Drm => drm::check(out.transcript, out.dir),
            Kind::Dmacheck => {
                dmacheck::check(out.transcript, out.dynamic, self.param_u64("transient").unwrap_or(0) == 1)
            }
            Kind::Memory | Kind::Dmabench | Kind::Growth | Kind::Common => Ok(()),
        }
    }

    /// Declarations keyed like `evaluate()`'s metrics, for a produced name.
    pub fn declaration_for(&self, key: &str) -> Option<MetricDecl> {
        let name = key.strip_prefix(&format!("{}.", self.name))?;
        self.declaration(name).cloned()
    }
}

fn yes() -> bool {
    true
}

/// A workload that `extends: BASE` is BASE's file with its own keys on
/// top (`params` and `metrics` merged key by key, `expected_log` added
/// to): the same guest program,
/// parser and metric declarations, run another way (more vCPUs, other
/// parameters) without a second copy of them.
fn extend(dir: &Path, base: &str, child: serde_yaml::Value) -> std::result::Result<serde_yaml::Value, String> {
    use serde_yaml::Value;
    let (parent, _): (Value, _) = crate::yaml::load_named(dir, "workload", base).map_err(|e| e.message)?;
    if parent.get("extends").is_some() {
        return Err(format!("`{base}` extends another workload itself; extend the first one"));
    }
    let (Value::Mapping(mut out), Value::Mapping(child)) = (parent, child) else {
        return Err("both files must be YAML mappings".into());
    };
    if !out.contains_key("kind") {
        out.insert("kind".into(), base.into());
    }
    for (k, v) in child {
        if k.as_str() == Some("extends") {
            continue;
        }
        match (out.get_mut(&k), v) {
            (Some(Value::Mapping(into)), Value::Mapping(over)) if matches!(k.as_str(), Some("params" | "metrics")) => {
                into.extend(over)
            }
            (Some(Value::Sequence(into)), Value::Sequence(more)) if k.as_str() == Some("expected_log") => {
                into.extend(more)
            }
            (_, v) => {
                out.insert(k, v);
            }
        }
    }
    Ok(Value::Mapping(out))
}

/// A parameter as the one kernel command-line word `bounce.KEY=VALUE` that
/// /init exports as `BOUNCE_KEY`. A space or a quote in a value (from a
/// matrix file) would add words of its own to the kernel's command line
/// (`init=`, `swiotlb=`): refused, as is a key that is no shell name.
fn param_word(k: &str, v: &serde_yaml::Value) -> std::result::Result<String, String> {
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(format!("parameter name {k:?} must be lower-case letters, digits and `_`"));
    }
    let text = param_text(v);
    if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control() || *c == '"' || *c == '\'') {
        return Err(format!(
            "parameter `{k}`: value {text:?} contains {c:?}: it would split the kernel command line (one word, no quotes)"
        ));
    }
    Ok(format!("bounce.{k}={text}"))
}

fn param_text(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Sequence(items) => items.iter().map(param_text).collect::<Vec<_>>().join(","),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// A workload-level failure with the section that shows it.
pub fn data_failure(what: impl Into<String>) -> Failure {
    Failure::new(FailureClass::Correctness, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_workloads_load_with_the_common_metrics() {
        let root = crate::paths::project_root();
        for n in crate::yaml::names(&root.join("workloads")) {
            let w = Workload::load(&root, &n).unwrap();
            assert!(w.metrics.contains_key("bounced_bytes"), "{n}");
        }
        let w = Workload::load(&root, "dmabench").unwrap();
        assert!(w.declaration("map_us.t1-g1-to").is_some());
        assert!(w.declaration("nope").is_none());
        let e = w.with_params(&BTreeMap::from([("secnds".to_string(), serde_yaml::Value::from(1))])).unwrap_err();
        assert!(e.message.contains("no parameter `secnds`"), "{}", e.message);
        assert_eq!(Workload::load(&root, "growth").unwrap().clock, WorkloadClock::Host);
        assert_eq!(w.clock, WorkloadClock::Any);
    }

    /// `f64::from_str` takes `nan` and `inf`; a guest that prints them must
    /// fail its boot, not leave a run `bounce report` cannot read back.
    #[test]
    fn a_guest_that_reports_nan_or_inf_fails_its_workload() {
        let root = crate::paths::project_root();
        let w = Workload::load(&root, "memory").unwrap();
        let report = services::Report::default();
        for v in ["nan", "inf", "-inf", "1e999"] {
            let t = Transcript::parse(&format!(
                "@@bounce begin meminfo-boot\nMemTotal: {v} kB\nMemAvailable: 1 kB\n@@bounce end meminfo-boot rc=0\n@@bounce begin swiotlb-boot\nio_tlb_nslabs 9223372036854775808\nio_tlb_used 0\n@@bounce end swiotlb-boot rc=0\n"
            ));
            let out = GuestOutput { transcript: &t, dir: Path::new("/nonexistent"), services: &report, dynamic: true };
            let ev = w.evaluate(&out);
            let f = ev.failure.expect(v);
            assert_eq!(f.class, FailureClass::Workload, "{v}: {}", f.message);
            assert!(
                f.message.contains("mem_total_kib = ") && f.message.contains("not a number a run can keep"),
                "{}",
                f.message
            );
        }
        // 2^63 slabs is absurd but finite: kept, no overflow on the way.
        let t = Transcript::parse("@@bounce begin meminfo-boot\nMemTotal: 1 kB\nMemAvailable: 1 kB\n@@bounce end meminfo-boot rc=0\n@@bounce begin swiotlb-boot\nio_tlb_nslabs 9223372036854775808\nio_tlb_used 0\n@@bounce end swiotlb-boot rc=0\n");
        let out = GuestOutput { transcript: &t, dir: Path::new("/nonexistent"), services: &report, dynamic: true };
        assert_eq!(w.evaluate(&out).metrics["memory.swiotlb_pool_kib"], 2f64.powi(64));
    }

    /// A project holding only the common metrics and an empty guest
    /// program `guest`, for workload files a test writes.
    fn scratch_workloads(guest: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = crate::paths::project_root();
        std::fs::create_dir_all(dir.path().join("workloads/common")).unwrap();
        std::fs::copy(root.join("workloads/common/metrics.yaml"), dir.path().join("workloads/common/metrics.yaml"))
            .unwrap();
        std::fs::write(dir.path().join("workloads").join(guest), "").unwrap();
        dir
    }

    /// dmacheck-smp is dmacheck run another way: the same guest program,
    /// parser and metrics, its own clock, vCPUs and parameters on top.
    #[test]
    fn a_workload_that_extends_another_takes_its_file_and_overrides_keys() {
        let root = crate::paths::project_root();
        let base = Workload::load(&root, "dmacheck").unwrap();
        let smp = Workload::load(&root, "dmacheck-smp").unwrap();
        assert_eq!(smp.kind(), Kind::Dmacheck);
        assert_eq!((smp.clock, smp.vcpus), (WorkloadClock::Host, Some(4)));
        assert_eq!(smp.guest, base.guest);
        assert_eq!(smp.params["masks"], base.params["masks"]);
        assert_eq!(smp.params["threads"], serde_yaml::Value::from(0));
        assert_eq!(smp.metrics.keys().collect::<Vec<_>>(), base.metrics.keys().collect::<Vec<_>>());
    }

    #[test]
    fn vcpus_are_for_the_host_clock_and_what_the_guest_kernel_can_have() {
        let dir = scratch_workloads("memory.sh");
        let yaml = "description: d\nguest: memory.sh\ntimeout_s: 1\nmetrics: {}\n";
        for (extra, says) in [
            ("vcpus: 4\n", "vcpus 4 needs `clock: host`"),
            ("vcpus: 9\nclock: host\n", "vcpus 9: the guest kernels are built for 1 to 8 CPUs"),
            ("vcpus: 0\nclock: host\n", "vcpus 0: the guest kernels are built for 1 to 8 CPUs"),
        ] {
            std::fs::write(dir.path().join("workloads/memory.yaml"), format!("{extra}{yaml}")).unwrap();
            let e = Workload::load(dir.path(), "memory").unwrap_err();
            assert_eq!(e.class, FailureClass::Input);
            assert!(e.message.contains(says), "{}", e.message);
        }
        std::fs::write(dir.path().join("workloads/memory.yaml"), format!("vcpus: 8\nclock: host\n{yaml}")).unwrap();
        assert_eq!(Workload::load(dir.path(), "memory").unwrap().vcpus, Some(8));
    }

    #[test]
    fn a_workload_no_parser_reads_fails_when_it_loads() {
        let dir = scratch_workloads("fio.sh");
        let yaml = "description: d\nguest: fio.sh\ntimeout_s: 1\nmetrics: {}\n";
        std::fs::write(dir.path().join("workloads/fio.yaml"), yaml).unwrap();
        let e = Workload::load(dir.path(), "fio").unwrap_err();
        assert!(e.message.contains("no parser reads a workload named `fio`: add `kind:`"), "{}", e.message);
        std::fs::write(dir.path().join("workloads/fio.yaml"), format!("kind: storage\n{yaml}")).unwrap();
        assert_eq!(Workload::load(dir.path(), "fio").unwrap().kind(), Kind::Storage);
        std::fs::write(dir.path().join("workloads/fio.yaml"), format!("kind: fio\n{yaml}")).unwrap();
        let e = Workload::load(dir.path(), "fio").unwrap_err();
        assert!(e.message.contains("unknown variant `fio`"), "{}", e.message);
    }
}
