//! A run split over machines and every report read back by its real
//! consumer. Shards boot each planned boot exactly once and merge into a
//! run that reports as the unsharded run does on the same samples; the
//! merged run's text, JUnit, KCIDB, JSON and HTML go through a mail-width
//! check, junitparser, kcidb-io's validator, jsonschema and headless
//! Chromium.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The base kernel and the seeded slowdown on top, dmabench cut short:
/// a gated comparison in two boots a kernel.
fn matrix() -> String {
    format!(
        r#"
repetitions: 2
kernels: [6.12-dynamic]
series:
  - {{path: {}}}
profiles: [sev-emulated]
workloads: [dmabench]
params:
  dmabench: {{sweep_threads: [1], sweep_granules: [1], sweep_dirs: [to]}}
swiotlb:
  default: ""
"#,
        root().join("kernels/patches/defect-slow.mbox").display()
    )
}

fn run(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let o = bounce().args(args).output().unwrap();
    let (out, err) = text(&o);
    (o.status.code(), out, err)
}

/// The one run directory under `results`.
fn only_run(results: &Path) -> PathBuf {
    let runs: Vec<PathBuf> = std::fs::read_dir(results.join("runs")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn boots(run: &Path) -> BTreeSet<(String, u64)> {
    json(&run.join("plan.json"))["boots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["cell"].to_string(), b["rep"].as_u64().unwrap()))
        .collect()
}

/// `run` cut to the boots of `shard`'s plan, as that shard would have
/// stored them had it measured these very samples.
fn cut(run: &Path, shard: &Path, to: &Path) {
    copy_dir(run, to);
    std::fs::copy(shard.join("plan.json"), to.join("plan.json")).unwrap();
    std::fs::copy(shard.join("env.json"), to.join("env.json")).unwrap();
    let mine = json(&shard.join("plan.json"))["boots"].as_array().unwrap().clone();
    for e in std::fs::read_dir(to.join("cells")).unwrap().flatten() {
        let mut cell = json(&e.path());
        let keep = |rep: &Value| mine.iter().any(|b| b["cell"] == cell["key"] && b["rep"] == *rep);
        let reps: Vec<Value> = cell["reps"].as_array().unwrap().iter().filter(|r| keep(&r["rep"])).cloned().collect();
        if reps.is_empty() {
            std::fs::remove_file(e.path()).unwrap();
            continue;
        }
        let mut metrics = cell["metrics"].as_object().unwrap().clone();
        for m in metrics.values_mut() {
            let s: Vec<Value> = m["samples"].as_array().unwrap().iter().filter(|s| keep(&s["rep"])).cloned().collect();
            m["samples"] = Value::Array(s);
        }
        cell["reps"] = Value::Array(reps);
        cell["metrics"] = Value::Object(metrics);
        std::fs::write(e.path(), serde_json::to_string_pretty(&cell).unwrap()).unwrap();
    }
}

/// A report without what differs between two runs of the same samples:
/// their names and paths (and so where a line wraps), and which machines
/// ran which shard.
fn normalised(report: &str, names: &[(&Path, &Path)]) -> String {
    let mut r = report.replace("\n    ", " ");
    for (a, b) in names {
        r = r.replace(&a.display().to_string(), "RUN").replace(&*b.file_name().unwrap().to_string_lossy(), "RUN");
        r = r.replace(&*a.file_name().unwrap().to_string_lossy(), "RUN");
    }
    r.lines().filter(|l| !l.starts_with("shard ")).collect::<Vec<_>>().join("\n")
}

fn report(dir: &Path, format: &str) -> (Option<i32>, String) {
    let (code, out, err) = run(&["report".as_ref(), dir.as_os_str(), "--format".as_ref(), format.as_ref()]);
    assert!(err.is_empty() || code.is_some(), "{err}");
    (code, out)
}

#[test]
fn shards_merge_into_the_unsharded_report_and_every_format_reads_back() {
    let _lock = heavy_lock();
    build_x86_64_first("6.12-dynamic", None);
    let (dir, file, _) = matrix_dir(&matrix());
    let results = |n: &str| dir.path().join(n);
    let matrix_run = |extra: &[&str], out: &str| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["matrix".as_ref(), "--matrix".as_ref(), file.as_os_str()];
        let r = results(out);
        args.extend(["--results".as_ref(), r.as_os_str()]);
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let (code, o, e) = run(&args);
        assert_eq!(code, Some(0), "{o}\n{e}");
        (only_run(&r), e)
    };
    let (whole, _) = matrix_run(&["--seed", "5"], "whole");
    let (s1, e1) = matrix_run(&["--seed", "6", "--shard", "1/2"], "s1");
    let (s2, _) = matrix_run(&["--seed", "7", "--shard", "2/2"], "s2");
    assert!(e1.contains("shard 1/2: 2 of 4 boots"), "{e1}");

    // Every planned boot in exactly one shard; a kernel pair on one machine.
    let (b1, b2, all) = (boots(&s1), boots(&s2), boots(&whole));
    assert!(b1.is_disjoint(&b2), "{b1:?} {b2:?}");
    assert_eq!(b1.union(&b2).cloned().collect::<BTreeSet<_>>(), all);
    for b in [&b1, &b2] {
        assert_eq!(
            b.iter().map(|(_, rep)| rep).collect::<BTreeSet<_>>().len(),
            1,
            "one repetition, both kernels: {b:?}"
        );
    }

    // Merging wants every shard once, and shards only.
    let merge = |runs: &[&Path], into: &Path| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["results".as_ref(), "merge".as_ref()];
        args.extend(runs.iter().map(|r| r.as_os_str()));
        args.extend(["--into".as_ref(), into.as_os_str()]);
        run(&args)
    };
    let nowhere = results("nowhere");
    for (runs, says) in [
        (vec![s1.as_path()], "shards 2/2 missing"),
        (vec![s1.as_path(), s1.as_path()], "shard 1/2 given twice"),
        (vec![whole.as_path(), s1.as_path()], "not a shard"),
    ] {
        let (code, out, err) = merge(&runs, &nowhere);
        assert_eq!(code, Some(2), "{runs:?}: {out}\n{err}");
        assert!(err.contains(says) && err.lines().count() == 1, "{says}: {err}");
        assert!(!nowhere.exists());
    }
    let merged = results("merged");
    let (code, out, err) = merge(&[&s2, &s1], &merged);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(boots(&merged), all);
    assert_eq!(json(&merged.join("plan.json"))["state"], "complete");
    let cell = json(&merged.join("cells/6.12-dynamic+defect-slow.sev-emulated.dmabench.default.json"));
    let reps: Vec<u64> = cell["reps"].as_array().unwrap().iter().map(|r| r["rep"].as_u64().unwrap()).collect();
    assert_eq!(reps, [0, 1]);
    for r in cell["reps"].as_array().unwrap() {
        assert!(merged.join(r["guest_dir"].as_str().unwrap()).join("console.log").is_file(), "guest logs come along");
    }

    // The same samples, sharded or not, report the same.
    let (u1, u2, um) = (results("u1"), results("u2"), results("u-merged"));
    cut(&whole, &s1, &u1);
    cut(&whole, &s2, &u2);
    let (code, out, err) = merge(&[&u1, &u2], &um);
    assert_eq!(code, Some(0), "{out}\n{err}");
    for format in ["text", "markdown"] {
        let (a, b) = (report(&whole, format).1, report(&um, format).1);
        assert_eq!(normalised(&a, &[(&whole, &um)]), normalised(&b, &[(&um, &whole)]), "{format}");
    }

    // Text: a mail reply's width, ASCII only.
    let (code, mail) = report(&merged, "text");
    assert_eq!(code, Some(0));
    for l in mail.lines() {
        assert!(l.len() <= 80 && l.is_ascii(), "{l}");
    }
    assert!(mail.lines().any(|l| l.starts_with("shard 2/2: run ")), "the shards' provenance:\n{mail}");

    // Markdown, through a CommonMark parser with GitHub's tables: the
    // summary stays preformatted, every table is a table.
    let md = dir.path().join("report.md");
    std::fs::write(&md, report(&merged, "markdown").1).unwrap();
    const MARKDOWN: &str = r#"
import sys
from markdown_it import MarkdownIt
html = MarkdownIt("commonmark").enable("table").render(open(sys.argv[1]).read())
print("first", html.split("\n")[0][:30])
print("pre", html[html.index("<pre>"):][:30])
print("tables", html.count("<table>"))
"#;
    let o =
        std::process::Command::new(python_with("markdown-it-py")).arg("-c").arg(MARKDOWN).arg(&md).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // The run's title leads (its conclusion follows in prose), then the
    // summary, preformatted; the decided rows, the comparison and the
    // cells are tables.
    assert!(out.contains("first <h2>bounce run "), "the title leads:\n{out}");
    assert!(out.contains("pre <pre><code>bounce run "), "the summary, preformatted:\n{out}");
    let tables: usize = out.lines().find_map(|l| l.strip_prefix("tables ")).unwrap().parse().unwrap();
    assert!(tables >= 2, "the comparison and the cells as tables:\n{out}");

    // JUnit, through junitparser: a case per cell, one per gated row.
    let xml = dir.path().join("junit.xml");
    std::fs::write(&xml, report(&merged, "junit").1).unwrap();
    let cases = junit_cases(&xml);
    assert_eq!(cases.iter().filter(|c| c.starts_with("correctness ")).count(), 2, "{cases:#?}");
    assert!(cases.iter().any(|c| c.starts_with("regression ") && c.contains("dmabench.map_us")), "{cases:#?}");

    // KCIDB v5, through kcidb-io's own validator, with every link resolved.
    let kcidb = dir.path().join("kcidb.json");
    std::fs::write(&kcidb, report(&merged, "kcidb").1).unwrap();
    const KCIDB: &str = r#"
import json, sys, kcidb_io
data = json.load(open(sys.argv[1]))
kcidb_io.schema.V5_3.validate_exactly(data)
checkouts = {c["id"]: c for c in data["checkouts"]}
builds = {b["id"]: b for b in data["builds"]}
assert all(b["checkout_id"] in checkouts for b in builds.values())
assert all(t["build_id"] in builds for t in data["tests"])
hashes = sorted(c["patchset_hash"] for c in checkouts.values())
print("patchsets", len(hashes[0]), len(hashes[1]), "same" if hashes[0] == hashes[1] else "differ")
for t in data["tests"]:
    if t["path"].startswith("swiotlb.gate."):
        print("gate", t["path"], t["status"], t["number"]["unit"], builds[t["build_id"]]["config_name"])
    elif t["path"] == "swiotlb.dmabench.sev-emulated.default":
        print("cell", t["status"], builds[t["build_id"]]["config_name"])
"#;
    let o = std::process::Command::new(python_with("kcidb-io")).arg("-c").arg(KCIDB).arg(&kcidb).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "kcidb-io rejected it:\n{err}");
    // The base carries the harness's own patch (the dmacheck driver), the
    // series that and the defect: two patchsets, each a sha256.
    assert!(out.contains("patchsets 64 64 differ"), "the base and the series are two sha256 patchsets:\n{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("cell PASS ")).count(), 2, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(
                "gate swiotlb.gate.kernel_6_12-dynamic_vs_6_12-dynamic_defect-slow.dmabench.sev-emulated.swiotlb_default.map_us ",
            ) && l.ends_with(" % 6.12-dynamic+defect-slow")),
        "the gate's verdict is filed under the patched build:\n{out}"
    );

    // JSON: one document, valid against the published run schema.
    let raw = dir.path().join("run.json");
    std::fs::write(&raw, report(&merged, "json").1).unwrap();
    const SCHEMA: &str = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.validators.validator_for(schema)(schema).validate(json.load(open(sys.argv[2])))
print("valid")
"#;
    let o = std::process::Command::new(python_with("jsonschema"))
        .arg("-c")
        .arg(SCHEMA)
        .arg(root().join("results/schema/run.schema.json"))
        .arg(&raw)
        .output()
        .unwrap();
    assert_eq!(text(&o).0.trim(), "valid", "{}", text(&o).1);

    // HTML: self-contained, and what Chromium renders has the charts.
    let html = merged.join("report.html");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains("src=\"http") && !page.contains("<link") && !page.contains("<script"), "external assets");
    let chromium = chromium();
    let dom = std::process::Command::new(&chromium)
        .args(["--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("<h2>Summary</h2>") && dom.contains("6.12-dynamic+defect-slow"), "{dom}");
    let gated = cases.iter().filter(|c| c.starts_with("regression ")).count();
    assert!(dom.matches("<svg").count() >= gated, "a chart per gated row ({gated}):\n{dom}");
    let png = std::env::temp_dir().join("bounce-report-test.png");
    let _ = std::fs::remove_file(&png);
    let o = std::process::Command::new(&chromium)
        .args(["--no-sandbox", "--disable-gpu", "--window-size=1000,1400"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    // A page of text and charts, not a blank one (that compresses to ~4 KB).
    let size = std::fs::metadata(&png).unwrap().len();
    assert!(size > 40_000, "{} is {size} bytes", png.display());
    eprintln!("screenshot of the merged run's report: {}", png.display());
}

/// Debian's headless Chromium, installed as the harness installs its tools.
fn chromium() -> PathBuf {
    use bounce::host::tools::{ensure, Probe, Requirement};
    let bin = "chromium-headless-shell";
    ensure(&[Requirement::new(Probe::Bin(bin.into()), bin, "rendering the HTML report in a test")]).unwrap();
    which::which(bin).unwrap()
}
