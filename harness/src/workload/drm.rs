//! The DRM workload: frames pushed through virtio-gpu by bounce-drm and
//! compared pixel for pixel with QMP screendumps of three of them, and the
//! final framebuffer imported through PRIME by a second device (dmacheck),
//! which checks every byte it is given.
//!
//! pattern() must match workloads/src/bounce-drm.c.

use super::data_failure;
use crate::failure::{Failure, FailureClass, Result};
use crate::guest::channel::Transcript;
use std::collections::BTreeMap;
use std::path::Path;

/// A hash of the pixel's place and the frame: a displaced row, column or
/// frame never matches (a pattern with a period would match one shifted by
/// a multiple of it).
pub fn pattern(x: u32, y: u32, frame: u32) -> [u8; 3] {
    let mut h = x.wrapping_mul(0x9e37_79b1) ^ y.wrapping_mul(0x85eb_ca77) ^ frame.wrapping_mul(0xc2b2_ae3d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297a_2d39);
    h ^= h >> 15;
    [(h >> 16) as u8, (h >> 8) as u8, h as u8]
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

/// The import into a second device, the framebuffer after it, and each
/// screendump against its frame's pattern.
pub fn check(t: &Transcript, dir: &Path) -> Result<()> {
    let section = t.section("drm").ok_or_else(|| Failure::new(FailureClass::Workload, "no `drm` section"))?;
    // dmacheck names a failed segment in one line of its own.
    if let Some(line) = section.lines.iter().find(|l| l.starts_with("FAIL ")) {
        return Err(data_failure(format!("drm: PRIME import into a second device: {}", line.trim())));
    }
    let f = fields(t)?;
    let prime = f.get("prime").ok_or_else(|| {
        Failure::new(
            FailureClass::Workload,
            "bounce-drm printed no `prime` verdict (the import into dmacheck did not run)",
        )
    })?;
    let counts: BTreeMap<&str, u64> = prime
        .split_whitespace()
        .collect::<Vec<_>>()
        .chunks(2)
        .filter_map(|p| Some((p[0], p.get(1)?.parse().ok()?)))
        .collect();
    match (counts.get("bytes"), counts.get("failed")) {
        (Some(b), Some(0)) if *b > 0 => {}
        _ => return Err(data_failure(format!("drm: PRIME import into a second device: {prime}"))),
    }
    match f.get("after_import").map(String::as_str) {
        Some("ok") => {}
        other => {
            return Err(data_failure(format!(
                "drm: the framebuffer after the import was released: {}",
                other.unwrap_or("(not checked)")
            )))
        }
    }
    let (mw, mh) = f
        .get("mode")
        .and_then(|m| m.split_once('x'))
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .ok_or_else(|| Failure::new(FailureClass::Workload, "bounce-drm printed no mode"))?;
    let shots: Vec<u32> =
        f.get("screens").map(|v| v.split_whitespace().filter_map(|n| n.parse().ok()).collect()).unwrap_or_default();
    if shots.is_empty() {
        return Err(Failure::new(FailureClass::Workload, "bounce-drm printed no `screens` (no frame was dumped)"));
    }
    for frame in shots {
        let shot = dir.join(format!("frame-{frame}.ppm"));
        let data = std::fs::read(&shot)
            .map_err(|e| Failure::new(FailureClass::Workload, format!("no screendump {} ({e})", shot.display())))?;
        compare(&data, mw, mh, frame).map_err(|e| data_failure(format!("drm: {e} (screendump {})", shot.display())))?;
    }
    Ok(())
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
    fn a_missing_screendump_a_failed_import_or_a_changed_buffer_fails() {
        let d = tempfile::tempdir().unwrap();
        let t = |prime: &str, after: &str| {
            Transcript::parse(&format!(
                "@@bounce begin drm\n{prime}after_import: {after}\nmode: 64x48\nframes: 30\nflip: 3\nseconds: 2.0\n\
                 bytes_per_frame: 12288\nfinal: 31\nheld: 3\nscreens: 10 20 31\n@@bounce end drm rc=0\n"
            ))
        };
        let good = "prime: bytes 12288 segments 3 failed 0 bounced 3\n";
        assert_eq!(check(&t(good, "ok"), d.path()).unwrap_err().class, FailureClass::Workload);
        for f in [10, 20, 31] {
            std::fs::write(d.path().join(format!("frame-{f}.ppm")), ppm(64, 48, f)).unwrap();
        }
        assert!(check(&t(good, "ok"), d.path()).is_ok());
        let failed = "FAIL thread=0 prime dir=bidi size=4096 offset=8192: device side after the importer's map: \
                      byte 0 is 0x00, expected 0x5a\nprime: bytes 12288 segments 3 failed 1 bounced 3\n";
        let e = check(&t(failed, "ok"), d.path()).unwrap_err();
        assert_eq!(e.class, FailureClass::Correctness);
        assert!(
            e.message.contains("prime dir=bidi size=4096 offset=8192: device side after the importer's map"),
            "{}",
            e.message
        );
        assert_eq!(check(&t("", "ok"), d.path()).unwrap_err().class, FailureClass::Workload);
        let e = check(&t(good, "7 pixels differ from frame 31, first at (3,4)"), d.path()).unwrap_err();
        assert_eq!(e.class, FailureClass::Correctness);
        std::fs::write(d.path().join("frame-20.ppm"), ppm(64, 48, 21)).unwrap();
        assert_eq!(check(&t(good, "ok"), d.path()).unwrap_err().class, FailureClass::Correctness);
        let m = metrics(&t(good, "ok")).unwrap();
        assert_eq!(m["fps"], 15.0);
    }

    #[test]
    fn the_pattern_does_not_repeat_along_rows_columns_or_frames() {
        let p = pattern(5, 7, 9);
        assert_ne!(p, pattern(5 + 256, 7, 9));
        assert_ne!(p, pattern(5, 7 + 256, 9));
        assert_ne!(p, pattern(5, 7, 10));
        // bounce-drm.c's pattern(), compiled with gcc and printed.
        assert_eq!(pattern(1023, 767, 91), [0xe6, 0xad, 0x17]);
        assert_eq!(pattern(5, 7, 9), [0x01, 0x2f, 0xfc]);
    }
}
