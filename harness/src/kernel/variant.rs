//! Kernel variants as data: `kernels/variants/NAME.yaml`.

use crate::failure::Result;
use serde::Deserialize;
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
    pub arch: String,
    pub source: Source,
    pub config: ConfigSpec,
}

/// Where the tree comes from. Its identity (package and version, or a
/// checksum) is part of the build key.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "SourceFields")]
pub enum Source {
    /// A Debian `linux-source-X.Y` package, fetched with `apt-get download`.
    Debian(String),
}

/// The YAML shape (`source: {debian: linux-source-6.12}`): one key names
/// the kind. serde_yaml would otherwise want `!debian` tags.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceFields {
    debian: Option<String>,
}

impl TryFrom<SourceFields> for Source {
    type Error = String;
    fn try_from(f: SourceFields) -> std::result::Result<Self, String> {
        match f.debian {
            Some(pkg) => Ok(Source::Debian(pkg)),
            None => Err("name exactly one source kind: `debian: PACKAGE`".into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    /// A make target that produces the starting .config (tinyconfig, defconfig).
    pub base: String,
    /// Files under kernels/config/, appended in order, then olddefconfig.
    #[serde(default)]
    pub fragments: Vec<String>,
}

impl Variant {
    pub fn load(root: &Path, name: &str) -> Result<Variant> {
        let (mut v, file): (Variant, _) =
            crate::yaml::load_named(&root.join("kernels/variants"), "kernel variant", name)?;
        v.name = name.to_string();
        v.file = file;
        Ok(v)
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
        assert!(names.contains(&"6.12-fixed".to_string()) && names.contains(&"6.12-dynamic".to_string()));
        for n in names {
            let v = Variant::load(&root, &n).unwrap();
            for f in &v.config.fragments {
                assert!(root.join("kernels/config").join(f).exists(), "{n}: fragment {f} missing");
            }
        }
    }

    #[test]
    fn unknown_field_names_the_line() {
        let err = crate::yaml::parse::<Variant>(
            Path::new("v.yaml"),
            "arch: x86_64\nsource: {debian: linux-source-6.12}\nconfig: {base: tinyconfig}\nfragmnts: []\n",
        )
        .unwrap_err();
        assert!(err.message.starts_with("v.yaml:4:1: unknown field `fragmnts`"), "{}", err.message);
    }
}
