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
    /// How guest time passed (runs from before the choice existed: the host's).
    #[serde(default)]
    pub clock: Clock,
}

/// How guest time passes. Under TCG on the host's clock every guest timing
/// measures how busy the host was as much as the guest's own work (one-page
/// map latency moved 12-27 % between identical boots here). QEMU's
/// instruction counter (`-icount shift=S`) makes guest time the count of
/// instructions the guest executed, 2^S ns each: the same work takes the
/// same guest time whatever else the host runs, so two guests can share the
/// host without disturbing each other's timings. Only TCG can count; KVM
/// guests run on the host's clock, and their timings are real.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    #[default]
    Host,
    /// `-icount shift=S,sleep=on`: an instruction is 2^S ns of guest time;
    /// an idle guest's time still follows the host's (sleep=on), so guest
    /// timeouts and network peers behave.
    Instructions(u8),
}

impl Clock {
    /// The instruction clock's rate: 2^2 ns an instruction (250 MHz at one
    /// instruction a cycle) keeps a one-page map at about 3,000
    /// instructions well above the benchmark's 0.1 us resolution, and a
    /// timed second of guest work at a quarter of the instructions shift 0
    /// would need.
    pub const DEFAULT_SHIFT: u8 = 2;

    /// QEMU's arguments for this clock under `accel`.
    pub fn qemu_args(self, accel: Accel) -> Vec<String> {
        match (self, accel) {
            (Clock::Instructions(shift), Accel::Tcg) => vec!["-icount".into(), format!("shift={shift},sleep=on")],
            _ => Vec::new(),
        }
    }

    pub fn label(self) -> String {
        match self {
            Clock::Host => "host clock".into(),
            Clock::Instructions(s) => format!("instruction clock, {} ns an instruction", 1u64 << s),
        }
    }
}

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
    /// `tcg`, or `tcg, instruction clock (4 ns)` when guests counted.
    pub fn short(&self) -> String {
        match self.clock {
            Clock::Host => self.accel.qemu_arg().to_string(),
            Clock::Instructions(s) => format!("{}, instruction clock ({} ns)", self.accel.qemu_arg(), 1u64 << s),
        }
    }

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
