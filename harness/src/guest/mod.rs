//! One guest's life: command line, channels, QMP, and the state machine
//! that the progress display and the results both read.

pub mod channel;
pub mod console;
pub mod hang;
pub mod interactive;
pub mod machine;
pub mod probe;
pub mod profile;
pub mod qemu;
pub mod qmp;

use crate::kernel::arch::Arch;
use profile::Profile;

/// What every guest's kernel gets first: `panic=-1` with `-no-reboot`
/// turns a panic into an exit, `oops=panic` makes an oops one too (and so
/// a pvpanic event).
pub const BASE_CMDLINE: &str = "panic=-1 oops=panic";

/// The kernel command line of every guest (a matrix boot, the KVM probe,
/// `bounce boot`), in order of authority: the harness's, the profile's, the
/// swiotlb setting (merged with the profile's sizing and forcing), the
/// variant's own boot options, then `extra` (the workload's parameters, or
/// what the probe or an interactive shell needs).
pub fn cmdline(arch: &Arch, profile: &Profile, swiotlb: &str, variant: &[String], extra: &[String]) -> String {
    let mut words = vec![
        format!("console={}", arch.console),
        BASE_CMDLINE.to_string(),
        format!("bounce.results={}", arch.results_channel.tty),
    ];
    words.extend(arch.cmdline.iter().cloned());
    words.extend(profile.cmdline.iter().cloned());
    words.extend(profile.swiotlb_words(swiotlb));
    words.extend(variant.iter().cloned());
    words.extend(extra.iter().cloned());
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guest_gets_the_harness_words_first_and_the_caller_s_last() {
        let root = crate::paths::project_root();
        let arch = Arch::load(&root, "x86_64").unwrap();
        let p = Profile::load(&root, "sev-emulated").unwrap();
        let line = cmdline(&arch, &p, "swiotlb=128,1", &["v=1".into()], &["bounce.shell=1".into()]);
        assert!(line.starts_with(&format!("console={} panic=-1 oops=panic bounce.results=", arch.console)), "{line}");
        assert!(line.contains("swiotlb=128,1"), "{line}");
        assert!(line.ends_with("v=1 bounce.shell=1"), "{line}");
    }
}
