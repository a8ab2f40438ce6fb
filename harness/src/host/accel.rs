//! Which accelerator really runs guests here. `/dev/kvm` can exist and still
//! hang a guest, so KVM counts only after a probe guest boots with it.

use crate::failure::Result;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn qemu_arg(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// The accelerator and how it was chosen; recorded with every result.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccelChoice {
    pub accel: Accel,
    pub reason: String,
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
        AccelRequest::Tcg => return Ok(AccelChoice { accel: Accel::Tcg, reason: "requested".into() }),
        AccelRequest::Kvm => return Ok(AccelChoice { accel: Accel::Kvm, reason: "requested".into() }),
        AccelRequest::Auto => {}
    }
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return Ok(AccelChoice { accel: Accel::Tcg, reason: format!("/dev/kvm unusable: {e}") });
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
        Ok(()) => AccelChoice { accel: Accel::Kvm, reason: "probe guest booted with KVM".into() },
        Err(e) => AccelChoice {
            accel: Accel::Tcg,
            reason: format!("/dev/kvm present but the probe guest failed: {}", e.message),
        },
    };
    let _ = std::fs::write(
        &memo,
        serde_json::to_string(&Probed { boot_id, qemu: qemu.into(), choice: choice.clone() }).unwrap(),
    );
    Ok(choice)
}
