//! apt-cache, remembered. Reading apt's package cache costs over a second
//! a call once foreign architectures are enabled; every run asks the same
//! questions (which version is the kernel source, which libraries does fio
//! need), and the answers change only when the package lists do.

use super::cmd;
use crate::failure::Result;
use std::path::Path;
use std::process::Command;
use std::time::UNIX_EPOCH;

/// What the answers depend on: the package lists and dpkg's architectures.
fn stamp() -> String {
    ["/var/lib/apt/lists", "/var/lib/apt/lists/partial", "/var/lib/dpkg/arch", "/etc/apt/sources.list.d"]
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos().to_string())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// `apt-cache ARGS...`'s stdout, from `cache` when the lists are unchanged.
pub fn query(cache: &Path, args: &[String]) -> Result<String> {
    let key = blake3::hash(args.join("\0").as_bytes()).to_hex()[..20].to_string();
    let file = cache.join("apt").join(format!("{key}.txt"));
    let stamp = stamp();
    if let Some((s, out)) = std::fs::read_to_string(&file).ok().as_deref().and_then(|t| t.split_once('\n')) {
        if s == stamp {
            return Ok(out.to_string());
        }
    }
    let out = cmd::stdout(Command::new("apt-cache").args(args))?;
    // Only a speed-up: a cache that cannot be written is asked again.
    let _ = crate::paths::write_atomic(&file, format!("{stamp}\n{out}").as_bytes());
    Ok(out)
}
