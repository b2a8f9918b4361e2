//! Runs the recorded Lambda MicroVMs conformance cases (`shared/reference/recorded`) against a
//! running emulator and reports every step as pass / FAIL / unimplemented / out-of-scope / not-run.
//!
//! Control-plane steps are SigV4-signed with aws-sigv4 (service `lambda`); VM endpoint steps go
//! to the same socket with the endpoint host in `Host`. `until` steps are polled (time capped,
//! the emulator settles faster than the service). Bodies are compared with the recorded
//! fixtures after the README's normalisation of both sides (plus one rule of whim's: byte
//! sizes, which depend on the artifact and the build host, see `normalise`). An unimplemented
//! step that captures values stops its scenario.

mod case;
mod http;
mod judge;
mod normalise;
mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

pub use case::{Case, Expect, Step};
pub use http::Target;
pub use report::{Outcome, Report, StepReport};

use case::{Vars, as_text, at_path};
use http::{Answer, Outgoing};
use judge::{check_expect, compare_bodies, error_type};

/// Where the shared reference lives: `$WHIM_SHARED_DIR`, else `<repo>/../shared`.
pub fn shared_dir() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("WHIM_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    let recorded = dir.join("reference/recorded/cases");
    anyhow::ensure!(
        recorded.is_dir(),
        "the recorded conformance cases are missing: {} is not a directory; put shared/ beside the \
         repository clone or set WHIM_SHARED_DIR",
        recorded.display()
    );
    Ok(dir)
}

/// Every `cases/*.json` under `shared/reference/recorded`, in file-name order.
pub fn load_cases(shared: &Path) -> anyhow::Result<Vec<Case>> {
    let dir = shared.join("reference/recorded/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not a valid case", f.display()))
        })
        .collect()
}

/// Runs cases against one emulator.
#[derive(Debug, Clone)]
pub struct Runner {
    target: Target,
    account: String,
    fixtures: PathBuf,
    poll_cap: Duration,
    interval_cap: Duration,
}

/// State of one scenario while it runs.
#[derive(Debug, Default)]
struct Scenario {
    vars: Vars,
    stopped: Option<String>,
}

/// What one executed step produced.
struct Ran {
    outcome: Outcome,
    detail: String,
}

impl Runner {
    /// A runner for the emulator at `target`, with fixtures under `shared`.
    pub fn new(target: Target, account: &str, shared: &Path) -> Self {
        Self {
            target,
            account: account.to_owned(),
            fixtures: shared.join("reference/recorded/fixtures"),
            poll_cap: Duration::from_secs(30),
            interval_cap: Duration::from_millis(50),
        }
    }

    /// Runs every case, in order.
    pub async fn run(&self, cases: &[Case]) -> Report {
        let mut report = Report::default();
        for case in cases {
            report.steps.extend(self.run_case(case).await);
        }
        report
    }

    async fn run_case(&self, case: &Case) -> Vec<StepReport> {
        let mut sc = Scenario { vars: Vars::new(&self.target.region, &self.account, &case.params), ..Scenario::default() };
        let mut out = Vec::new();
        for step in &case.steps {
            let ran = match &sc.stopped {
                Some(why) => Ran { outcome: Outcome::NotRun, detail: why.clone() },
                None => self.run_step(case, step, &mut sc).await,
            };
            out.push(StepReport {
                case: case.id.clone(),
                step: step.name.clone(),
                operation: step.operation.clone(),
                outcome: ran.outcome,
                detail: ran.detail,
            });
        }
        out
    }

    async fn run_step(&self, case: &Case, step: &Step, sc: &mut Scenario) -> Ran {
        let req = match self.outgoing(step, &sc.vars) {
            Ok(req) => req,
            Err(missing) => return Ran { outcome: Outcome::NotRun, detail: format!("needs ${{{missing}}}") },
        };
        let answer = match self.send_until(step, &req).await {
            Ok(a) => a,
            Err(e) => return self.stop(sc, Outcome::Fail, format!("request failed: {e:#}")),
        };
        let body = serde_json::from_slice::<Value>(&answer.body).ok();
        let ran = self.judge(case, step, &answer, body.as_ref());
        match ran.outcome {
            Outcome::Fail => self.stop(sc, Outcome::Fail, ran.detail),
            Outcome::Unimplemented if !step.capture.is_empty() && !step.optional => {
                sc.stopped = Some(format!("{} ({}) is unimplemented", step.name, step.operation));
                ran
            }
            _ => {
                self.capture(step, body.as_ref(), sc);
                ran
            }
        }
    }

    fn outgoing(&self, step: &Step, vars: &Vars) -> Result<Outgoing, String> {
        let path = vars.expand(&step.path)?;
        let body = step.body.as_ref().map(|b| vars.expand_json(b)).transpose()?;
        let host = match &step.base_url {
            Some(base) => Some(vars.expand(base)?.trim_start_matches("https://").trim_start_matches("http://").to_owned()),
            None => None,
        };
        let headers = step.headers.iter().map(|(k, v)| Ok((k.clone(), vars.expand(v)?))).collect::<Result<_, String>>()?;
        let body = body.map(|b| serde_json::to_vec(&b).unwrap_or_default());
        Ok(Outgoing { method: step.method.clone(), path, signed: host.is_none(), host, headers, body })
    }

    async fn send_until(&self, step: &Step, req: &Outgoing) -> anyhow::Result<Answer> {
        let Some(until) = &step.until else { return http::send(&self.target, req).await };
        let deadline = Instant::now() + Duration::from_secs_f64(until.timeout_sec.max(0.0)).min(self.poll_cap);
        let interval = Duration::from_secs_f64(until.interval_sec.max(0.0)).min(self.interval_cap);
        loop {
            let answer = http::send(&self.target, req).await?;
            let body = serde_json::from_slice::<Value>(&answer.body).unwrap_or(Value::Null);
            let done = at_path(&body, &until.path) == Some(&until.equals);
            if done || answer.status >= 300 || Instant::now() >= deadline {
                return Ok(answer);
            }
            tokio::time::sleep(interval).await;
        }
    }

    fn judge(&self, case: &Case, step: &Step, answer: &Answer, body: Option<&Value>) -> Ran {
        let error_type = error_type(answer, body);
        if answer.status == 501 || error_type.as_deref() == Some("UnknownOperationException") {
            return Ran { outcome: Outcome::Unimplemented, detail: format!("HTTP {}", answer.status) };
        }
        if step.operation == "VmEndpoint" && step.expect.status == Some(200) {
            let detail = format!("guest application traffic (got HTTP {})", answer.status);
            return Ran { outcome: Outcome::OutOfScope, detail };
        }
        let mut problems = check_expect(&step.expect, answer, error_type.as_deref(), body);
        if let Some(until) = &step.until
            && body.and_then(|b| at_path(b, &until.path)) != Some(&until.equals)
        {
            problems.push(format!("'{}' never became {}", until.path, until.equals));
        }
        problems.extend(self.check_fixture(case, step, answer, error_type.as_deref()));
        match problems.is_empty() {
            true => Ran { outcome: Outcome::Pass, detail: String::new() },
            false => Ran { outcome: Outcome::Fail, detail: problems.join("; ") },
        }
    }

    fn check_fixture(&self, case: &Case, step: &Step, answer: &Answer, error_type: Option<&str>) -> Vec<String> {
        let mut problems = Vec::new();
        let base = self.fixtures.join(&case.id);
        if let Some(meta) = read_json(&base.join(format!("{}.meta.json", step.name))) {
            if let Some(status) = meta.get("status").and_then(Value::as_u64)
                && u64::from(answer.status) != status
            {
                problems.push(format!("status {} but the recording has {status}", answer.status));
            }
            if let Some(want) = meta.get("errorType").and_then(Value::as_str)
                && error_type != Some(want)
            {
                problems.push(format!("error type {error_type:?} but the recording has {want}"));
            }
        }
        let fixture = base.join(format!("{}.json", step.name));
        let Ok(recorded) = std::fs::read(&fixture) else { return problems };
        if let Some(diff) = compare_bodies(&recorded, &answer.body) {
            problems.push(format!("body differs from {}: {diff}", fixture.display()));
        }
        problems
    }

    fn capture(&self, step: &Step, body: Option<&Value>, sc: &mut Scenario) {
        for (name, path) in &step.capture {
            if let Some(v) = body.and_then(|b| at_path(b, path)).filter(|v| !v.is_null()) {
                sc.vars.set(name, as_text(v));
            }
        }
    }

    fn stop(&self, sc: &mut Scenario, outcome: Outcome, detail: String) -> Ran {
        sc.stopped = Some("an earlier step failed".into());
        Ran { outcome, detail }
    }
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}
