//! Which accelerator a guest of an architecture gets, decided by booting
//! one: a `/dev/kvm` that exists can still abort QEMU (it does here).

use super::machine::{self, Timeouts};
use super::profile::Profile;
use super::qemu::{Attach, GuestSpec};
use crate::failure::Result;
use crate::host::accel::{self, Accel, AccelChoice, AccelRequest, MachineRequest};
use crate::kernel::Kernel;
use std::path::Path;
use std::time::Duration;

/// Boot a tiny guest with KVM; Ok only if it reaches init and powers off.
async fn probe_kvm(kernel: &Kernel, initrd: &Path, cache: &Path) -> Result<()> {
    // KVM always runs `-cpu host`.
    let profile = Profile::bare("kvm-probe", &kernel.arch, 256, 1);
    let kvm = AccelChoice { accel: Accel::Kvm, reason: "probe".into(), clock: Default::default() };
    let spec = GuestSpec::new(
        kernel,
        initrd.to_path_buf(),
        &profile,
        &kvm,
        "",
        &["bounce.workload=probe".into()],
        Attach::default(),
    );
    let dir = cache.join("kvm-probe");
    let t = Timeouts { boot: Duration::from_secs(30), run: Duration::from_secs(30) };
    let run = machine::run(&spec, &dir, t, &|_| {}).await?;
    match run.failure {
        None => Ok(()),
        Some(f) => Err(f),
    }
}

/// The accelerator for guests of `kernel`'s architecture.
pub async fn accel_for(request: MachineRequest, cache: &Path, kernel: &Kernel, initrd: &Path) -> Result<AccelChoice> {
    let native = kernel.arch.qemu.ends_with(std::env::consts::ARCH);
    let choice = if !native && request.accel != AccelRequest::Kvm {
        AccelChoice {
            accel: Accel::Tcg,
            reason: format!("{} guest on a {} host", kernel.arch.name, std::env::consts::ARCH),
            clock: Default::default(),
        }
    } else {
        accel::choose(request.accel, cache, &kernel.arch.qemu, || probe_kvm(kernel, initrd, cache)).await?
    };
    Ok(choice.with_clock(request.clock))
}
