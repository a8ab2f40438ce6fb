//! The harness's own hot paths, so a regression in the harness itself
//! shows (`cargo bench`): what every boot costs the host (scanning a
//! kernel log, reading the result channel) and what every report costs
//! (judging and rendering the default matrix's published run).

use bounce::guest::channel::Transcript;
use bounce::report::{Format, RunReport};
use bounce::results::store::RunDir;
use bounce::stats::noise::NoiseTable;
use bounce::workload::{checks, Workload};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::PathBuf;

fn root() -> PathBuf {
    bounce::paths::project_root()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(root().join("harness/src/workload/fixtures").join(name)).unwrap()
}

/// The default matrix's published run (60 cells, 180 boots).
fn published() -> RunDir {
    let dir = std::fs::read_dir(root().join("results/published")).unwrap().flatten().map(|e| e.path()).max().unwrap();
    RunDir::open(&dir).unwrap()
}

fn per_boot(c: &mut Criterion) {
    let log: Vec<String> = fixture("dmesg-x86-oom-probe.txt").lines().map(str::to_string).collect();
    let memory = Workload::load(&root(), "memory").unwrap();
    c.bench_function("scan a kernel log (OOM probe boot, 34 KB)", |b| {
        b.iter(|| checks::scan_log(black_box(&log), &memory, true))
    });
    let channel = fixture("channel-x86-storage.txt");
    c.bench_function("parse a result channel (storage boot, 67 KB)", |b| {
        b.iter(|| Transcript::parse(black_box(&channel)))
    });
}

fn per_report(c: &mut Criterion) {
    let run = published();
    let noise = NoiseTable::load(&root().join(bounce::stats::noise::FILE)).unwrap();
    c.bench_function("judge the default matrix (every comparison)", |b| {
        b.iter(|| RunReport::load(&root(), black_box(&run), &noise).unwrap())
    });
    let report = RunReport::load(&root(), &run, &noise).unwrap();
    for (name, format) in [("text", Format::Text), ("markdown", Format::Markdown), ("html", Format::Html)] {
        c.bench_function(&format!("render the default matrix as {name}"), |b| {
            b.iter(|| report.render(black_box(format)).unwrap())
        });
    }
}

criterion_group! {
    name = benches;
    // Reports take tens of milliseconds: fewer samples keep `cargo bench`
    // to a minute on two cores.
    config = Criterion::default().sample_size(20);
    targets = per_boot, per_report
}
criterion_main!(benches);
