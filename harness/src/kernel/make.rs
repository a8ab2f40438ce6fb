//! The one make invocation every kernel step runs (configuring, building):
//! out-of-tree, reproducible build stamps, ccache shared across build
//! directories, and a make that dies with the harness, its whole tree.

use super::arch::Arch;
use super::source::SourceTree;
use std::path::Path;

pub(super) fn command(
    cache: &Path,
    tree: &SourceTree,
    out: &Path,
    arch: &Arch,
    cc: &str,
    make_args: &[String],
) -> tokio::process::Command {
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let mut c = tokio::process::Command::new("make");
    c.arg("-C").arg(&tree.path).arg(format!("O={}", out.display())).arg(format!("ARCH={}", arch.kernel_arch));
    if !arch.cross_compile.is_empty() {
        c.arg(format!("CROSS_COMPILE={}", arch.cross_compile));
    }
    c.args(make_args)
        .arg(format!("CC={cc}"))
        .args(["KBUILD_BUILD_USER=bounce", "KBUILD_BUILD_HOST=bounce", "KBUILD_BUILD_TIMESTAMP=@0"])
        .arg(format!("-j{jobs}"));
    // ccache shares objects between build directories only when paths are
    // relative to a common base and the working directory is not hashed.
    c.env("CCACHE_DIR", cache.join("ccache"))
        .env("CCACHE_BASEDIR", cache)
        .env("CCACHE_NOHASHDIR", "true")
        .env("CCACHE_MAXSIZE", "20G");
    // If the harness is killed outright, make must not build on unowned:
    // SIGTERM, not SIGKILL, because make passes SIGTERM down to its
    // children, kbuild's second make among them, which a SIGKILL of the
    // first make left building (measured: the link ran on for seconds).
    unsafe {
        c.pre_exec(|| nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(std::io::Error::from));
    }
    c
}
