//! Per-step outcomes and the printed table.

use std::fmt::Write as _;

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every expectation and the fixture matched.
    Pass,
    /// Something did not match; the detail says what.
    Fail,
    /// The emulator answered 501 or does not route the operation.
    Unimplemented,
    /// A step the project declared out of scope (guest application traffic on a VM endpoint).
    OutOfScope,
    /// Not run: an earlier step stopped the scenario, or a needed capture is missing.
    NotRun,
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Unimplemented => "unimplemented",
            Outcome::OutOfScope => "out-of-scope",
            Outcome::NotRun => "not-run",
        }
    }
}

/// The result of one step.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Scenario id.
    pub case: String,
    /// Step name.
    pub step: String,
    /// Operation name.
    pub operation: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Why (empty on a clean pass).
    pub detail: String,
}

/// The results of a whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every step of every scenario, in order.
    pub steps: Vec<StepReport>,
}

impl Report {
    /// Steps of scenario `case`.
    pub fn case(&self, case: &str) -> impl Iterator<Item = &StepReport> {
        self.steps.iter().filter(move |s| s.case == case)
    }

    /// Steps with outcome [`Outcome::Fail`].
    pub fn failures(&self) -> Vec<&StepReport> {
        self.steps.iter().filter(|s| s.outcome == Outcome::Fail).collect()
    }

    /// How many steps had `outcome`.
    pub fn count(&self, outcome: &Outcome) -> usize {
        self.steps.iter().filter(|s| &s.outcome == outcome).count()
    }

    /// A fixed-width table of every step plus a summary line.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{:<20} {:<36} {:<32} {:<14} detail", "case", "step", "operation", "outcome");
        for s in &self.steps {
            let _ = writeln!(out, "{:<20} {:<36} {:<32} {:<14} {}", s.case, s.step, s.operation, s.outcome.label(), s.detail);
        }
        let _ = writeln!(
            out,
            "summary: {} pass, {} FAIL, {} unimplemented, {} out-of-scope, {} not-run",
            self.count(&Outcome::Pass),
            self.count(&Outcome::Fail),
            self.count(&Outcome::Unimplemented),
            self.count(&Outcome::OutOfScope),
            self.count(&Outcome::NotRun),
        );
        out
    }
}
