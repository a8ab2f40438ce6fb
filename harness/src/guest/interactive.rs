//! `bounce boot`: one guest of the matrix with a shell on this terminal,
//! the way virtme-ng users debug a kernel. The guest boots exactly as a
//! cell would (same kernel, initramfs, profile, swiotlb words), runs no
//! workload, reports its boot sections to `results.txt`, and hands the
//! console to a shell; leaving the shell powers it off.

use super::profile::Profile;
use super::qemu::{Attach, GuestSpec};
use crate::failure::{Classify, Failure, Result};
use crate::host::accel::MachineRequest;
use crate::kernel::variant::Variant;
use std::path::Path;

pub async fn boot(
    root: &Path,
    cache: &Path,
    variant: &str,
    profile: &str,
    swiotlb: &str,
    request: MachineRequest,
) -> Result<i32> {
    let v = Variant::load(root, variant)?;
    let p = Profile::load(root, profile)?;
    if let Some(why) = p.unavailable() {
        return Err(Failure::input(format!("profile {profile}: {why}")));
    }
    // A name from the default matrix, or the words themselves.
    let matrix = crate::matrix::Matrix::load(root, &root.join("matrix.yaml")).ok();
    let words = matrix
        .and_then(|m| m.spec.swiotlb.get(swiotlb).map(|s| s.args().to_string()))
        .unwrap_or_else(|| swiotlb.to_string());
    let k = crate::kernel::ensure(root, cache, &v, &p.arch).await?;
    let initrd = crate::rootfs::ensure(root, cache, &k)?;
    let choice = crate::matrix::run::accel_for(request, cache, &k, &initrd).await?;
    let dir = std::env::temp_dir().join(format!("bounce-boot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).infra(|| format!("cannot create {}", dir.display()))?;
    // The matrix's guest, oops=panic included, with a shell.
    let spec = GuestSpec::new(&k, initrd, &p, &choice, &words, &["bounce.shell=1".into()], Attach::default());
    let results = dir.join("results.txt");
    eprintln!(
        "bounce: booting {variant} on {profile} ({}; {}); exit the shell to power off, Ctrl-A x kills QEMU; results in {}",
        choice.accel.qemu_arg(),
        spec.append,
        results.display()
    );
    let mut qemu = tokio::process::Command::new(&spec.qemu);
    crate::host::cmd::dies_with_harness(&mut qemu);
    let status = qemu
        .args(spec.terminal_args(&results.display().to_string()))
        .status()
        .await
        .infra(|| format!("cannot start {}", spec.qemu))?;
    Ok(status.code().unwrap_or(1))
}
