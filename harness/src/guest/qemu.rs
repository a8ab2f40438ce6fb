//! The QEMU command line for one guest, built from a profile, a kernel and
//! the harness's three channels (console, results, QMP), which QEMU inherits
//! as already-connected sockets: no socket paths, no connect races.

use super::profile::Profile;
use crate::host::accel::Accel;
use std::path::PathBuf;

/// Child file descriptors for the inherited sockets.
pub const CONSOLE_FD: i32 = 3;
pub const RESULTS_FD: i32 = 4;
pub const QMP_FD: i32 = 5;

#[derive(Debug, Clone)]
pub struct GuestSpec {
    pub qemu: String,
    pub profile: Profile,
    pub accel: Accel,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The whole kernel command line.
    pub append: String,
}

impl GuestSpec {
    pub fn args(&self) -> Vec<String> {
        let p = &self.profile;
        let mut a: Vec<String> = vec![
            "-nodefaults".into(),
            "-no-reboot".into(),
            "-display".into(),
            "none".into(),
            "-machine".into(),
            p.machine.clone(),
            "-accel".into(),
            self.accel.qemu_arg().into(),
            "-cpu".into(),
            if self.accel == Accel::Kvm { "host".into() } else { p.cpu.clone() },
            "-smp".into(),
            p.smp.to_string(),
            "-m".into(),
            format!("{}M", p.memory_mib),
            "-kernel".into(),
            self.kernel.display().to_string(),
            "-initrd".into(),
            self.initrd.display().to_string(),
            "-append".into(),
            self.append.clone(),
            "-chardev".into(),
            format!("socket,id=con,fd={CONSOLE_FD}"),
            "-serial".into(),
            "chardev:con".into(),
            "-chardev".into(),
            format!("socket,id=res,fd={RESULTS_FD}"),
            "-serial".into(),
            "chardev:res".into(),
            "-chardev".into(),
            format!("socket,id=qmp,fd={QMP_FD}"),
            "-mon".into(),
            "chardev=qmp,mode=control".into(),
            // A kernel panic becomes a QMP event instead of a console grep.
            "-device".into(),
            "pvpanic-pci".into(),
        ];
        for d in &p.devices {
            a.push("-device".into());
            a.push(d.clone());
        }
        a
    }

    /// The command a user can paste to boot the same guest by hand (with the
    /// channels on the terminal instead of sockets).
    pub fn reproducer(&self) -> String {
        let mut out = vec![self.qemu.clone()];
        let args = self.args();
        let mut i = 0;
        while i < args.len() {
            let (k, v) = (&args[i], args.get(i + 1).cloned().unwrap_or_default());
            if k == "-chardev" || k == "-serial" || k == "-mon" {
                i += 2;
                continue;
            }
            out.push(k.clone());
            if k.starts_with('-') && !v.starts_with('-') && !matches!(k.as_str(), "-nodefaults" | "-no-reboot") {
                out.push(if v.contains(' ') { format!("'{v}'") } else { v });
                i += 2;
            } else {
                i += 1;
            }
        }
        out.push("-serial mon:stdio -serial file:results.txt".into());
        out.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> GuestSpec {
        let profile = Profile::load(&crate::paths::project_root(), "dma32").unwrap();
        GuestSpec {
            qemu: "qemu-system-x86_64".into(),
            profile,
            accel: Accel::Tcg,
            kernel: "/k/image".into(),
            initrd: "/k/initrd.cpio".into(),
            append: "console=ttyS0 swiotlb=512,1".into(),
        }
    }

    #[test]
    fn channels_are_inherited_sockets() {
        let a = spec().args().join(" ");
        assert!(a.contains("-chardev socket,id=con,fd=3 -serial chardev:con"));
        assert!(a.contains("-chardev socket,id=res,fd=4 -serial chardev:res"));
        assert!(a.contains("-mon chardev=qmp,mode=control"));
        assert!(a.contains("-accel tcg -cpu max"));
        assert!(a.contains("-machine q35,max-ram-below-4g=1G"));
        assert!(a.contains("-device edu"));
    }

    #[test]
    fn reproducer_quotes_the_command_line() {
        let r = spec().reproducer();
        assert!(r.starts_with("qemu-system-x86_64 -nodefaults -no-reboot -display none"), "{r}");
        assert!(r.contains("-append 'console=ttyS0 swiotlb=512,1'"), "{r}");
        assert!(!r.contains("fd=3"));
    }
}
