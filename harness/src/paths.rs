//! Where things live: the project's data folders and the user's cache.

use std::path::{Path, PathBuf};

/// The checkout's top level, holding kernels/, profiles/, workloads/,
/// rootfs/, matrix.yaml and results/. Found from the build, so tests and
/// `cargo run` work from any directory; BOUNCE_ROOT overrides it.
pub fn project_root() -> PathBuf {
    if let Some(p) = std::env::var_os("BOUNCE_ROOT") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness/ has a parent").to_path_buf()
}

/// The cache survives clones: kernels take a quarter of an hour each to build.
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("BOUNCE_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("bounce");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("bounce")
}

/// A name safe for a path component: kernel make chokes on some characters
/// (':' and spaces) and Debian versions contain '~' and '+'.
pub fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sanitize_debian_version() {
        assert_eq!(super::sanitize("linux-source-6.12_6.12.117-1~deb12u1"), "linux-source-6.12_6.12.117-1_deb12u1");
        assert_eq!(super::sanitize("a b:c+d"), "a_b_c_d");
    }
}
