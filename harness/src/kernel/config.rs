//! Kernel configuration: a base target plus fragments, resolved by Kconfig,
//! then checked option by option. `olddefconfig` silently drops options
//! whose dependencies are unmet; we refuse to build a kernel that lacks
//! what was asked for.

use super::arch::Arch;
use super::source::SourceTree;
use super::variant::{ConfigBase, Variant};
use crate::failure::{Classify, Failure, Result};
use crate::host::cmd;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything a resolution depends on.
pub struct Resolve<'a> {
    pub tree: &'a SourceTree,
    pub arch: &'a Arch,
    pub variant: &'a Variant,
    pub cc: &'a str,
    pub make_args: &'a [String],
    pub toolchain: &'a str,
    /// A user's .config as the base, instead of a make target.
    pub base_config: Option<&'a str>,
    pub fragments: &'a [String],
    /// Puts the tree in the variant's state (its series applied): a patch
    /// may change Kconfig.
    pub prepare_tree: &'a dyn Fn() -> Result<()>,
}

/// Resolve base + fragments into a .config, cached by its inputs (a
/// resolution costs ~15 s of make and is needed on every run).
pub fn resolve(cache: &Path, r: &Resolve) -> Result<String> {
    let mut h = blake3::Hasher::new();
    let series = r.variant.extra.as_ref().map(|s| s.hash()).unwrap_or_default();
    let base = r.variant.config.base.describe();
    for part in [RESOLVE_SCHEMA, &r.tree.identity, &series, &r.arch.name, r.toolchain, r.cc, &base] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    for part in
        r.make_args.iter().map(String::as_str).chain(r.base_config).chain(r.fragments.iter().map(String::as_str))
    {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    let stored = cache.join("configs").join(format!("{}.config", &h.finalize().to_hex()[..20]));
    if let Some(text) = crate::paths::is_sealed(&stored).then(|| std::fs::read_to_string(&stored).ok()).flatten() {
        return Ok(text);
    }
    // The tree is shared by every series: only one process touches it.
    let _lock = crate::lock::Lock::exclusive(&cache.join("locks/kernel-build.lock"))?;
    (r.prepare_tree)()?;
    let scratch = cache.join("build").join(format!("resolve-{}", crate::paths::sanitize(&r.variant.name)));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).infra(|| format!("cannot create {}", scratch.display()))?;
    let make = |target: &str| -> Result<()> {
        let mut c = super::make::command(cache, r.tree, &scratch, r.arch, r.cc, r.make_args).into_std();
        c.arg("-s").arg(target);
        cmd::run(&mut c).map(|_| ()).map_err(|e| {
            Failure::input(format!(
                "{}: config `{target}` for {}: {}",
                r.variant.file.display(),
                r.arch.name,
                e.message
            ))
        })
    };
    let cfg = scratch.join(".config");
    let mut text = match (&r.variant.config.base, r.base_config) {
        (ConfigBase::File { .. }, Some(text)) => text.to_string(),
        (ConfigBase::Target(t), _) => {
            make(if t == "guest" { "tinyconfig" } else { t })?;
            std::fs::read_to_string(&cfg).infra(|| format!("cannot read {}", cfg.display()))?
        }
        (ConfigBase::File { file }, None) => {
            return Err(Failure::input(format!(
                "{}: config base {} not read",
                r.variant.file.display(),
                file.display()
            )))
        }
    };
    for f in r.fragments {
        text.push('\n');
        text.push_str(f);
    }
    std::fs::write(&cfg, text).infra(|| format!("cannot write {}", cfg.display()))?;
    make("olddefconfig")?;
    let resolved = std::fs::read_to_string(&cfg).infra(|| format!("cannot read {}", cfg.display()))?;
    crate::paths::write_atomic(&stored, resolved.as_bytes())?;
    crate::paths::seal(&stored)?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(resolved)
}

const RESOLVE_SCHEMA: &str = "bounce-config-v2";

/// One requested setting and where it was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub symbol: String,
    /// `None` means "is not set".
    pub value: Option<String>,
    pub file: PathBuf,
    pub line: usize,
}

/// Parse a fragment: `CONFIG_X=v`, `# CONFIG_X is not set`, comments, blanks.
pub fn parse_fragment(file: &Path, text: &str) -> Result<Vec<Wanted>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = || format!("{}:{}", file.display(), i + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(sym) = rest.strip_suffix(" is not set") {
                let sym = sym
                    .strip_prefix("CONFIG_")
                    .ok_or_else(|| Failure::input(format!("{}: expected `# CONFIG_NAME is not set`", at())))?;
                check_symbol(sym, &at)?;
                out.push(Wanted { symbol: sym.into(), value: None, file: file.into(), line: i + 1 });
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (sym, val) = line
            .strip_prefix("CONFIG_")
            .and_then(|l| l.split_once('='))
            .ok_or_else(|| Failure::input(format!("{}: expected `CONFIG_NAME=value`, found `{line}`", at())))?;
        check_symbol(sym, &at)?;
        if val.is_empty() {
            return Err(Failure::input(format!(
                "{}: CONFIG_{sym} has no value (write `# CONFIG_{sym} is not set` to disable it)",
                at()
            )));
        }
        out.push(Wanted { symbol: sym.into(), value: Some(val.into()), file: file.into(), line: i + 1 });
    }
    Ok(out)
}

fn check_symbol(sym: &str, at: &dyn Fn() -> String) -> Result<()> {
    if sym.is_empty() || !sym.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Failure::input(format!("{}: `{sym}` is not a Kconfig symbol", at())));
    }
    Ok(())
}

/// Symbols set in a resolved .config; absent or "is not set" means unset.
pub fn parse_resolved(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("CONFIG_")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every wanted setting must survive resolution; the first that did not is
/// reported with its file and line.
pub fn verify(wanted: &[Wanted], resolved: &str) -> Result<()> {
    let set = parse_resolved(resolved);
    // Later fragments override earlier ones, as in the .config we appended.
    let mut last: BTreeMap<&str, &Wanted> = BTreeMap::new();
    for w in wanted {
        last.insert(&w.symbol, w);
    }
    let mut problems = Vec::new();
    for w in wanted.iter().filter(|w| std::ptr::eq(*last.get(w.symbol.as_str()).unwrap(), *w)) {
        let got = set.get(&w.symbol);
        let ok = match (&w.value, got) {
            (None, None) => true,
            (None, Some(v)) => v == "n",
            (Some(want), Some(v)) => want == v,
            (Some(want), None) => want == "n",
        };
        if !ok {
            let asked = w
                .value
                .as_deref()
                .map(|v| format!("CONFIG_{}={v}", w.symbol))
                .unwrap_or(format!("CONFIG_{} off", w.symbol));
            let got = got.map(|v| format!("={v}")).unwrap_or_else(|| " not set".into());
            problems.push(format!(
                "{}:{}: {asked} was dropped by olddefconfig (resolved: CONFIG_{}{got}); an unknown symbol or an unmet dependency (see its `depends on` in Kconfig)",
                w.file.display(),
                w.line,
                w.symbol
            ));
        }
    }
    match problems.len() {
        0 => Ok(()),
        1 => Err(Failure::input(problems.remove(0))),
        n => Err(Failure::input(format!("{} (and {} more options)", problems.remove(0), n - 1))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(text: &str) -> Vec<Wanted> {
        parse_fragment(Path::new("f.config"), text).unwrap()
    }

    #[test]
    fn parses_set_unset_and_comments() {
        let w = frag("# comment\n\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\n");
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].value.as_deref(), Some("y"));
        assert_eq!(w[1].value, None);
        assert_eq!(w[1].line, 4);
        assert_eq!(w[2].value.as_deref(), Some("\"x y\""));
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let e = parse_fragment(Path::new("k/f.config"), "CONFIG_A=y\nSWIOTLB=y\n").unwrap_err();
        assert_eq!(e.message, "k/f.config:2: expected `CONFIG_NAME=value`, found `SWIOTLB=y`");
        let e = parse_fragment(Path::new("f"), "CONFIG_A=\n").unwrap_err();
        assert!(e.message.contains("has no value"));
    }

    #[test]
    fn verify_reports_dropped_option() {
        let w = frag("CONFIG_A=y\nCONFIG_NOPE=y\n# CONFIG_C is not set\n");
        let resolved = "CONFIG_A=y\n# CONFIG_C is not set\n";
        let e = verify(&w, resolved).unwrap_err();
        assert!(e.message.starts_with("f.config:2: CONFIG_NOPE=y was dropped"), "{}", e.message);
        assert!(verify(&frag("CONFIG_A=y\n# CONFIG_C is not set\n"), resolved).is_ok());
        let e = verify(&frag("# CONFIG_A is not set\n"), resolved).unwrap_err();
        assert!(e.message.contains("CONFIG_A off"), "{}", e.message);
    }

    #[test]
    fn later_fragment_overrides_earlier() {
        let mut w = frag("# CONFIG_D is not set\n");
        w.extend(frag("CONFIG_D=y\n"));
        assert!(verify(&w, "CONFIG_D=y\n").is_ok());
    }

    #[test]
    fn shipped_fragments_parse() {
        let dir = crate::paths::project_root().join("kernels/config");
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let w = parse_fragment(&p, &std::fs::read_to_string(&p).unwrap()).unwrap();
            assert!(!w.is_empty(), "{}", p.display());
        }
    }
}
