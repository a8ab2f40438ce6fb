//! Which accelerator really runs guests here. `/dev/kvm` can exist and still
//! hang a guest, so KVM counts only after a probe guest boots with it.

use crate::failure::Result;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::Path;

pub use crate::results::env::{Accel, AccelChoice, Clock};

/// What the user asked of the clock: `auto` counts instructions under TCG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockRequest {
    Auto,
    Host,
    Instructions,
}

/// How the user asked guests to run: every command that boots takes these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct MachineRequest {
    /// Accelerator: auto probes KVM with a real guest, else TCG.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: AccelRequest,
    /// Guest time under TCG: auto and instructions count the guest's
    /// instructions (timings repeat whatever the host does), host follows
    /// the host's clock. KVM guests always run on the host's.
    #[arg(long, value_enum, default_value = "auto")]
    pub clock: ClockRequest,
}

impl Default for MachineRequest {
    fn default() -> Self {
        MachineRequest { accel: AccelRequest::Auto, clock: ClockRequest::Auto }
    }
}

impl AccelChoice {
    /// The clock `request` gives guests of this accelerator.
    pub fn with_clock(mut self, request: ClockRequest) -> AccelChoice {
        self.clock = match (self.accel, request) {
            (Accel::Kvm, _) | (_, ClockRequest::Host) => Clock::Host,
            (Accel::Tcg, ClockRequest::Auto | ClockRequest::Instructions) => Clock::Instructions(Clock::DEFAULT_SHIFT),
        };
        self
    }
}

/// What the user asked for: `auto` probes, the others are taken as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelRequest {
    Auto,
    Kvm,
    Tcg,
}

#[derive(Serialize, Deserialize)]
struct Probed {
    boot_id: String,
    qemu: String,
    choice: AccelChoice,
}

/// Decide, probing at most once per host boot and QEMU binary (the answer
/// cannot change in between, and a hanging probe costs its full timeout).
pub async fn choose<F, Fut>(request: AccelRequest, cache: &Path, qemu: &str, probe_kvm: F) -> Result<AccelChoice>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    match request {
        AccelRequest::Tcg => {
            return Ok(AccelChoice { accel: Accel::Tcg, reason: "requested".into(), clock: Clock::Host })
        }
        AccelRequest::Kvm => {
            return Ok(AccelChoice { accel: Accel::Kvm, reason: "requested".into(), clock: Clock::Host })
        }
        AccelRequest::Auto => {}
    }
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return Ok(AccelChoice { accel: Accel::Tcg, reason: format!("/dev/kvm unusable: {e}"), clock: Clock::Host });
    }
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default().trim().to_string();
    let memo = cache.join(format!("accel-{}.json", crate::paths::sanitize(qemu)));
    if let Ok(p) = serde_json::from_str::<Probed>(&std::fs::read_to_string(&memo).unwrap_or_default()) {
        if p.boot_id == boot_id && p.qemu == qemu {
            return Ok(p.choice);
        }
    }
    crate::ui::line("probing KVM with a test guest");
    let choice = match probe_kvm().await {
        Ok(()) => AccelChoice { accel: Accel::Kvm, reason: "probe guest booted with KVM".into(), clock: Clock::Host },
        Err(e) => AccelChoice {
            accel: Accel::Tcg,
            reason: format!("/dev/kvm present but the probe guest failed: {}", e.message),
            clock: Clock::Host,
        },
    };
    let _ = std::fs::write(
        &memo,
        serde_json::to_string(&Probed { boot_id, qemu: qemu.into(), choice: choice.clone() }).unwrap(),
    );
    Ok(choice)
}
