//! The QEMU command line for one guest, built from a profile, a kernel and
//! the harness's three channels (console, results, QMP), which QEMU inherits
//! as already-connected sockets: no socket paths, no connect races.

use super::profile::{Confidential, Profile};
use crate::host::accel::{Accel, AccelChoice, Clock};
use crate::host::sev::SevHost;
use crate::kernel::Kernel;
use std::path::PathBuf;

/// Child file descriptors for the inherited sockets.
pub const CONSOLE_FD: i32 = 3;
pub const RESULTS_FD: i32 = 4;
pub const QMP_FD: i32 = 5;

/// What a workload needs attached beyond the profile's fixed devices.
#[derive(Debug, Clone, Default)]
pub struct Attach {
    /// A scratch disk image on the profile's disk slot (the one that bounces).
    pub disk: Option<PathBuf>,
    /// The profile's NIC, on QEMU user networking, restricted: the guest
    /// reaches nothing but `forwards`.
    pub nic: bool,
    /// The harness's services the guest may reach, at [`PEER_ADDR`].
    pub forwards: Vec<Forward>,
    /// The profile's display device.
    pub gpu: bool,
    /// The read-only tools disk, on a device that does not bounce.
    pub tools: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct GuestSpec {
    pub qemu: String,
    pub profile: Profile,
    pub accel: Accel,
    pub clock: Clock,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The whole kernel command line.
    pub append: String,
    /// QEMU arguments that put the `res` chardev on a UART (arch data).
    pub results_channel: Vec<String>,
    pub attach: Attach,
    /// The host's SEV facts, for profiles that really encrypt memory.
    pub sev: Option<SevHost>,
}

/// Where a guest finds the harness's services. QEMU user networking runs
/// with `restrict=on`, so a guest (a kernel built from patches off a public
/// list) reaches no host port and no address but these forwards.
pub const PEER_ADDR: &str = "10.0.2.100";

/// One TCP port of [`PEER_ADDR`]: QEMU runs `relay` for each connection the
/// guest opens to it, the connection on the relay's stdin and stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub port: u16,
    /// A command line as GLib parses it (shell words).
    pub relay: String,
}

/// The serial numbers the guest finds its disks by.
pub const TOOLS_SERIAL: &str = "bounce-tools";
pub const SCRATCH_SERIAL: &str = "bounce-scratch";

impl GuestSpec {
    /// The one way to make a guest (a matrix boot, the KVM probe, `bounce
    /// boot`): `kernel` on `profile` under `accel`, its command line from
    /// [`super::cmdline`] with the swiotlb words and the caller's `extra`
    /// last, a confidential profile with this host's SEV facts.
    pub fn new(
        kernel: &Kernel,
        initrd: PathBuf,
        profile: &Profile,
        accel: &AccelChoice,
        swiotlb: &str,
        extra: &[String],
        attach: Attach,
    ) -> GuestSpec {
        GuestSpec {
            qemu: kernel.arch.qemu.clone(),
            accel: accel.accel,
            clock: accel.clock,
            kernel: kernel.image(),
            initrd,
            append: super::cmdline(&kernel.arch, profile, swiotlb, &kernel.cmdline, extra),
            results_channel: kernel.arch.results_channel.qemu.clone(),
            attach,
            sev: profile.confidential.and_then(|_| crate::host::sev::host().as_ref().ok().copied()),
            profile: profile.clone(),
        }
    }

    /// QEMU's instruction counter runs every vCPU on one host thread,
    /// round-robin, and with two it starves one: measured here with QEMU
    /// 7.2 (and 10.0), 7 of 28 dma_map_benchmark boots froze with a vCPU
    /// that never left an interrupt entry; with one vCPU, 0 of 16. So a
    /// guest on the instruction clock has one vCPU (and two guests share
    /// the host's two cores).
    pub fn vcpus(&self) -> u32 {
        match (self.clock, self.accel) {
            (Clock::Instructions(_), Accel::Tcg) => 1,
            _ => self.profile.smp,
        }
    }

    /// The arguments for a harness-driven guest: console, results and QMP
    /// on inherited sockets.
    pub fn args(&self) -> Vec<String> {
        self.args_with(None)
    }

    /// The arguments for a guest on this terminal: the console (with QEMU's
    /// monitor on Ctrl-A c) on stdio, results to a file, no QMP.
    pub fn terminal_args(&self, results_file: &str) -> Vec<String> {
        self.args_with(Some(results_file))
    }

    fn args_with(&self, terminal: Option<&str>) -> Vec<String> {
        let p = &self.profile;
        let mut machine = p.machine.clone();
        if p.confidential == Some(Confidential::Sev) {
            machine.push_str(",confidential-guest-support=sev0");
        }
        let cpu = match (self.accel, p.confidential) {
            // A real SEV guest needs the CPU model that has the feature.
            (Accel::Kvm, Some(_)) => p.cpu.clone(),
            (Accel::Kvm, None) => "host".into(),
            (Accel::Tcg, _) => p.cpu.clone(),
        };
        let mut a: Vec<String> = vec![
            "-nodefaults".into(),
            "-no-reboot".into(),
            "-display".into(),
            "none".into(),
            "-machine".into(),
            machine,
            "-accel".into(),
            self.accel.qemu_arg().into(),
            "-cpu".into(),
            cpu,
            "-smp".into(),
            self.vcpus().to_string(),
            "-m".into(),
            format!("{}M", p.memory_mib),
        ];
        a.extend(self.clock.qemu_args(self.accel));
        if let (Some(Confidential::Sev), Some(sev)) = (p.confidential, self.sev) {
            a.extend([
                "-object".into(),
                format!(
                    "sev-guest,id=sev0,cbitpos={},reduced-phys-bits={},policy=0x1",
                    sev.cbitpos, sev.reduced_phys_bits
                ),
            ]);
        }
        if let Some(fw) = &p.firmware {
            a.extend(["-bios".into(), fw.display().to_string()]);
        }
        a.extend([
            "-kernel".into(),
            self.kernel.display().to_string(),
            "-initrd".into(),
            self.initrd.display().to_string(),
            "-append".into(),
            self.append.clone(),
        ]);
        match terminal {
            None => a.extend([
                "-chardev".into(),
                format!("socket,id=con,fd={CONSOLE_FD}"),
                "-serial".into(),
                "chardev:con".into(),
                "-chardev".into(),
                format!("socket,id=res,fd={RESULTS_FD}"),
            ]),
            Some(file) => a.extend([
                "-serial".into(),
                "mon:stdio".into(),
                "-chardev".into(),
                format!("file,id=res,path={}", opt_value(file)),
            ]),
        }
        a.extend(self.results_channel.iter().cloned());
        if terminal.is_none() {
            a.extend([
                "-chardev".into(),
                format!("socket,id=qmp,fd={QMP_FD}"),
                "-mon".into(),
                "chardev=qmp,mode=control".into(),
            ]);
        }
        // A kernel panic becomes a QMP event instead of a console grep.
        a.extend(["-device".into(), "pvpanic-pci".into()]);
        for d in &p.devices {
            a.extend(["-device".into(), d.clone()]);
        }
        let at = &self.attach;
        if let (Some(img), Some(slot)) = (&at.disk, &p.disk) {
            a.extend([
                "-drive".into(),
                format!("if=none,id=scratch,file={},format=raw,cache=none", opt_value(&img.display().to_string())),
            ]);
            if let Some(c) = &slot.controller {
                a.extend(["-device".into(), format!("{c},id=scratchctl")]);
            }
            a.extend(["-device".into(), format!("{},drive=scratch,serial={SCRATCH_SERIAL}", slot.device)]);
        }
        if let (true, Some(nic)) = (at.nic, &p.nic) {
            let mut netdev = String::from("user,id=net0,restrict=on");
            for f in &at.forwards {
                netdev.push_str(&format!(",guestfwd=tcp:{PEER_ADDR}:{}-cmd:{}", f.port, opt_value(&f.relay)));
            }
            a.extend(["-netdev".into(), netdev, "-device".into(), format!("{nic},netdev=net0")]);
        }
        if let (true, Some(gpu)) = (at.gpu, &p.gpu) {
            a.extend(["-device".into(), gpu.clone()]);
        }
        if let Some(img) = &at.tools {
            // Without VIRTIO_F_ACCESS_PLATFORM virtio bypasses the DMA API,
            // so reading the tools never bounces; a confidential guest
            // refuses such devices, and there it bounces like the rest.
            let platform = if p.confidential.is_some() { ",iommu_platform=on,disable-legacy=on" } else { "" };
            a.extend([
                "-drive".into(),
                format!("if=none,id=tools,file={},format=raw,readonly=on", opt_value(&img.display().to_string())),
                "-device".into(),
                format!("virtio-blk-pci,drive=tools,serial={TOOLS_SERIAL}{platform}"),
            ]);
        }
        a
    }

    /// The command a user can paste to boot the same guest by hand (with the
    /// console on the terminal and the results in a file).
    pub fn reproducer(&self) -> String {
        let mut out = vec![self.qemu.clone()];
        for a in self.terminal_args("results.txt") {
            out.push(if a.contains(' ') || a.is_empty() { format!("'{a}'") } else { a });
        }
        // The relays run this process's binary through /proc, which ends
        // with it: a person pasting the line later needs its path.
        let own = format!("/proc/{}/exe", std::process::id());
        match std::env::current_exe() {
            Ok(exe) => out.join(" ").replace(&own, &exe.display().to_string()),
            Err(_) => out.join(" "),
        }
    }
}

/// A value inside a QEMU option string (`file=...,format=raw`): QEMU
/// splits on commas and reads `,,` as one, so a path with a comma (a cache
/// under `~/a,b`) must not become two options.
fn opt_value(v: &str) -> String {
    v.replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::arch::Arch;

    fn spec(profile: &str) -> GuestSpec {
        let root = crate::paths::project_root();
        let profile = Profile::load(&root, profile).unwrap();
        let arch = Arch::load(&root, &profile.arch).unwrap();
        GuestSpec {
            qemu: arch.qemu.clone(),
            profile,
            accel: Accel::Tcg,
            clock: Clock::Host,
            kernel: "/k/image".into(),
            initrd: "/k/initrd.cpio".into(),
            append: "console=ttyS0 swiotlb=512,1".into(),
            results_channel: arch.results_channel.qemu.clone(),
            attach: Attach::default(),
            sev: None,
        }
    }

    #[test]
    fn channels_are_inherited_sockets() {
        let a = spec("dma32").args().join(" ");
        assert!(a.contains("-chardev socket,id=con,fd=3 -serial chardev:con"));
        assert!(a.contains("-chardev socket,id=res,fd=4 -serial chardev:res"));
        assert!(a.contains("-mon chardev=qmp,mode=control"));
        assert!(a.contains("-accel tcg -cpu max"));
        assert!(a.contains("-machine q35,max-ram-below-4g=1G"));
        assert!(a.contains("-device edu"));
        let a = spec("arm64").args().join(" ");
        assert!(a.contains("-chardev socket,id=res,fd=4 -device pci-serial,chardev=res"), "{a}");
    }

    #[test]
    fn the_instruction_clock_counts_on_one_vcpu_under_tcg_only() {
        let mut s = spec("sev-emulated");
        s.clock = Clock::Instructions(2);
        let a = s.args().join(" ");
        assert!(a.contains("-accel tcg -cpu max -smp 1 -m 2048M -icount shift=2,sleep=on"), "{a}");
        assert!(s.reproducer().contains("-icount shift=2,sleep=on"));
        s.accel = Accel::Kvm;
        let a = s.args().join(" ");
        assert!(!a.contains("-icount") && a.contains("-smp 2"), "{a}");
    }

    #[test]
    fn workload_devices_go_on_the_profile_slots() {
        let mut s = spec("dma32");
        s.attach = Attach {
            disk: Some("/r/scratch.img".into()),
            nic: true,
            forwards: vec![Forward { port: 5201, relay: "'/a b/bounce' relay 127.0.0.1:5201".into() }],
            gpu: true,
            tools: Some("/c/tools.img".into()),
        };
        let a = s.args().join(" ");
        assert!(a.contains("-drive if=none,id=scratch,file=/r/scratch.img,format=raw,cache=none -device lsi53c810,id=scratchctl -device scsi-hd,bus=scratchctl.0,drive=scratch,serial=bounce-scratch"), "{a}");
        assert!(
            a.contains("-netdev user,id=net0,restrict=on,guestfwd=tcp:10.0.2.100:5201-cmd:'/a b/bounce' relay 127.0.0.1:5201 -device e1000,netdev=net0"),
            "{a}"
        );
        assert!(!a.contains("virtio-gpu"), "dma32 has no gpu slot: {a}");
        assert!(a.contains("-device virtio-blk-pci,drive=tools,serial=bounce-tools"), "{a}");
        assert!(!a.contains("drive=tools,serial=bounce-tools,iommu_platform"), "{a}");
    }

    /// The real-SEV command line cannot boot here; this is the exact line a
    /// host with SEV runs.
    #[test]
    fn a_real_sev_guest_gets_the_sev_object_ovmf_and_platform_virtio() {
        let mut s = spec("sev");
        s.accel = Accel::Kvm;
        s.sev = Some(SevHost { cbitpos: 51, reduced_phys_bits: 1 });
        s.attach = Attach {
            disk: Some("/r/s.img".into()),
            nic: true,
            forwards: Vec::new(),
            gpu: false,
            tools: Some("/c/t.img".into()),
        };
        s.append = "console=ttyS0 panic=-1".into();
        let a = s.args();
        let expected = [
            "-nodefaults",
            "-no-reboot",
            "-display",
            "none",
            "-machine",
            "q35,confidential-guest-support=sev0",
            "-accel",
            "kvm",
            "-cpu",
            "EPYC-v4",
            "-smp",
            "2",
            "-m",
            "2048M",
            "-object",
            "sev-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,policy=0x1",
            "-bios",
            "/usr/share/ovmf/OVMF.fd",
            "-kernel",
            "/k/image",
            "-initrd",
            "/k/initrd.cpio",
            "-append",
            "console=ttyS0 panic=-1",
            "-chardev",
            "socket,id=con,fd=3",
            "-serial",
            "chardev:con",
            "-chardev",
            "socket,id=res,fd=4",
            "-serial",
            "chardev:res",
            "-chardev",
            "socket,id=qmp,fd=5",
            "-mon",
            "chardev=qmp,mode=control",
            "-device",
            "pvpanic-pci",
            "-device",
            "edu",
            "-drive",
            "if=none,id=scratch,file=/r/s.img,format=raw,cache=none",
            "-device",
            "virtio-blk-pci,iommu_platform=on,disable-legacy=on,drive=scratch,serial=bounce-scratch",
            "-netdev",
            "user,id=net0,restrict=on",
            "-device",
            "virtio-net-pci,iommu_platform=on,disable-legacy=on,netdev=net0",
            "-drive",
            "if=none,id=tools,file=/c/t.img,format=raw,readonly=on",
            "-device",
            "virtio-blk-pci,drive=tools,serial=bounce-tools,iommu_platform=on,disable-legacy=on",
        ];
        assert_eq!(a, expected);
    }

    #[test]
    fn reproducer_quotes_the_command_line() {
        let r = spec("dma32").reproducer();
        assert!(r.starts_with("qemu-system-x86_64 -nodefaults -no-reboot -display none"), "{r}");
        assert!(r.contains("-append 'console=ttyS0 swiotlb=512,1'"), "{r}");
        assert!(
            r.contains(
                "-serial mon:stdio -chardev file,id=res,path=results.txt -serial chardev:res -device pvpanic-pci"
            ),
            "{r}"
        );
        assert!(!r.contains("fd=3"));
        let r = spec("arm64").reproducer();
        assert!(r.contains("-chardev file,id=res,path=results.txt -device pci-serial,chardev=res"), "{r}");
    }

    #[test]
    fn commas_in_paths_do_not_split_qemu_options() {
        assert_eq!(opt_value("/home/a,b/scratch.img"), "/home/a,,b/scratch.img");
        assert_eq!(opt_value("/plain"), "/plain");
    }
}
