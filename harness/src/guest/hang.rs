//! A guest that stopped making progress, named from the host: which
//! function its CPUs are in (QEMU's registers, resolved with the kernel's
//! System.map), which works with the guest's interrupts off and on every
//! architecture. Without this a kernel spinning on its only CPU ends at
//! the workload's timeout, minutes later, saying only which line the
//! console printed last. (An NMI through QMP's inject-nmi, for the
//! kernel's own backtrace, was tried on x86 with unknown_nmi_panic: QMP
//! accepted it and the spinning guest printed nothing.)

use super::qmp::Qmp;
use regex::Regex;
use std::path::Path;
use std::time::Duration;

/// How long a running guest may print nothing on its console or result
/// channel (its /init prints a heartbeat every 5 s) before the harness
/// looks; `BOUNCE_HANG_S` overrides.
pub fn quiet_limit() -> Duration {
    let s = std::env::var("BOUNCE_HANG_S").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    Duration::from_secs(s)
}

/// The heartbeat line /init writes to the console while a workload runs.
pub const HEARTBEAT: &str = "@@bounce alive";

/// The program counter in HMP's `info registers` (x86 `RIP=`, arm64 `PC=`).
pub fn program_counter(registers: &str) -> Option<u64> {
    let re = Regex::new(r"\b(?:RIP|PC)=([0-9a-fA-F]{8,16})\b").ok()?;
    u64::from_str_radix(re.captures(registers)?.get(1)?.as_str(), 16).ok()
}

/// A kernel's text symbols, by address.
pub struct Symbols(Vec<(u64, String)>);

impl Symbols {
    pub fn parse(system_map: &str) -> Symbols {
        let mut v: Vec<(u64, String)> = system_map
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let addr = u64::from_str_radix(w.next()?, 16).ok()?;
                let kind = w.next()?;
                let name = w.next()?;
                matches!(kind, "t" | "T" | "w" | "W").then(|| (addr, name.to_string()))
            })
            .collect();
        v.sort();
        Symbols(v)
    }

    pub fn load(path: &Path) -> Symbols {
        Symbols::parse(&std::fs::read_to_string(path).unwrap_or_default())
    }

    /// `name+0xoffset` of the function holding `pc`.
    pub fn resolve(&self, pc: u64) -> Option<String> {
        let i = self.0.partition_point(|(a, _)| *a <= pc).checked_sub(1)?;
        let (addr, name) = &self.0[i];
        Some(format!("{name}+{:#x}", pc - addr))
    }
}

/// Where the guest's CPUs are: a few samples of each vCPU's program
/// counter, as functions, most seen first (a spinning CPU calls helpers,
/// so one sample could name a helper alone).
pub async fn locate(qmp: &Qmp, vcpus: u32, symbols: &Symbols) -> Vec<String> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for _ in 0..5 {
        for cpu in 0..vcpus {
            let cmd =
                qapi::qmp::human_monitor_command { command_line: "info registers".into(), cpu_index: Some(cpu as i64) };
            let Ok(text) = qmp.execute(&cmd, Duration::from_secs(5)).await else { continue };
            let Some(f) = program_counter(&text).and_then(|pc| symbols.resolve(pc)) else { continue };
            let func = f.split('+').next().unwrap_or(&f).to_string();
            match seen.iter_mut().find(|(n, _)| *n == func) {
                Some((_, c)) => *c += 1,
                None => seen.push((func, 1)),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen.sort_by_key(|s| std::cmp::Reverse(s.1));
    seen.into_iter().map(|(n, _)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_resolve_to_the_function_that_holds_them() {
        let map = "ffffffff81000000 T _stext\nffffffff81234500 t bounce_spin_forever\nffffffff81234580 T swiotlb_map\nffffffff81400000 D some_data\n";
        let s = Symbols::parse(map);
        // What QEMU 7.2's `info registers` prints on x86_64 and arm64.
        let x86 = "RAX=0000000000000000 RBX=ffff888003c1e000\nRIP=ffffffff81234512 RFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0\n";
        assert_eq!(s.resolve(program_counter(x86).unwrap()).unwrap(), "bounce_spin_forever+0x12");
        let arm = " PC=ffffffff81234584 X00=0000000000000000 X01=0000000000000001\n";
        assert_eq!(s.resolve(program_counter(arm).unwrap()).unwrap(), "swiotlb_map+0x4");
        assert_eq!(s.resolve(0x1000), None);
        assert_eq!(program_counter("no registers here"), None);
    }
}
