//! KCIDB v5 (schema 5.3): what KernelCI's common database takes in. One
//! checkout per kernel source and patch series, one build per kernel
//! of the run, and tests: one per cell (did it work), one per cell and
//! metric (`DONE`, the median with its unit), one per gated row of every
//! comparison (did it regress). An expected failure is a known issue:
//! the cell's test still says `FAIL`, and an incident ties it to the
//! issue, as a triager would.
//!
//! Test paths are unique within a build: a build is one kernel on one
//! architecture, and a cell of it is its profile, workload and swiotlb
//! setting, all in the path (`swiotlb.WORKLOAD.PROFILE.SETTING`, then the
//! metric). KCIDB 5.3 has no field for the machine a test ran on, so the
//! profile also goes in each test's `environment`. Statuses follow
//! [`Outcome`], as JUnit's do, so the two count the same.

use super::{Outcome, RunReport};
use crate::failure::{Classify, Failure, FailureClass, Result};
use crate::results::{CellResult, Status};
use crate::stats;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

const ORIGIN: &str = "bounce";

/// A KCIDB path segment: letters, digits, `_` and `-` only.
fn segment(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// A metric's path below its cell's: without the workload's name, which
/// the cell's path already holds, split where the name has dots.
fn metric_path(workload: &str, metric: &str) -> String {
    let m = metric.strip_prefix(workload).and_then(|m| m.strip_prefix('.')).unwrap_or(metric);
    m.split('.').map(segment).collect::<Vec<_>>().join(".")
}

/// A comparison as one path segment, from its title: `kernel: a (base)
/// vs b (new)` is `kernel_a_vs_b`.
fn comparison_segment(title: &str) -> String {
    let t = title.split(" -- ").next().unwrap_or(title).replace(" (base)", "").replace(" (new)", "");
    let mut out = String::new();
    for c in segment(&t).chars() {
        if !(c == '_' && (out.is_empty() || out.ends_with('_'))) {
            out.push(c);
        }
    }
    let out = out.trim_end_matches('_');
    if out.is_empty() {
        "comparison".to_string()
    } else {
        out.to_string()
    }
}

/// The commit of a checkout whose source is a git tree (`git:SHA1`);
/// KCIDB 5.3 takes SHA-1 commits only.
fn git_commit(source: &str) -> Option<&str> {
    source
        .strip_prefix("git:")
        .filter(|c| c.len() == 40 && c.chars().all(|x| x.is_ascii_digit() || ('a'..='f').contains(&x)))
}

fn status(c: &CellResult) -> &'static str {
    match (c.status(), c.worst_failure().map(|f| f.class)) {
        (Status::Pass, _) => "PASS",
        (_, Some(FailureClass::Infrastructure)) | (_, None) => "MISS",
        (_, Some(FailureClass::Input)) => "ERROR",
        _ => "FAIL",
    }
}

pub fn render(r: &RunReport) -> Result<String> {
    let id = |kind: &str, rest: &str| format!("{ORIGIN}:{}/{kind}/{rest}", r.name);
    let started = r.env.started_at.clone();
    let mut checkouts: BTreeMap<String, Value> = BTreeMap::new();
    let mut builds = Vec::new();
    // `VARIANT (ARCH)` of env.kernels -> build id, for the cells.
    let mut build_of: BTreeMap<(String, String), String> = BTreeMap::new();
    for (name, k) in &r.env.kernels {
        let patchset = k.series.as_ref().map(|s| s.patchset_hash.clone()).unwrap_or_default();
        let checkout =
            id("checkout", &format!("{}+{}", k.source, if patchset.is_empty() { "base" } else { &patchset }));
        checkouts.entry(checkout.clone()).or_insert_with(|| {
            let mut c = json!({
                "id": checkout,
                "origin": ORIGIN,
                "tree_name": k.source,
                "patchset_hash": patchset,
                "start_time": started,
                "valid": true,
                "comment": format!("Linux {}{}", k.kernel_version,
                    k.series.as_ref().map(|s| format!(" + {} ({} patches)", s.name, s.subjects.len())).unwrap_or_default()),
            });
            if let Some(s) = &k.series {
                c["misc"] = json!({"series": s.name, "subjects": s.subjects, "series_origin": s.origin});
            }
            if let Some(commit) = git_commit(&k.source) {
                c["git_commit_hash"] = json!(commit);
                if let Some(url) = &k.repository_url {
                    c["git_repository_url"] = json!(url);
                }
            }
            c
        });
        let build = id("build", &segment(name));
        build_of.insert((crate::results::env::label_kernel(name).to_string(), k.arch.clone()), build.clone());
        builds.push(json!({
            "id": build,
            "origin": ORIGIN,
            "checkout_id": checkout,
            "architecture": k.arch,
            "config_name": k.variant,
            "compiler": k.toolchain,
            "command": k.reproducer,
            "duration": k.duration_s,
            "start_time": k.built_at,
            "status": "PASS",
            "comment": format!("{} {}", k.kernel_version,
                if k.swiotlb_dynamic { "SWIOTLB_DYNAMIC=y" } else { "SWIOTLB_DYNAMIC=n" }),
            "misc": {"cache_key": k.key, "swiotlb_dynamic": k.swiotlb_dynamic, "config": k.config_base,
                     "fragments": k.fragments, "harness": r.env.harness_rev, "harness_dirty": r.env.dirty()},
        }));
    }
    let accel: Vec<String> = r.env.accel.iter().map(|(a, c)| format!("{a} {}", c.short())).collect();
    let host = format!("{}, {} cores; accel {}", r.env.host.cpu_model, r.env.host.cores, accel.join(", "));
    let mut tests = Vec::new();
    let mut issues = Vec::new();
    let mut incidents = Vec::new();
    for c in &r.cells {
        let arch = r.env.kernels.values().find(|k| k.key == c.kernel_build).map(|k| k.arch.clone());
        let Some(build) = arch.and_then(|a| build_of.get(&(c.key.kernel.clone(), a))) else {
            return Err(Failure::input(format!(
                "{}: cell {} ran kernel {}, which env.json does not list",
                r.name,
                c.key.id(),
                c.kernel_build
            )));
        };
        let environment = json!({
            "comment": format!("profile {}{}, swiotlb {} ({}); {host}", c.key.profile,
                if c.emulated { " [emulated]" } else { "" }, c.key.swiotlb, c.swiotlb_cmdline),
            "misc": {"profile": c.key.profile, "emulated": c.emulated, "swiotlb": c.key.swiotlb,
                     "swiotlb_cmdline": c.swiotlb_cmdline},
        });
        let cell_path =
            format!("swiotlb.{}.{}.{}", segment(&c.key.workload), segment(&c.key.profile), segment(&c.key.swiotlb));
        let test_id = id("test", &c.key.id());
        let passed = c.reps.iter().filter(|r| r.status == Status::Pass).count();
        let mut t = json!({
            "id": test_id,
            "origin": ORIGIN,
            "build_id": build,
            "path": cell_path,
            "status": status(c),
            "start_time": started,
            "duration": c.reps.iter().map(|r| r.total_s.max(0.0)).sum::<f64>(),
            "environment": environment,
            "comment": format!("{}: {passed}/{} boots passed", c.key.id(), c.reps.len()),
            "misc": {"cell": c.key.id(), "boots": c.reps.len(), "passed": passed},
        });
        if let Some(f) = c.worst_failure() {
            t["log_excerpt"] = Value::String(format!("[{}] {}", f.class, f.message));
        }
        tests.push(t);
        if let (Some(e), true) = (&c.expected_failure, c.status() == Status::Fail) {
            let issue = format!("{ORIGIN}:expected/{}", segment(&c.key.id()));
            // A limit of the configuration the matrix chose on purpose (a
            // pool too small for the I/O, a fixed pool that cannot grow),
            // not a bug: no code, tool or harness is to blame.
            issues.push(json!({"id": issue, "version": 1, "origin": ORIGIN,
                "comment": format!("expected to fail [{}], a limit of this configuration, not a bug: {}", e.class, e.why),
                "culprit": {"code": false, "tool": false, "harness": false}}));
            incidents.push(json!({"id": id("incident", &c.key.id()), "origin": ORIGIN, "issue_id": issue,
                "issue_version": 1, "test_id": test_id, "present": c.failed_as_expected()}));
        }
        for (name, m) in &c.metrics {
            let Some(median) = stats::median(&m.values()) else { continue };
            tests.push(json!({
                "id": id("test", &format!("{}/{name}", c.key.id())),
                "origin": ORIGIN,
                "build_id": build,
                "path": format!("{cell_path}.{}", metric_path(&c.key.workload, name)),
                "status": "DONE",
                "start_time": started,
                "environment": environment,
                "number": {"value": median, "unit": m.decl.unit},
                "comment": format!("median of {} boots", m.samples.len()),
                "misc": {"samples": m.values(), "better": m.decl.better, "gated": m.decl.gate},
            }));
        }
    }
    // The gated rows of every comparison, filed under the new side's
    // cell: its build is the one under test, its profile the machine.
    for (t, row, outcome) in super::ci_rows(&r.tables) {
        let cell_test = id("test", &row.new_cell.id());
        let Some(cell) = tests.iter().find(|x| x["id"].as_str() == Some(cell_test.as_str())) else {
            continue;
        };
        let (build, environment) = (cell["build_id"].clone(), cell["environment"].clone());
        let status = match outcome {
            Outcome::Fail => "FAIL",
            Outcome::Pass => "PASS",
            Outcome::NotCompared => "SKIP",
            // Measured: in a comparison that gates nothing, or undecided.
            _ => "DONE",
        };
        let path = format!(
            "swiotlb.{}.{}.{}.{}.{}",
            if t.gate { "gate" } else { "compare" },
            comparison_segment(&t.title),
            segment(&row.workload),
            segment(&row.profile),
            segment(&row.context),
        ) + "."
            + &metric_path(&row.workload, &row.metric);
        let mut g = json!({
            "id": id("compare", &format!("{}/{path}", row.new_cell.id())),
            "origin": ORIGIN,
            "build_id": build,
            "path": path,
            "status": status,
            "start_time": started,
            "environment": environment,
            "comment": format!("{}{}: {} [{}] {}", t.title, if t.gate { "" } else { " (not gated)" },
                row.profile, row.context, super::verdict_cell(row, t.gate)),
            "misc": {"comparison": t.title, "gated_comparison": t.gate, "profile": row.profile,
                     "context": row.context, "verdict": row.j.verdict.label(), "q": row.j.q,
                     "ci_pct": row.j.ci_pct, "threshold_pct": row.j.threshold_pct, "mde_pct": row.j.mde_pct,
                     "base_median": row.j.base.map(|b| b.0), "new_median": row.j.new.map(|n| n.0)},
        });
        if let Some(d) = row.j.delta_pct {
            g["number"] = json!({"value": d, "unit": "%"});
        }
        if outcome == Outcome::Fail {
            g["log_excerpt"] = Value::String(super::regression(row));
        }
        tests.push(g);
    }
    let mut doc = Map::new();
    doc.insert("version".into(), json!({"major": 5, "minor": 3}));
    doc.insert("checkouts".into(), Value::Array(checkouts.into_values().collect()));
    doc.insert("builds".into(), Value::Array(builds));
    doc.insert("tests".into(), Value::Array(tests));
    if !issues.is_empty() {
        doc.insert("issues".into(), Value::Array(issues));
        doc.insert("incidents".into(), Value::Array(incidents));
    }
    serde_json::to_string_pretty(&Value::Object(doc)).infra(|| "cannot write KCIDB".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_each_thing_once_and_a_git_checkout_its_commit() {
        assert_eq!(metric_path("dmabench", "dmabench.map_us.t1-g1-to"), "map_us.t1-g1-to");
        assert_eq!(metric_path("storage", "read_bw.seq 1m"), "read_bw.seq_1m");
        assert_eq!(
            comparison_segment("kernel: 6.12-dynamic (base) vs 6.12-dynamic+defect-slow (new)"),
            "kernel_6_12-dynamic_vs_6_12-dynamic_defect-slow"
        );
        assert_eq!(comparison_segment("a [k] (base) vs b [k] (new) -- COMPARED DESPITE: qemu"), "a_k_vs_b_k");
        assert_eq!(comparison_segment("::"), "comparison");
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(git_commit(&format!("git:{sha}")), Some(sha));
        // KCIDB 5.3 takes SHA-1 only: a SHA-256 repository's commit is left out.
        assert_eq!(git_commit(&format!("git:{sha}{}", &sha[..24])), None);
        assert_eq!(git_commit("debian:linux-source-6.12=6.12.118-1~deb12u1"), None);
    }
}
