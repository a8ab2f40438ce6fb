//! The DRM workload: frames pushed through virtio-gpu by bounce-drm, and
//! the last one compared pixel for pixel with a QMP screendump.
//!
//! pattern() must match workloads/src/bounce-drm.c.

use super::data_failure;
use crate::failure::{Failure, FailureClass, Result};
use crate::guest::channel::Transcript;
use std::collections::BTreeMap;
use std::path::Path;

pub fn pattern(x: u32, y: u32, frame: u32) -> [u8; 3] {
    let r = (x.wrapping_add(frame)) & 0xff;
    let g = (y.wrapping_add(2 * frame)) & 0xff;
    let b = ((x ^ y).wrapping_add(3 * frame)) & 0xff;
    [r as u8, g as u8, b as u8]
}

fn fields(t: &Transcript) -> Result<BTreeMap<String, String>> {
    let s = t.section("drm").ok_or_else(|| Failure::new(FailureClass::Workload, "no `drm` section"))?;
    Ok(s.lines.iter().filter_map(|l| l.split_once(": ").map(|(k, v)| (k.to_string(), v.trim().to_string()))).collect())
}

fn num(f: &BTreeMap<String, String>, k: &str) -> Result<f64> {
    f.get(k).and_then(|v| v.parse().ok()).ok_or_else(|| {
        Failure::new(FailureClass::Workload, format!("bounce-drm printed no `{k}` (see the drm section)"))
    })
}

pub fn metrics(t: &Transcript) -> Result<BTreeMap<String, f64>> {
    let f = fields(t)?;
    let (frames, secs, bpf) = (num(&f, "frames")?, num(&f, "seconds")?, num(&f, "bytes_per_frame")?);
    let mut m = BTreeMap::new();
    if let Ok(held) = num(&f, "held") {
        m.insert("buffers_held".to_string(), held);
    }
    if secs > 0.0 {
        m.insert("fps".to_string(), frames / secs);
        m.insert("mb_s".to_string(), frames * bpf / secs / 1e6);
    }
    Ok(m)
}

/// A binary PPM (P6, maxval 255), as QEMU's screendump writes it.
pub fn read_ppm(data: &[u8]) -> Option<(u32, u32, &[u8])> {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while i < data.len() && data[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < data.len() && !data[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(std::str::from_utf8(&data[start..i]).ok()?);
    }
    i += 1;
    let (w, h): (u32, u32) = (fields[1].parse().ok()?, fields[2].parse().ok()?);
    if fields[0] != "P6" || fields[3] != "255" || data.len() < i + (w * h * 3) as usize {
        return None;
    }
    Some((w, h, &data[i..i + (w * h * 3) as usize]))
}

/// The screendump against the pattern of the final frame, and PRIME.
pub fn check(t: &Transcript, dir: &Path) -> Result<()> {
    let f = fields(t)?;
    if f.get("prime").map(String::as_str) != Some("ok") {
        return Err(data_failure(format!(
            "drm: PRIME round trip failed: {}",
            f.get("prime").map(String::as_str).unwrap_or("(not run)")
        )));
    }
    let final_frame = num(&f, "final")? as u32;
    let (mw, mh) = f
        .get("mode")
        .and_then(|m| m.split_once('x'))
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .ok_or_else(|| Failure::new(FailureClass::Workload, "bounce-drm printed no mode"))?;
    let shot = dir.join("final.ppm");
    let data = std::fs::read(&shot).map_err(|e| {
        Failure::new(
            FailureClass::Workload,
            format!(
                "no screendump {} ({e}): {}",
                shot.display(),
                f.get("screendump").map(String::as_str).unwrap_or("the guest never asked")
            ),
        )
    })?;
    compare(&data, mw, mh, final_frame).map_err(|e| data_failure(format!("drm: {e} (screendump {})", shot.display())))
}

/// Every pixel of `ppm` against the pattern: the first wrong one and how
/// many there are.
pub fn compare(ppm: &[u8], w: u32, h: u32, frame: u32) -> std::result::Result<(), String> {
    let (pw, ph, px) = read_ppm(ppm).ok_or("the screendump is not a P6 PPM")?;
    if (pw, ph) != (w, h) {
        return Err(format!("the screen is {pw}x{ph}, the mode was {w}x{h}"));
    }
    let mut bad = 0u64;
    let mut first = None;
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 3) as usize;
            let want = pattern(x, y, frame);
            if px[i..i + 3] != want {
                bad += 1;
                first.get_or_insert((x, y, [px[i], px[i + 1], px[i + 2]], want));
            }
        }
    }
    match first {
        None => Ok(()),
        Some((x, y, got, want)) => Err(format!(
            "{bad} of {} pixels differ from frame {frame}'s pattern; first at ({x},{y}): got {got:?}, want {want:?}",
            w * h
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ppm(w: u32, h: u32, frame: u32) -> Vec<u8> {
        let mut v = format!("P6\n{w} {h}\n255\n").into_bytes();
        for y in 0..h {
            for x in 0..w {
                v.extend(pattern(x, y, frame));
            }
        }
        v
    }

    #[test]
    fn the_expected_frame_passes_and_one_wrong_pixel_fails() {
        let good = ppm(64, 48, 31);
        assert_eq!(compare(&good, 64, 48, 31), Ok(()));
        let mut bad = good.clone();
        let at = good.len() - 3 * (64 * 10 + 5); // some pixel near the end
        bad[at] ^= 1;
        let e = compare(&bad, 64, 48, 31).unwrap_err();
        assert!(e.starts_with("1 of 3072 pixels differ from frame 31's pattern; first at ("), "{e}");
        assert!(compare(&good, 64, 48, 30).is_err());
        assert_eq!(compare(&good, 640, 480, 31).unwrap_err(), "the screen is 64x48, the mode was 640x480");
    }

    #[test]
    fn a_missing_screendump_or_bad_prime_fails() {
        let d = tempfile::tempdir().unwrap();
        let t = |prime: &str| {
            Transcript::parse(&format!("@@bounce begin drm\nmode: 64x48\nframes: 30\nseconds: 2.0\nbytes_per_frame: 12288\nprime: {prime}\nfinal: 31\n@@bounce end drm rc=0\n"))
        };
        assert_eq!(check(&t("ok"), d.path()).unwrap_err().class, FailureClass::Workload);
        std::fs::write(d.path().join("final.ppm"), ppm(64, 48, 31)).unwrap();
        assert!(check(&t("ok"), d.path()).is_ok());
        assert_eq!(check(&t("handle differs"), d.path()).unwrap_err().class, FailureClass::Correctness);
        let m = metrics(&t("ok")).unwrap();
        assert_eq!(m["fps"], 15.0);
    }
}
