//! JUnit XML, what CI systems read: one testcase per cell (did it work?)
//! and one per gated metric of every comparison (did it regress?), each
//! failure with the same one-line cause the text report gives.
//!
//! Statuses follow [`Outcome`], as KCIDB's do, so both count the same:
//! a pass or a measurement is a success; a failure is a `failure`; bad
//! input or a failed machine is an `error` (KCIDB's ERROR and MISS); an
//! expected failure is `skipped` with type `expected-failure` and the
//! matrix's reason as its message (KCIDB keeps it a FAIL tied to a known
//! issue, which JUnit cannot say: skipped keeps it off a CI page's
//! failures yet visible, where a success would hide it); a row with no
//! values on one side is `skipped` with type `not-compared` (KCIDB's
//! SKIP). A comparison that gates nothing carries its verdicts too, as
//! successes: it asks nothing of the code.

use super::Outcome;
use crate::failure::{Classify, Result};
use crate::results::CellResult;
use crate::stats::compare::Table;
use crate::stats::Verdict;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

fn non_success(kind: NonSuccessKind, ty: &str, message: String) -> TestCaseStatus {
    let mut s = TestCaseStatus::non_success(kind);
    s.set_type(ty).set_message(message);
    s
}

fn skipped(ty: &str, message: String) -> TestCaseStatus {
    let mut s = TestCaseStatus::skipped();
    s.set_type(ty).set_message(message);
    s
}

/// The run as JUnit: `incomplete` (the run did not boot all it planned)
/// is a failing testcase of its own, so a CI page shows it (KCIDB has no
/// counterpart: there the planned boots are simply absent).
pub fn render(
    run: &str,
    harness_rev: &str,
    cells: &[CellResult],
    tables: &[Table],
    incomplete: Option<&str>,
) -> Result<String> {
    let mut report = Report::new(format!("bounce {run}"));
    let mut suite = TestSuite::new("correctness");
    // Which harness measured it, dirty or not, travels with the results.
    suite.add_property(Property::new("harness", harness_rev));
    if let Some(why) = incomplete {
        suite.add_test_case(TestCase::new(
            "run.complete",
            non_success(NonSuccessKind::Failure, "incomplete", why.to_string()),
        ));
    }
    for c in cells {
        let expected = c.expected_failure.as_ref();
        let worst = c.worst_failure();
        let (status, note) = match (Outcome::of_cell(c), worst) {
            (Outcome::ExpectedFail, Some(f)) => (
                skipped(
                    "expected-failure",
                    format!("expected to fail [{}]: {}", f.class, expected.map(|e| e.why.as_str()).unwrap_or("")),
                ),
                Some(format!("XFAIL [{}]: {}", f.class, f.message)),
            ),
            (Outcome::Pass, _) => (
                TestCaseStatus::success(),
                c.xpass().map(|e| format!("XPASS: expected to fail [{}] ({})", e.class, e.why)),
            ),
            (Outcome::Broken, Some(f)) => {
                (non_success(NonSuccessKind::Error, &f.class.to_string(), f.message.clone()), None)
            }
            (_, Some(f)) => (non_success(NonSuccessKind::Failure, &f.class.to_string(), f.message.clone()), None),
            _ => (non_success(NonSuccessKind::Error, "infrastructure", "no repetition ran".into()), None),
        };
        let mut case = TestCase::new(c.key.id(), status);
        case.set_classname(format!("bounce.{}.{}", c.key.profile, c.key.workload));
        case.set_time(Duration::from_secs_f64(c.reps.iter().map(|r| r.total_s.max(0.0)).sum()));
        if let Some(n) = note {
            case.set_system_out(n);
        }
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);

    let mut gate = TestSuite::new("regression");
    for (t, r, outcome) in super::ci_rows(tables) {
        let verdict = super::verdict_cell(r, t.gate);
        let status = match outcome {
            Outcome::Fail => non_success(NonSuccessKind::Failure, "regression", super::regression(r)),
            Outcome::NotCompared => {
                skipped("not-compared", format!("{verdict}: no values on one side (its cell failed)"))
            }
            _ => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(format!("{}.{}.{}", r.profile, r.metric, r.context), status);
        case.set_classname(if t.gate { t.title.clone() } else { format!("{} [not gated]", t.title) });
        let decided = if r.j.verdict == Verdict::Inconclusive { ", not decided by these boots" } else { "" };
        case.set_system_out(format!(
            "{verdict}{decided}: delta {}, MDE {}",
            super::pct(r.j.delta_pct),
            r.j.mde_pct.map(|m| format!("{m:.1}%")).unwrap_or("n/a".into())
        ));
        gate.add_test_case(case);
    }
    report.add_test_suite(gate);
    report.to_string().infra(|| "cannot write JUnit XML".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::testing::cell;
    use crate::results::{Axis, Comparison};
    use crate::stats::noise::NoiseTable;

    const BASE: &[f64] = &[1.9, 2.0, 1.9, 2.0, 1.9, 2.0];
    const SLOW: &[f64] = &[2.9, 3.0, 2.9, 3.1, 2.9, 3.0];

    fn junit(gate: bool) -> String {
        let cells = [cell("a", &[("dmabench.map_us", true, BASE)]), cell("b", &[("dmabench.map_us", true, SLOW)])];
        let c = Comparison { axis: Axis::Kernel, base: "a".into(), new: "b".into(), gate };
        let tables = crate::stats::compare::in_run(&cells, &[c], &NoiseTable::default());
        render("r", "abc", &cells, &tables, None).unwrap()
    }

    #[test]
    fn a_gated_metric_is_a_testcase_in_every_comparison_failing_only_where_gated() {
        let gated = junit(true);
        assert!(
            gated.contains("<failure message=\"sev-emulated dmabench.map_us") && gated.contains("type=\"regression\"")
        );
        let ungated = junit(false);
        // The verdict is there, with the comparison marked as gating nothing.
        assert!(ungated.contains("[not gated]") && ungated.contains("worse: delta +"), "{ungated}");
        assert!(!ungated.contains("<failure"), "{ungated}");
        assert!(ungated.contains("<property name=\"harness\" value=\"abc\"/>"), "{ungated}");
    }
}
