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

/// `words`: the swiotlb setting's kernel words (the caller resolves a
/// setting's name).
pub async fn boot(
    root: &Path,
    cache: &Path,
    variant: &str,
    profile: &str,
    words: &str,
    request: MachineRequest,
) -> Result<i32> {
    let v = Variant::load(root, variant)?;
    let p = Profile::load(root, profile)?;
    if let Some(why) = p.unavailable() {
        return Err(Failure::input(format!("profile {profile}: {why}")));
    }
    let k = crate::kernel::ensure(root, cache, &v, &p.arch).await?;
    let initrd = crate::rootfs::ensure(root, cache, &k)?;
    let choice = super::probe::accel_for(request, cache, &k, &initrd).await?;
    // Private (0700, a name no one can guess first) and kept after the
    // shell ends: the results file is what the user came for.
    let dir = tempfile::Builder::new()
        .prefix("bounce-boot-")
        .tempdir()
        .infra(|| "cannot create a temporary directory".into())?
        .keep();
    // The matrix's guest, oops=panic included, with a shell.
    let spec = GuestSpec::new(&k, initrd, &p, &choice, words, &["bounce.shell=1".into()], Attach::default());
    let results = dir.join("results.txt");
    crate::ui::line(format!(
        "booting {variant} on {profile} ({}; {}); exit the shell to power off, Ctrl-A x kills QEMU; results in {}",
        choice.accel.qemu_arg(),
        spec.append,
        results.display()
    ));
    let mut qemu = tokio::process::Command::new(&spec.qemu);
    crate::host::cmd::dies_with_harness(&mut qemu);
    let status = qemu
        .args(spec.terminal_args(&results.display().to_string()))
        .status()
        .await
        .infra(|| format!("cannot start {}", spec.qemu))?;
    Ok(status.code().unwrap_or(1))
}
