//! JUnit XML, what CI systems read: one testcase per cell (did it work?)
//! and one per gated metric of a gated comparison (did it regress?), each
//! failure with the same one-line cause the text report gives.

use crate::failure::{Classify, Result};
use crate::results::{CellResult, Status};
use crate::stats::compare::Table;
use crate::stats::Verdict;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

fn failed(kind: &str, message: String) -> TestCaseStatus {
    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
    s.set_type(kind).set_message(message);
    s
}

/// The run as JUnit: `incomplete` (the run did not boot all it planned)
/// is a failing testcase of its own, so a CI page shows it.
pub fn render(run: &str, cells: &[CellResult], tables: &[Table], incomplete: Option<&str>) -> Result<String> {
    let mut report = Report::new(format!("bounce {run}"));
    let mut suite = TestSuite::new("correctness");
    if let Some(why) = incomplete {
        suite.add_test_case(TestCase::new("run.complete", failed("incomplete", why.to_string())));
    }
    for c in cells {
        let (status, note) = match (c.status(), c.failed_as_expected(), c.worst_failure()) {
            (Status::Pass, _, _) => (
                TestCaseStatus::success(),
                c.expected_failure.as_ref().map(|e| format!("XPASS: expected to fail [{}] ({})", e.class, e.why)),
            ),
            (_, true, Some(f)) => (
                TestCaseStatus::success(),
                Some(format!(
                    "XFAIL [{}]: {} (expected: {})",
                    f.class,
                    f.message,
                    c.expected_failure.as_ref().map(|e| e.why.as_str()).unwrap_or("")
                )),
            ),
            (_, _, Some(f)) => (failed(&f.class.to_string(), f.message.clone()), None),
            _ => (failed("infrastructure", "no repetition ran".into()), None),
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
    for t in tables.iter().filter(|t| t.gate) {
        for r in t.rows.iter().filter(|r| r.j.gated) {
            let status = match r.j.verdict {
                Verdict::Worse => failed("regression", super::regression(r)),
                _ => TestCaseStatus::success(),
            };
            let mut case = TestCase::new(format!("{}.{}.{}", r.profile, r.metric, r.context), status);
            case.set_classname(t.title.clone());
            case.set_system_out(format!(
                "{}: delta {}, MDE {}",
                r.j.verdict,
                super::pct(r.j.delta_pct),
                r.j.mde_pct.map(|m| format!("{m:.1}%")).unwrap_or("n/a".into())
            ));
            gate.add_test_case(case);
        }
    }
    report.add_test_suite(gate);
    report.to_string().infra(|| "cannot write JUnit XML".into())
}
