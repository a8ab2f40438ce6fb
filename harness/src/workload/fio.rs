//! The storage workload: fio's JSON, one job per pattern and block size,
//! each writing with crc32c verification and reading back what it wrote.

use super::data_failure;
use crate::failure::{Failure, FailureClass, Result};
use crate::guest::channel::Transcript;
use serde_json::Value;
use std::collections::BTreeMap;

/// (job, JSON) for every job the guest ran.
fn jobs(t: &Transcript) -> Result<Vec<(String, Value)>> {
    // The guest gave up on a job that made no progress (lib.sh `guarded`).
    for (name, s) in &t.sections {
        if let Some(line) = s.lines.iter().find_map(|l| l.strip_prefix("bounce-stalled: ")) {
            return Err(Failure::new(
                FailureClass::Workload,
                format!(
                    "storage: {} stalled, I/O never completed ({line}; see section {name}, and the swiotlb counters at the end)",
                    name.strip_prefix("fio-").unwrap_or(name)
                ),
            ));
        }
    }
    let mut out = Vec::new();
    for (name, s) in &t.sections {
        let Some(job) = name.strip_prefix("fio-").and_then(|n| n.strip_suffix("-json")) else { continue };
        // fio writes its notices into the output file ahead of the JSON
        // (with several jobs: "multiple writers may overwrite blocks ...",
        // which offset_increment rules out here).
        let start = s.lines.iter().position(|l| l.starts_with('{')).unwrap_or(0);
        let text = s.lines[start..].join("\n");
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            Failure::new(
                FailureClass::Workload,
                format!("fio job {job}: its JSON does not parse ({e}); see section {name}"),
            )
        })?;
        out.push((job.to_string(), v));
    }
    if out.is_empty() {
        return Err(Failure::new(FailureClass::Workload, "the guest ran no fio job (no fio-*-json section)"));
    }
    Ok(out)
}

pub fn metrics(t: &Transcript) -> Result<BTreeMap<String, f64>> {
    let mut m = BTreeMap::new();
    let mut log_bw = Vec::new();
    for (job, v) in jobs(t)? {
        let j = &v["jobs"][0];
        for dir in ["write", "read"] {
            let d = &j[dir];
            if d["io_bytes"].as_u64().unwrap_or(0) == 0 {
                continue;
            }
            let num = |k: &Value| k.as_f64();
            if let Some(bw) = num(&d["bw"]) {
                m.insert(format!("{dir}_bw.{job}"), bw);
                if bw > 0.0 {
                    log_bw.push(bw.ln());
                }
            }
            if let Some(iops) = num(&d["iops"]) {
                m.insert(format!("{dir}_iops.{job}"), iops);
            }
            let pct = &d["clat_ns"]["percentile"];
            for (p, key) in [("50.000000", "p50"), ("99.000000", "p99")] {
                if let Some(ns) = num(&pct[p]) {
                    m.insert(format!("{dir}_clat_{key}_us.{job}"), ns / 1000.0);
                }
            }
        }
    }
    // One headline per boot: the geometric mean of every job's bandwidth
    // (as SPEC scores do), so each job's own wobble averages out and no
    // block size outweighs another.
    if !log_bw.is_empty() {
        m.insert("bw_geomean".into(), (log_bw.iter().sum::<f64>() / log_bw.len() as f64).exp());
    }
    Ok(m)
}

/// Zero verify errors and zero I/O errors, job by job.
pub fn check(t: &Transcript) -> Result<()> {
    for (job, v) in jobs(t)? {
        let run = t.section(&format!("fio-{job}"));
        if let Some(line) = run.and_then(|s| {
            s.lines
                .iter()
                .find(|l| l.contains("verify") && (l.contains("bad") || l.contains("mismatch") || l.contains("failed")))
        }) {
            return Err(data_failure(format!("storage: fio job {job} found corrupted data: {}", line.trim())));
        }
        let err = v["jobs"][0]["error"].as_i64().unwrap_or(0);
        if err != 0 {
            return Err(data_failure(format!(
                "storage: fio job {job} ended with error {err} ({}): an I/O or verify error",
                std::io::Error::from_raw_os_error(err as i32)
            )));
        }
        if let Some(rc) = run.and_then(|s| s.rc).filter(|rc| *rc != 0) {
            return Err(Failure::new(FailureClass::Workload, format!("storage: fio job {job} exited with rc={rc}")));
        }
    }
    Ok(())
}

/// The host's own read of the scratch disk: the seeded pattern the guest
/// wrote last (`disk-pattern`, bounce-stream's generator) must be on the
/// image byte for byte. fio's read-back goes through the kernel under
/// test; this does not, so a write the read path undoes fails here. A
/// variant of the workload that writes no pattern is not checked.
pub fn check_disk(t: &Transcript, image: &std::path::Path, seed: u64, bytes: u64) -> Result<()> {
    use std::io::Read;
    let Some(s) = t.section("disk-pattern") else { return Ok(()) };
    if let Some(rc) = s.rc.filter(|rc| *rc != 0) {
        let why = s.lines.last().map(|l| format!(": {l}")).unwrap_or_default();
        return Err(Failure::new(
            FailureClass::Workload,
            format!("storage: writing the disk pattern failed, rc={rc}{why}"),
        ));
    }
    let file = std::fs::File::open(image)
        .map_err(|e| Failure::infra(format!("cannot read the scratch disk {}: {e}", image.display())))?;
    let mut disk = std::io::BufReader::with_capacity(1 << 20, file).take(bytes);
    let mut prng = super::stream::Prng::new(seed);
    let (mut got, mut want) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut at = 0u64;
    loop {
        let n = disk.read(&mut got).map_err(|e| Failure::infra(format!("cannot read {}: {e}", image.display())))?;
        if n == 0 {
            break;
        }
        prng.fill(&mut want[..n]);
        if let Some(i) = got[..n].iter().zip(&want[..n]).position(|(g, w)| g != w) {
            return Err(data_failure(format!(
                "storage: the host read the scratch disk after the guest: byte {} is {:#04x}, expected {:#04x} (the write path changed it; fio's read-back through the same kernel did not see it)",
                at + i as u64,
                got[i],
                want[i]
            )));
        }
        at += n as u64;
    }
    if at < bytes {
        return Err(data_failure(format!(
            "storage: the scratch disk holds {at} of the {bytes} pattern bytes the guest wrote"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(job_err: i64, stderr: &str) -> Transcript {
        let json = format!(
            r#"{{"fio version":"fio-3.33","jobs":[{{"jobname":"seq-4k","error":{job_err},"read":{{"io_bytes":4194304,"bw":5120,"iops":1280.5,"clat_ns":{{"percentile":{{"50.000000":700000,"99.000000":2400000}}}}}},"write":{{"io_bytes":4194304,"bw":2048,"iops":512.0,"clat_ns":{{"percentile":{{"50.000000":1500000,"99.000000":9000000}}}}}}}}]}}"#
        );
        Transcript::parse(&format!(
            "@@bounce begin fio-seq-4k\n{stderr}@@bounce end fio-seq-4k rc=0\n@@bounce begin fio-seq-4k-json\n{json}\n@@bounce end fio-seq-4k-json rc=0\n"
        ))
    }

    #[test]
    fn bandwidth_iops_and_latency_percentiles_per_direction() {
        let m = metrics(&transcript(0, "")).unwrap();
        assert_eq!(m["write_bw.seq-4k"], 2048.0);
        assert_eq!(m["read_iops.seq-4k"], 1280.5);
        assert_eq!(m["write_clat_p50_us.seq-4k"], 1500.0);
        assert_eq!(m["read_clat_p99_us.seq-4k"], 2400.0);
        assert!(check(&transcript(0, "")).is_ok());
        // Several jobs at once: fio's notice ahead of its JSON (measured).
        let noted = transcript(0, "").sections["fio-seq-4k-json"].lines.clone();
        let mut lines = vec!["fio: multiple writers may overwrite blocks that belong to other jobs. This can cause verification failures.".to_string()];
        lines.extend(noted);
        let t = Transcript::parse(&format!(
            "@@bounce begin fio-seq-4k-json\n{}\n@@bounce end fio-seq-4k-json rc=0\n",
            lines.join("\n")
        ));
        assert_eq!(metrics(&t).unwrap()["write_bw.seq-4k"], 2048.0);
    }

    #[test]
    fn the_host_finds_a_byte_the_write_path_changed_on_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("scratch.img");
        let mut data = vec![0u8; 300_000];
        crate::workload::stream::Prng::new(7).fill(&mut data);
        std::fs::write(&img, &data).unwrap();
        let t =
            Transcript::parse("@@bounce begin disk-pattern\nresult: written 300000\n@@bounce end disk-pattern rc=0\n");
        assert!(check_disk(&t, &img, 7, 300_000).is_ok());
        data[200_001] ^= 0x10;
        std::fs::write(&img, &data).unwrap();
        let e = check_disk(&t, &img, 7, 300_000).unwrap_err();
        assert_eq!(e.class, FailureClass::Correctness);
        assert!(e.message.contains("byte 200001 is "), "{}", e.message);
        // Another seed is another pattern; a short disk is short.
        assert!(check_disk(&t, &img, 8, 300_000).is_err());
        std::fs::write(&img, &data[..1000]).unwrap();
        assert!(check_disk(&t, &img, 7, 1000).is_ok());
        assert!(check_disk(&t, &img, 7, 300_000).unwrap_err().message.contains("holds 1000 of the 300000"));
        // No pattern written (a variant of the workload): nothing to check.
        assert!(check_disk(&Transcript::default(), &img, 7, 300_000).is_ok());
    }

    #[test]
    fn a_verify_error_fails_the_cell() {
        // What fio 3.33 prints when a block reads back wrong.
        let t = transcript(84, "verify: bad header rand_seed 46386204153304124, wanted 9852480210356360750 at file /dev/sda offset 1048576, length 4096 (requested block: offset=1048576, length=4096)\n");
        let e = check(&t).unwrap_err();
        assert_eq!(e.class, FailureClass::Correctness);
        assert!(e.message.contains("verify: bad header"), "{}", e.message);
        let e = check(&transcript(5, "")).unwrap_err();
        assert!(e.message.contains("ended with error 5"), "{}", e.message);
    }

    #[test]
    fn a_stalled_job_is_a_workload_failure_that_says_so() {
        let t = Transcript::parse(
            "@@bounce begin fio-seq-4k\nbounce-stalled: /tools/bin/fio completed no I/O for 20 s (/sys/class/block/vda/stat)\n@@bounce end fio-seq-4k rc=124\n",
        );
        for e in [check(&t).unwrap_err(), metrics(&t).unwrap_err()] {
            assert_eq!(e.class, FailureClass::Workload);
            assert!(
                e.message.starts_with(
                    "storage: seq-4k stalled, I/O never completed (/tools/bin/fio completed no I/O for 20 s"
                ),
                "{}",
                e.message
            );
        }
    }
}
