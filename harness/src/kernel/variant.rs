//! Kernel variants as data: `kernels/variants/NAME.yaml`.
//!
//! A variant says what goes into a kernel: a source, an optional patch
//! series, a config (base plus fragments), a toolchain, and boot options
//! that belong to it. The architecture is not part of the variant: the same
//! variant is built for every architecture a matrix boots it on, so a
//! comparison of two variants pairs x86_64 and arm64 cells alike.

use super::series::{Series, SeriesSource};
use crate::failure::{Failure, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[serde(skip)]
    pub name: String,
    #[serde(skip)]
    pub file: PathBuf,
    #[serde(default)]
    pub description: String,
    /// The architectures this variant may be built for (kernels/arch/NAME.yaml).
    pub arches: Vec<String>,
    pub source: Source,
    /// A patch series applied on top of the source (mbox, directory of
    /// patches, or a quilt `series` file), relative to kernels/.
    #[serde(default)]
    pub patches: Option<PathBuf>,
    pub config: ConfigSpec,
    #[serde(default)]
    pub toolchain: Toolchain,
    /// Kernel command line words every boot of this variant gets. Two
    /// variants that differ only here share one build (the cache key is
    /// the build's content), which is how a boot-option design such as the
    /// seed's v2 (`swiotlb=...,dynamic`) sits on the same matrix as a
    /// config-option design.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// A series applied on top of `patches` by the harness (matrix `series:`
    /// entries and `bounce build --series`); never in the YAML.
    #[serde(skip)]
    pub extra: Option<Series>,
    /// A build that is only found, never made: the cache key of each
    /// architecture's image (a stored baseline's last good kernel, booted
    /// beside tonight's; its inputs are whatever they were that night).
    #[serde(skip)]
    pub pinned: BTreeMap<String, String>,
}

/// Where the tree comes from. Its identity (package and version, or a
/// checksum, or a commit) is part of the build key.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "SourceFields")]
pub enum Source {
    /// A Debian `linux-source-X.Y` package, fetched with `apt-get download`.
    Debian(String),
    /// A local tarball (any compression tar understands) and its sha256.
    Tarball { path: PathBuf, sha256: String },
    /// A local git tree at a ref (branch, tag or commit).
    Git { path: PathBuf, reference: String },
    /// A tarball fetched from a URL, checked against its sha256.
    Url { url: String, sha256: String },
}

/// The YAML shape: one key names the kind, e.g. `source: {debian: linux-source-6.12}`,
/// `source: {tarball: linux.tar.xz, sha256: ...}`, `source: {git: ~/linux, ref: v6.12}`,
/// `source: {url: https://..., sha256: ...}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFields {
    debian: Option<String>,
    tarball: Option<PathBuf>,
    git: Option<PathBuf>,
    url: Option<String>,
    sha256: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
}

impl TryFrom<SourceFields> for Source {
    type Error = String;
    fn try_from(f: SourceFields) -> std::result::Result<Self, String> {
        let kinds = [f.debian.is_some(), f.tarball.is_some(), f.git.is_some(), f.url.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err("name exactly one source kind: `debian: PACKAGE`, `tarball: PATH` (with sha256), `git: PATH` (with ref) or `url: URL` (with sha256)".into());
        }
        let sha = |what: &str| -> std::result::Result<String, String> {
            let s = f.sha256.clone().ok_or_else(|| format!("a `{what}` source needs `sha256:`"))?;
            if s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("sha256 `{s}` is not 64 hex digits"));
            }
            Ok(s.to_ascii_lowercase())
        };
        Ok(match (f.debian, f.tarball, f.git, f.url) {
            (Some(pkg), ..) => Source::Debian(pkg),
            (_, Some(path), ..) => Source::Tarball { sha256: sha("tarball")?, path },
            (_, _, Some(path), _) => Source::Git {
                path,
                reference: f.reference.ok_or("a `git` source needs `ref:` (a branch, tag or commit)")?,
            },
            (_, _, _, Some(url)) => Source::Url { sha256: sha("url")?, url },
            _ => unreachable!("exactly one kind was checked above"),
        })
    }
}

/// `tinyconfig` and friends are make targets; `guest` is the harness's
/// minimal guest config (tinyconfig plus the architecture's fragments);
/// `{file: PATH}` is a user's .config, relative to kernels/.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ConfigBase {
    Target(String),
    File { file: PathBuf },
}

impl ConfigBase {
    pub fn describe(&self) -> String {
        match self {
            ConfigBase::Target(t) => t.clone(),
            ConfigBase::File { file } => format!("file:{}", file.display()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    pub base: ConfigBase,
    /// Files under kernels/config/, appended in order, then olddefconfig.
    #[serde(default)]
    pub fragments: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Toolchain {
    #[default]
    Gcc,
    Clang,
}

/// The make targets that produce a starting .config.
const CONFIG_TARGETS: &[&str] = &["tinyconfig", "allnoconfig", "defconfig", "allmodconfig", "allyesconfig"];

impl Variant {
    pub fn load(root: &Path, name: &str) -> Result<Variant> {
        let (mut v, file): (Variant, _) =
            crate::yaml::load_named(&root.join("kernels/variants"), "kernel variant", name)?;
        v.name = name.to_string();
        v.file = file;
        if v.arches.is_empty() {
            return Err(Failure::input(format!("{}: `arches` is empty", v.file.display())));
        }
        if let ConfigBase::Target(t) = &v.config.base {
            if t != "guest" && !CONFIG_TARGETS.contains(&t.as_str()) {
                return Err(Failure::input(format!(
                    "{}: config base `{t}`: expected guest, {} or {{file: PATH}}",
                    v.file.display(),
                    CONFIG_TARGETS.join(", ")
                )));
            }
        }
        if let Source::Tarball { path, .. } | Source::Git { path, .. } = &mut v.source {
            *path = resolve(root, path);
        }
        Ok(v)
    }

    /// The variant's own series (its `patches:`), loaded and checked.
    pub fn own_series(&self, root: &Path) -> Result<Option<Series>> {
        let Some(p) = &self.patches else { return Ok(None) };
        let path = resolve(&root.join("kernels"), p);
        Series::load(&SeriesSource::Path(path))
            .map(Some)
            .map_err(|e| Failure::new(e.class, format!("{}: patches: {}", self.file.display(), e.message)))
    }

    /// This variant with `series` (or its first `upto` patches) on top:
    /// named `NAME+SERIES`, or `NAME+SERIES@N` for a prefix.
    pub fn with_series(&self, series: &Series, upto: Option<usize>) -> Variant {
        let mut v = self.clone();
        let s = match upto {
            Some(n) => series.prefix(n),
            None => series.clone(),
        };
        v.name = match upto {
            Some(n) => format!("{}+{}@{n}", self.name, series.name),
            None => format!("{}+{}", self.name, series.name),
        };
        v.description = format!("{} + {}", self.description, s.describe());
        v.extra = Some(s);
        v
    }

    pub fn supports(&self, arch: &str) -> bool {
        self.arches.iter().any(|a| a == arch)
    }

    /// The cached builds in `keys` (by arch) under `name`: the same variant
    /// as it was built then, found by key and never rebuilt.
    pub fn pinned_to(&self, name: &str, keys: BTreeMap<String, String>) -> Variant {
        let mut v = self.clone();
        v.name = name.to_string();
        v.description =
            format!("{} (pinned builds {})", self.description, keys.values().cloned().collect::<Vec<_>>().join(", "));
        v.arches = keys.keys().filter(|a| self.supports(a)).cloned().collect();
        v.extra = None;
        v.pinned = keys;
        v
    }
}

/// `~/x` and relative paths in data files, against a base directory.
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Names of every variant file, sorted.
pub fn list(root: &Path) -> Vec<String> {
    crate::yaml::names(&root.join("kernels/variants"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_variants_load() {
        let root = crate::paths::project_root();
        let names = list(&root);
        for n in ["6.12-fixed", "6.12-dynamic", "6.1"] {
            assert!(names.contains(&n.to_string()), "{n} not shipped");
        }
        for n in names {
            let v = Variant::load(&root, &n).unwrap();
            for f in &v.config.fragments {
                assert!(root.join("kernels/config").join(f).exists(), "{n}: fragment {f} missing");
            }
            for a in &v.arches {
                crate::kernel::arch::Arch::load(&root, a).unwrap();
            }
            v.own_series(&root).unwrap();
        }
        let v = Variant::load(&root, "6.12-dynamic").unwrap();
        assert!(v.supports("x86_64") && v.supports("arm64"));
    }

    fn parse(text: &str) -> Result<Variant> {
        crate::yaml::parse::<Variant>(Path::new("v.yaml"), text)
    }

    #[test]
    fn unknown_field_names_the_line() {
        let err =
            parse("arches: [x86_64]\nsource: {debian: linux-source-6.12}\nconfig: {base: tinyconfig}\nfragmnts: []\n")
                .unwrap_err();
        assert!(err.message.starts_with("v.yaml:4:1: unknown field `fragmnts`"), "{}", err.message);
    }

    #[test]
    fn every_source_kind_parses_and_checks_its_fields() {
        let v = |src: &str| parse(&format!("arches: [x86_64]\nsource: {src}\nconfig: {{base: guest}}\n"));
        assert_eq!(v("{debian: linux-source-6.1}").unwrap().source, Source::Debian("linux-source-6.1".into()));
        let sha = "ab".repeat(32);
        assert_eq!(
            v(&format!("{{tarball: l.tar.xz, sha256: {sha}}}")).unwrap().source,
            Source::Tarball { path: "l.tar.xz".into(), sha256: sha.clone() }
        );
        assert_eq!(
            v("{git: /src/linux, ref: v6.12}").unwrap().source,
            Source::Git { path: "/src/linux".into(), reference: "v6.12".into() }
        );
        assert!(matches!(
            v(&format!("{{url: 'https://x/l.tar.xz', sha256: {sha}}}")).unwrap().source,
            Source::Url { .. }
        ));
        assert!(v("{tarball: l.tar.xz}").unwrap_err().message.contains("needs `sha256:`"));
        assert!(v("{tarball: l.tar.xz, sha256: 12}").unwrap_err().message.contains("not 64 hex digits"));
        assert!(v("{git: /src/linux}").unwrap_err().message.contains("needs `ref:`"));
        assert!(v("{debian: a, git: b}").unwrap_err().message.contains("exactly one source kind"));
    }

    #[test]
    fn config_base_is_a_target_or_a_file() {
        let v = parse("arches: [x86_64]\nsource: {debian: x}\nconfig: {base: {file: my.config}}\n").unwrap();
        assert_eq!(v.config.base, ConfigBase::File { file: "my.config".into() });
        let v = parse("arches: [x86_64]\nsource: {debian: x}\nconfig: {base: defconfig}\ntoolchain: clang\n").unwrap();
        assert_eq!(v.config.base, ConfigBase::Target("defconfig".into()));
        assert_eq!(v.toolchain, Toolchain::Clang);
    }
}
