//! Shards back into one run: the runs of `bounce matrix --shard K/N`,
//! every share exactly once, joined into a run directory that reads (and
//! reports) as if one machine had booted it all: one plan, one cell file
//! per cell with every repetition, every guest's logs.

use super::env::{RunEnv, ShardNote};
use super::store::RunDir;
use super::{CellKey, CellResult, PlannedBoot, RunPlan, RunState};
use crate::failure::{Classify, Failure, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub fn merge(shards: &[RunDir], into: &Path) -> Result<RunDir> {
    let bad = |m: String| Failure::input(m);
    let mut parts: Vec<(&RunDir, RunEnv, RunPlan, Vec<CellResult>)> = Vec::new();
    for s in shards {
        let plan = s.read_plan()?;
        if plan.shard.is_none() {
            return Err(bad(format!("{}: not a shard (run with `bounce matrix --shard K/N`)", s.path.display())));
        }
        parts.push((s, s.read_env()?, plan, s.read_cells()?));
    }
    parts.sort_by_key(|p| p.2.shard.map(|s| s.shard.index));
    let first = parts[0].2.shard.unwrap();
    let of = first.shard.of;
    let mut seen = BTreeMap::new();
    for (dir, env, plan, _) in &parts {
        let s = plan.shard.unwrap();
        if s.shard.of != of || s.whole_plan_boots != first.whole_plan_boots {
            return Err(bad(format!(
                "{}: shard {} of a {}-boot plan does not belong with shard {} of a {}-boot plan",
                dir.path.display(),
                s.shard,
                s.whole_plan_boots,
                first.shard,
                first.whole_plan_boots
            )));
        }
        if let Some(other) = seen.insert(s.shard.index, dir.path.display().to_string()) {
            return Err(bad(format!("shard {} given twice: {other} and {}", s.shard, dir.path.display())));
        }
        let e0 = &parts[0].1;
        let differs = if env.harness_rev != e0.harness_rev {
            Some(format!("harness {} vs {}", env.harness_rev, e0.harness_rev))
        } else if env.matrix_file != e0.matrix_file {
            Some(format!("matrix {} vs {}", env.matrix_file, e0.matrix_file))
        } else if env.last_good != e0.last_good {
            // A same-run gate's good build must boot in every shard, or
            // half the pairs are judged against nothing.
            let g = |e: &RunEnv| e.last_good.as_ref().map(|g| g.baseline.clone()).unwrap_or_else(|| "none".into());
            Some(format!("last good build from baseline {} vs {}", g(env), g(e0)))
        } else {
            // Accelerator and clock, QEMU, host class, compiler, rootfs:
            // what makes two runs' numbers incomparable makes shards so.
            Some(env.incomparable(e0).join("; ")).filter(|w| !w.is_empty())
        };
        if let Some(why) = differs {
            return Err(bad(format!(
                "{}: its samples do not join those of {} ({why}): run every shard from one commit and matrix, on one accelerator, clock, QEMU and host class",
                dir.path.display(),
                parts[0].0.path.display()
            )));
        }
    }
    let missing: Vec<String> = (1..=of).filter(|k| !seen.contains_key(k)).map(|k| format!("{k}/{of}")).collect();
    if !missing.is_empty() {
        return Err(bad(format!("shards {} missing: merge all {of} shards of the run", missing.join(", "))));
    }

    let mut env = parts[0].1.clone();
    let mut boots: Vec<PlannedBoot> = Vec::new();
    let mut cells: BTreeMap<CellKey, CellResult> = BTreeMap::new();
    let mut state = RunState::Complete;
    for (dir, e, plan, shard_cells) in &parts {
        for (name, k) in &e.kernels {
            match env.kernels.get(name) {
                Some(have) if have.key != k.key => {
                    return Err(bad(format!(
                    "{}: kernel {name} has key {} here and {} in another shard: its source, config or series differ",
                    dir.path.display(),
                    k.key,
                    have.key
                )))
                }
                _ => {
                    env.kernels.insert(name.clone(), k.clone());
                }
            }
        }
        env.qemu.extend(e.qemu.clone());
        env.accel.extend(e.accel.clone());
        env.profiles.extend(e.profiles.clone());
        env.started_at = env.started_at.clone().min(e.started_at.clone());
        env.shards.push(ShardNote {
            shard: plan.shard.unwrap().shard.to_string(),
            run: dir.name(),
            host: e.host.clone(),
            started_at: e.started_at.clone(),
        });
        if plan.state != RunState::Complete {
            state = RunState::Interrupted;
        }
        boots.extend(plan.boots.iter().cloned());
        for c in shard_cells {
            match cells.get_mut(&c.key) {
                None => {
                    cells.insert(c.key.clone(), c.clone());
                }
                Some(have) => {
                    have.reps.extend(c.reps.iter().cloned());
                    for (name, m) in &c.metrics {
                        have.metrics
                            .entry(name.clone())
                            .or_insert_with(|| super::Metric { decl: m.decl.clone(), samples: Vec::new() })
                            .samples
                            .extend(m.samples.iter().cloned());
                    }
                }
            }
        }
    }
    let unique: BTreeSet<(&CellKey, u32)> = boots.iter().map(|b| (&b.cell, b.rep)).collect();
    if unique.len() != boots.len() || boots.len() != first.whole_plan_boots {
        return Err(bad(format!(
            "the shards plan {} boots ({} distinct) where the run planned {}: they were not cut from one plan",
            boots.len(),
            unique.len(),
            first.whole_plan_boots
        )));
    }
    // Repetitions in order, as one machine would have numbered them.
    for c in cells.values_mut() {
        c.reps.sort_by_key(|r| r.rep);
        for m in c.metrics.values_mut() {
            m.samples.sort_by_key(|s| s.rep);
        }
    }
    env.command = format!(
        "bounce results merge {}",
        parts.iter().map(|p| p.0.path.display().to_string()).collect::<Vec<_>>().join(" ")
    );

    if into.exists() {
        return Err(bad(format!("{}: already exists; merge into a new directory", into.display())));
    }
    let out = RunDir { path: into.to_path_buf() };
    std::fs::create_dir_all(into.join("cells")).infra(|| format!("cannot create {}", into.display()))?;
    // The guests' logs come along: a failure in a merged run is read there.
    for (dir, ..) in &parts {
        let guests = dir.path.join("guests");
        for entry in walkdir::WalkDir::new(&guests).into_iter().filter_map(|e| e.ok()) {
            let rel = entry.path().strip_prefix(&dir.path).unwrap_or(entry.path());
            let to = into.join(rel);
            let copied = if entry.file_type().is_dir() {
                std::fs::create_dir_all(&to)
            } else {
                std::fs::copy(entry.path(), &to).map(|_| ())
            };
            copied.map_err(|e| {
                Failure::infra(format!("cannot copy {} to {}: {e}", entry.path().display(), to.display()))
            })?;
        }
    }
    out.write_env(&env)?;
    out.write_plan(&RunPlan { boots, state, shard: None, timing: None })?;
    for c in cells.values() {
        out.write_cell(c)?;
    }
    Ok(out)
}
