//! Failure classes, shared by the CLI exit code, the results and every report.
//!
//! Kept apart the way syzkaller keeps boot errors apart from infrastructure
//! errors: a red cell must say whose fault it is before anyone reads a log.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailureClass {
    /// Bad input: a malformed matrix.yaml, a config fragment, an unknown name.
    Input,
    /// The host could not do its part: a tool missing, QEMU crashed, a build broke.
    Infrastructure,
    /// The guest never reached init, or panicked before the workload ran.
    Boot,
    /// The guest program failed or never reported.
    Workload,
    /// Data, kernel log or swiotlb counter checks failed.
    Correctness,
    /// A statistically significant slowdown against the baseline.
    Regression,
}

impl FailureClass {
    /// Distinct exit codes let CI tell "fix the machine" from "fix the kernel".
    pub fn exit_code(self) -> i32 {
        match self {
            FailureClass::Input => 2,
            FailureClass::Infrastructure => 3,
            FailureClass::Boot => 4,
            FailureClass::Workload => 5,
            FailureClass::Correctness => 6,
            FailureClass::Regression => 7,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            FailureClass::Input => "input",
            FailureClass::Infrastructure => "infrastructure",
            FailureClass::Boot => "boot",
            FailureClass::Workload => "workload",
            FailureClass::Correctness => "correctness",
            FailureClass::Regression => "regression",
        };
        f.write_str(s)
    }
}

/// An error that knows its class. Everything that can stop a run is one of
/// these by the time it reaches `main`, so the user sees one line and CI an
/// exit code.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error, schemars::JsonSchema)]
#[error("{class} error: {message}")]
pub struct Failure {
    pub class: FailureClass,
    pub message: String,
}

impl Failure {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Failure { class, message: message.into() }
    }
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Input, message)
    }
    pub fn infra(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Infrastructure, message)
    }
}

pub type Result<T, E = Failure> = std::result::Result<T, E>;

/// Attach a class to any error on the way up.
pub trait Classify<T> {
    fn class(self, class: FailureClass, what: impl FnOnce() -> String) -> Result<T>;
    fn infra(self, what: impl FnOnce() -> String) -> Result<T>
    where
        Self: Sized,
    {
        self.class(FailureClass::Infrastructure, what)
    }
    fn input(self, what: impl FnOnce() -> String) -> Result<T>
    where
        Self: Sized,
    {
        self.class(FailureClass::Input, what)
    }
}

impl<T, E: fmt::Display> Classify<T> for std::result::Result<T, E> {
    fn class(self, class: FailureClass, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Failure::new(class, format!("{}: {e}", what())))
    }
}
