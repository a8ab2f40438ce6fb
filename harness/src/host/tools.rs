//! Host tools: check what is there, install what is missing when we may.
//!
//! On a fresh Debian machine the harness installs its own dependencies
//! (as root, non-interactively, saying what it installs); anywhere else it
//! stops with the one command that would.

use crate::failure::{Failure, Result};
use serde::Deserialize;
use std::path::Path;
use std::process::Command;

/// How a requirement is recognised as present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// An executable on PATH.
    Bin(String),
    /// A file, for headers and static libraries.
    File(String),
    /// A Debian package, where the file alone is ambiguous (busybox vs busybox-static).
    Package(String),
    /// A foreign dpkg architecture, so apt can fetch a guest's packages.
    ForeignArch(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RequirementFields")]
pub struct Requirement {
    pub probe: Probe,
    /// The Debian package that provides it.
    pub package: String,
    /// Why the harness needs it, shown by `bounce doctor`.
    pub why: String,
    /// apt's resolver fails on some packages installed together with others
    /// (qemu-system-x86 next to a backported qemu-utils): these go alone.
    pub alone: bool,
}

/// The YAML shape: exactly one of `bin`, `file`, `package` says how to probe.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequirementFields {
    bin: Option<String>,
    file: Option<String>,
    #[serde(rename = "installed")]
    installed: Option<String>,
    foreign_arch: Option<String>,
    package: String,
    why: String,
    #[serde(default)]
    alone: bool,
}

impl TryFrom<RequirementFields> for Requirement {
    type Error = String;
    fn try_from(f: RequirementFields) -> std::result::Result<Self, String> {
        let probe = match (f.bin, f.file, f.installed, f.foreign_arch) {
            (Some(b), None, None, None) => Probe::Bin(b),
            (None, Some(p), None, None) => Probe::File(p),
            (None, None, Some(p), None) => Probe::Package(p),
            (None, None, None, Some(a)) => Probe::ForeignArch(a),
            _ => {
                return Err(format!(
                    "requirement for package {}: give exactly one of bin, file, installed, foreign_arch",
                    f.package
                ))
            }
        };
        for name in
            [Some(&f.package), if let Probe::ForeignArch(a) = &probe { Some(a) } else { None }].into_iter().flatten()
        {
            check_package_name(name)?;
        }
        Ok(Requirement { probe, package: f.package, why: f.why, alone: f.alone })
    }
}

/// Debian's rule for package (and architecture) names: what apt-get gets
/// as an argument can never be read as an option or as two names.
fn check_package_name(name: &str) -> std::result::Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("package name {name:?} is not a Debian package name (a-z, 0-9, + - . :)"))
    }
}

impl Requirement {
    pub fn new(probe: Probe, package: &str, why: &str) -> Self {
        Requirement { probe, package: package.into(), why: why.into(), alone: false }
    }

    pub fn is_present(&self) -> bool {
        match &self.probe {
            Probe::Bin(b) => which::which(b).is_ok(),
            Probe::File(f) => Path::new(f).exists(),
            Probe::Package(p) => package_installed(p),
            Probe::ForeignArch(a) => foreign_arch_enabled(a),
        }
    }

    pub fn what(&self) -> &str {
        match &self.probe {
            Probe::Bin(s) | Probe::File(s) | Probe::Package(s) | Probe::ForeignArch(s) => s,
        }
    }
}

fn package_installed(pkg: &str) -> bool {
    super::cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]), super::cmd::QUICK)
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn foreign_arch_enabled(arch: &str) -> bool {
    let native = super::cmd::output(Command::new("dpkg").arg("--print-architecture"), super::cmd::QUICK);
    if native.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == arch) {
        return true;
    }
    super::cmd::output(Command::new("dpkg").arg("--print-foreign-architectures"), super::cmd::QUICK)
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().any(|a| a == arch))
        .unwrap_or(false)
}

/// What every run needs, whatever the architecture. Architecture-specific
/// tools (QEMU, cross compilers) come from `kernels/arch/*.yaml`.
pub fn common() -> Vec<Requirement> {
    use Probe::*;
    vec![
        Requirement::new(Bin("make".into()), "make", "kernel build"),
        Requirement::new(Bin("gcc".into()), "gcc", "kernel build, guest tools"),
        Requirement::new(Bin("flex".into()), "flex", "kernel build (Kconfig lexer)"),
        Requirement::new(Bin("bison".into()), "bison", "kernel build (Kconfig parser)"),
        Requirement::new(Bin("bc".into()), "bc", "kernel build (timeconst)"),
        Requirement::new(Bin("perl".into()), "perl", "kernel build scripts"),
        Requirement::new(File("/usr/include/gelf.h".into()), "libelf-dev", "kernel build (objtool)"),
        Requirement::new(
            File("/usr/include/openssl/opensslv.h".into()),
            "libssl-dev",
            "kernel build (certificate tools)",
        ),
        Requirement::new(Bin("xz".into()), "xz-utils", "unpacking the kernel source"),
        Requirement::new(Bin("dpkg-deb".into()), "dpkg", "unpacking Debian source packages"),
        Requirement::new(Bin("ccache".into()), "ccache", "fast kernel rebuilds"),
        Requirement::new(Bin("git".into()), "git", "splitting and applying patch series"),
        Requirement::new(Bin("mke2fs".into()), "e2fsprogs", "the guest's read-only tools disk"),
        Requirement::new(Bin("readelf".into()), "binutils", "the tools disk's library closure"),
        Requirement::new(Bin("iperf3".into()), "iperf3", "the network workload's host-side server"),
    ]
}

/// Check, install if allowed, check again. `requirements` may repeat packages.
pub fn ensure(requirements: &[Requirement]) -> Result<()> {
    let missing: Vec<&Requirement> = requirements.iter().filter(|r| !r.is_present()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let plan = install_plan(&missing);
    if !may_install() {
        return Err(Failure::infra(format!(
            "missing host tools: {}; install them with: {}",
            describe(&missing),
            plan.iter().map(|p| format!("sudo {p}")).collect::<Vec<_>>().join(" && ")
        )));
    }
    for step in &plan {
        crate::ui::line(format!("installing host tools: {step}"));
        super::cmd::run(step.command().env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let still: Vec<&Requirement> = requirements.iter().filter(|r| !r.is_present()).collect();
    if !still.is_empty() {
        return Err(Failure::infra(format!("still missing after apt-get install: {}", describe(&still))));
    }
    Ok(())
}

fn describe(missing: &[&Requirement]) -> String {
    missing.iter().map(|r| format!("{} (package {})", r.what(), r.package)).collect::<Vec<_>>().join(", ")
}

/// Root may install unless BOUNCE_NO_INSTALL is set (for CI images that must
/// stay as built, and for the test that proves the message).
pub fn may_install() -> bool {
    nix::unistd::geteuid().is_root() && std::env::var_os("BOUNCE_NO_INSTALL").is_none()
}

/// `apt-get update` first (a fresh machine has no lists), then the shared
/// packages in one command and each `alone` package in its own.
pub fn install_plan(missing: &[&Requirement]) -> Vec<Step> {
    let mut together: Vec<&str> = Vec::new();
    let mut alone: Vec<&str> = Vec::new();
    let mut plan = Vec::new();
    for r in missing {
        if let Probe::ForeignArch(a) = &r.probe {
            plan.push(Step::of(&["dpkg", "--add-architecture", a]));
            continue;
        }
        let list = if r.alone { &mut alone } else { &mut together };
        if !list.contains(&r.package.as_str()) {
            list.push(&r.package);
        }
    }
    plan.push(Step::of(&["apt-get", "update", "-q"]));
    const INSTALL: [&str; 5] = ["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    for pkg in alone {
        plan.push(Step::of(&[&INSTALL[..], &[pkg]].concat()));
    }
    if !together.is_empty() {
        plan.push(Step::of(&[&INSTALL[..], &together].concat()));
    }
    plan
}

/// One command of an install plan, run without a shell (package names are
/// arguments, never shell text), printed as a line to paste.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step(pub Vec<String>);

impl Step {
    fn of(argv: &[&str]) -> Step {
        Step(argv.iter().map(|s| s.to_string()).collect())
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.0[0]);
        c.args(&self.0[1..]);
        c
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::cmd::display(&self.command()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_puts_alone_packages_in_their_own_command() {
        let mut q = Requirement::new(Probe::Bin("qemu-system-x86_64".into()), "qemu-system-x86", "boot");
        q.alone = true;
        let f = Requirement::new(Probe::Bin("flex".into()), "flex", "build");
        let b = Requirement::new(Probe::Bin("bison".into()), "bison", "build");
        let plan: Vec<String> = install_plan(&[&f, &q, &b, &f]).iter().map(|s| s.to_string()).collect();
        assert_eq!(
            plan,
            vec![
                "apt-get update -q",
                "apt-get install -y -q --no-install-recommends qemu-system-x86",
                "apt-get install -y -q --no-install-recommends flex bison",
            ]
        );
    }

    #[test]
    fn a_package_name_is_never_shell_text_or_an_option() {
        for bad in ["flex; rm -rf ~", "-o=APT::Get::Foo", "flex bison", "Flex", ""] {
            assert!(check_package_name(bad).is_err(), "{bad}");
        }
        for good in ["gcc-aarch64-linux-gnu", "libstdc++6:arm64", "qemu-system-x86", "g++"] {
            assert!(check_package_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn absent_binary_is_missing() {
        let r = Requirement::new(Probe::Bin("bounce-no-such-tool".into()), "nope", "test");
        assert!(!r.is_present());
        let r = Requirement::new(Probe::Bin("sh".into()), "dash", "test");
        assert!(r.is_present());
    }
}
