//! The guest's own C programs (`workloads/src/*.c`), built static with the
//! architecture's compiler (the cross gcc for arm64: only the host's Rust
//! target exists here) and cached by source and compiler.

use crate::failure::{Classify, Failure, Result};
use crate::host::cmd;
use crate::kernel::arch::Arch;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (name, binary) for every program, built if needed.
pub fn build_all(root: &Path, cache: &Path, arch: &Arch) -> Result<Vec<(String, PathBuf)>> {
    let src = root.join("workloads/src");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&src)
        .infra(|| format!("cannot read {}", src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    let gcc = arch.gcc();
    let version = cmd::stdout(Command::new(&gcc).arg("--version"))?.lines().next().unwrap_or("").to_string();
    let dir = cache.join("programs").join(&arch.name);
    std::fs::create_dir_all(&dir).infra(|| format!("cannot create {}", dir.display()))?;
    let mut out = Vec::new();
    for s in sources {
        let name = s.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read(&s).infra(|| format!("cannot read {}", s.display()))?;
        let mut h = blake3::Hasher::new();
        h.update(&text);
        h.update(version.as_bytes());
        for header in crate::rootfs::walk(&src.join("include"))? {
            h.update(header.to_string_lossy().as_bytes());
            h.update(
                &std::fs::read(src.join("include").join(&header))
                    .infra(|| format!("cannot read {}", header.display()))?,
            );
        }
        let bin = dir.join(format!("{name}-{}", &h.finalize().to_hex()[..16]));
        if !crate::paths::is_sealed(&bin) {
            let tmp = crate::paths::temp_beside(&bin);
            let mut c = Command::new(&gcc);
            c.args(["-static", "-O2", "-Wall", "-I"]).arg(src.join("include")).arg("-o").arg(&tmp).arg(&s);
            cmd::run(&mut c).map_err(|e| {
                Failure::infra(format!(
                    "cannot build the guest program {} for {}: {}",
                    s.display(),
                    arch.name,
                    e.message
                ))
            })?;
            crate::paths::install_sealed(&tmp, &bin)?;
        }
        out.push((name, bin));
    }
    Ok(out)
}
