//! Measurements of the harness itself, reported as ratios measured in one
//! run (never asserted in tests: timings belong here).
//!
//! `bounce bench build`: for each architecture, the cold build time of a
//! variant (measured when its cache entry was built from an empty build
//! directory), the time to find it again when nothing changed (the "no-op
//! rebuild"), and the time to rebuild after a one-line patch to
//! kernel/dma/swiotlb.c, which must reuse the warm build directory.

use crate::failure::{Classify, Failure, Result};
use crate::kernel::series::{PatchableTree, Series, SeriesSource};
use crate::kernel::variant::Variant;
use crate::kernel::{self, cache};
use comfy_table::{presets, Table};
use std::path::Path;
use std::time::Instant;

const NOOP_RUNS: usize = 5;

pub async fn build(root: &Path, cache_dir: &Path, variant: &str, arches: &[String]) -> Result<i32> {
    let v = Variant::load(root, variant)?;
    let arches = if arches.is_empty() { v.arches.clone() } else { arches.to_vec() };
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "arch",
        "cold build",
        "objects",
        "no-op (median of 5)",
        "one-line patch",
        "patch / cold",
        "targets",
    ]);
    for arch in &arches {
        let base = kernel::ensure(root, cache_dir, &v, arch).await?;
        let cold = if base.meta.incremental {
            return Err(Failure::input(format!(
                "{variant} ({arch}) was built incrementally ({}): its time is no cold build; run `bounce cache gc --older-than-days 0` and measure again",
                base.dir.display()
            )));
        } else {
            base.meta.duration_s
        };
        let mut noop = Vec::new();
        for _ in 0..NOOP_RUNS {
            let t0 = Instant::now();
            kernel::ensure(root, cache_dir, &v, arch).await?;
            noop.push(t0.elapsed().as_secs_f64());
        }
        let noop = crate::stats::median(&noop).unwrap_or(f64::NAN);

        let tree = crate::kernel::source::prepare(cache_dir, &v.source)?;
        let patch = one_line_patch(&PatchableTree::new(&tree.path).pristine("kernel/dma/swiotlb.c")?)?;
        let dir = tempfile::tempdir().infra(|| "cannot create a temporary directory".into())?;
        let file = dir.path().join("bench-one-line.patch");
        std::fs::write(&file, patch).infra(|| format!("cannot write {}", file.display()))?;
        let series = Series::load(&SeriesSource::Path(file))?;
        let t0 = Instant::now();
        let patched = kernel::ensure(root, cache_dir, &v.with_series(&series, None), arch).await?;
        let patch_s = t0.elapsed().as_secs_f64();
        // A nonce makes every bench patch new: its entry is of no further use.
        let _ = std::fs::remove_dir_all(cache::entry_dir(cache_dir, &patched.meta.key));
        let ratio = patch_s / cold;
        t.add_row(vec![
            arch.clone(),
            format!("{cold:.0} s"),
            base.meta.objects.to_string(),
            format!("{noop:.2} s"),
            format!("{patch_s:.0} s{}", if patched.meta.incremental { "" } else { " (NOT incremental)" }),
            format!("{:.1} %", ratio * 100.0),
            format!(
                "no-op < 2 s: {}; patch < 25 % of cold: {}",
                if noop < 2.0 { "met" } else { "MISSED" },
                if ratio < 0.25 { "met" } else { "MISSED" }
            ),
        ]);
    }
    crate::outln!(
        "kernel builds of {variant} on this machine ({} cores)\n{t}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    Ok(0)
}

/// A patch that adds one pr_info to swiotlb_print_info(), with a nonce so
/// it is never in the cache.
pub fn one_line_patch(swiotlb_c: &str) -> Result<String> {
    let lines: Vec<&str> = swiotlb_c.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("\tpr_info(\"mapped [mem"))
        .filter(|&i| i >= 3 && i + 3 <= lines.len())
        .ok_or_else(|| Failure::input("kernel/dma/swiotlb.c has no `pr_info(\"mapped [mem` line to patch beside"))?;
    let nonce = format!(
        "{:x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
    );
    let mut p = format!(
        "From: bounce bench <bench@bounce.invalid>\nSubject: [PATCH] swiotlb: one-line change for the build benchmark\n\n---\ndiff --git a/kernel/dma/swiotlb.c b/kernel/dma/swiotlb.c\n--- a/kernel/dma/swiotlb.c\n+++ b/kernel/dma/swiotlb.c\n@@ -{},6 +{},7 @@\n",
        at - 2,
        at - 2
    );
    for l in &lines[at - 3..at] {
        p.push_str(&format!(" {l}\n"));
    }
    p.push_str(&format!("+\tpr_info(\"bounce bench {nonce}\\n\");\n"));
    for l in &lines[at..at + 3] {
        p.push_str(&format!(" {l}\n"));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_one_line_patch_is_a_valid_hunk() {
        let src =
            "a\nb\nc\nd\n\tpr_info(\"mapped [mem %pa-%pa] (%luMB)\\n\", &mem->start, &mem->end,\n\t       x);\n}\n";
        let p = super::one_line_patch(src).unwrap();
        assert!(p.contains("@@ -2,6 +2,7 @@\n b\n c\n d\n+\tpr_info(\"bounce bench "), "{p}");
        assert!(super::one_line_patch("int x;\n").is_err());
    }
}
