//! Executing a parsed Dockerfile: the build's accumulated state (ARG, ENV, WORKDIR, USER) and
//! one handler per instruction. Filesystem steps run in throwaway VMs over the image's layer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::dockerfile::{Dockerfile, Located, Step};
use super::words::{Vars, word, words};
use super::{BuildFailure, BuildInput, ImageFs, copy, host};
use crate::sandbox::{ExecSpec, Isolation, SandboxConfig, StepFs, StepOutcome, run_step};

/// PATH of RUN steps whose image sets none (docker's default).
pub(crate) const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Longest a single step may run.
const STEP_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// Lines of output quoted in a failure.
const TAIL_LINES: usize = 10;
/// Longest quoted output.
const TAIL_CHARS: usize = 1500;

/// The build's state between instructions.
#[derive(Debug)]
pub(crate) struct Builder<'a> {
    input: &'a BuildInput,
    /// Unpacked build context on the host.
    context: PathBuf,
    /// The image's layer (overlay upper dir of every step).
    fs: StepFs,
    global_args: BTreeMap<String, String>,
    args: BTreeMap<String, Option<String>>,
    env: Vec<(String, String)>,
    workdir: String,
    user: Option<String>,
    image: ImageFs,
    steps_run: usize,
}

/// Runs every step of `file`; the image on success.
pub(crate) async fn run(input: &BuildInput, file: &Dockerfile, context: &Path) -> Result<ImageFs, BuildFailure> {
    let mut builder = Builder::new(input, context)?;
    for arg in &file.global_args {
        builder.global_arg(arg)?;
    }
    for step in &file.steps {
        builder.step(step).await?;
    }
    let _ = std::fs::remove_dir_all(&builder.fs.work);
    Ok(builder.finish())
}

/// A failure of the instruction at `at`: `CONTAINER_BUILD_FAILED: <text> (Dockerfile line N): why`.
pub(crate) fn failed<T>(at: &Located<T>, why: impl std::fmt::Display) -> BuildFailure {
    ended(at, format!(": {why}"))
}

/// `CONTAINER_BUILD_FAILED: <text> (Dockerfile line N)<rest>`.
fn ended<T>(at: &Located<T>, rest: impl std::fmt::Display) -> BuildFailure {
    BuildFailure::new("CONTAINER_BUILD_FAILED", format!("{} (Dockerfile line {}){rest}", at.text, at.line))
}

impl<'a> Builder<'a> {
    fn new(input: &'a BuildInput, context: &Path) -> Result<Self, BuildFailure> {
        let fs = StepFs { upper: input.out_dir.join("diff"), work: input.out_dir.join("work"), context: None };
        for dir in [&fs.upper, &fs.work] {
            std::fs::create_dir_all(dir)
                .map_err(|e| BuildFailure::new("INTERNAL_PLATFORM_ERROR", format!("create {}: {e}", dir.display())))?;
        }
        let base = &input.base;
        Ok(Builder {
            input,
            context: context.to_path_buf(),
            fs,
            global_args: BTreeMap::new(),
            args: BTreeMap::new(),
            // The base's config sets PATH, as every distribution image's does, so that
            // `ENV PATH=/x:$PATH` extends it.
            env: {
                let mut env = base.env.clone();
                if !env.iter().any(|(k, _)| k == "PATH") {
                    env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
                }
                env
            },
            workdir: base.workdir.clone().unwrap_or_else(|| "/".into()),
            user: None,
            image: ImageFs { workdir: base.workdir.clone(), ..ImageFs::default() },
            steps_run: 0,
        })
    }

    fn finish(self) -> ImageFs {
        let mut layers = vec![self.fs.upper.clone()];
        layers.extend(self.input.base.layers.iter().cloned());
        ImageFs {
            layers,
            env: self.env,
            user: self.user,
            privileged: self.input.privileged,
            egress_none: self.input.egress_none,
            ..self.image
        }
    }

    /// The unpacked build context on the host.
    pub(crate) fn context(&self) -> &Path {
        &self.context
    }

    /// How the emulator isolates VMs (and so build steps).
    pub(crate) fn isolation(&self) -> Isolation {
        self.input.sandbox.isolation
    }

    /// Variables for substitution: ARG values overlaid by ENV.
    pub(crate) fn vars(&self) -> Vars {
        let args = self.args.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?)));
        args.chain(self.env.iter().cloned()).collect()
    }

    fn global_arg(&mut self, at: &Located<String>) -> Result<(), BuildFailure> {
        let vars: Vars = self.global_args.clone().into_iter().collect();
        for item in words(&at.step, &vars).map_err(|e| failed(at, e))? {
            let (name, value) = item.split_once('=').map_or((item.as_str(), None), |(n, v)| (n, Some(v)));
            self.global_args.insert(name.to_owned(), value.unwrap_or_default().to_owned());
        }
        Ok(())
    }

    async fn step(&mut self, at: &Located<Step>) -> Result<(), BuildFailure> {
        let vars = self.vars();
        let sub = |s: &str| word(s, &vars).map_err(|e| failed(at, e));
        match &at.step {
            Step::Run(cmd) => self.run(at, cmd.argv()).await,
            Step::Copy { add, flags, args } => copy::copy(self, at, *add, flags, args).await,
            Step::Env(args) => {
                let pairs = pairs(args, &vars).map_err(|e| failed(at, e))?;
                pairs.into_iter().for_each(|(k, v)| set(&mut self.env, k, v));
                Ok(())
            }
            Step::Arg(args) => self.arg(at, args, &vars),
            Step::Workdir(dir) => {
                let dir = self.resolve(&sub(dir)?);
                self.workdir.clone_from(&dir);
                self.image.workdir = Some(dir.clone());
                self.mkdir(at, &dir).await
            }
            Step::User(user) => {
                self.user = Some(sub(user)?).filter(|u| !u.is_empty());
                Ok(())
            }
            Step::Cmd(cmd) => {
                self.image.cmd = Some(cmd.argv());
                Ok(())
            }
            Step::Entrypoint(cmd) => {
                self.image.entrypoint = Some(cmd.argv());
                self.image.cmd = None;
                Ok(())
            }
            Step::Label(args) => {
                let pairs = pairs(args, &vars).map_err(|e| failed(at, e))?;
                pairs.into_iter().for_each(|(k, v)| set(&mut self.image.labels, k, v));
                Ok(())
            }
            Step::Expose(ports) => {
                self.image.exposed_ports.extend(words(ports, &vars).map_err(|e| failed(at, e))?);
                Ok(())
            }
            Step::Maintainer => Ok(()),
        }
    }

    fn arg(&mut self, at: &Located<Step>, args: &str, vars: &Vars) -> Result<(), BuildFailure> {
        for item in words(args, vars).map_err(|e| failed(at, e))? {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (item.clone(), self.global_args.get(&item).cloned().or_else(|| automatic_arg(&item))),
            };
            self.args.insert(name, value);
        }
        Ok(())
    }

    /// `path` against WORKDIR, normalized (`..` stops at `/`).
    pub(crate) fn resolve(&self, path: &str) -> String {
        let joined = if path.starts_with('/') { path.to_owned() } else { format!("{}/{path}", self.workdir) };
        let mut parts: Vec<&str> = Vec::new();
        for part in joined.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        format!("/{}", parts.join("/"))
    }

    /// The environment of a RUN: PATH default, ARGs with values, then ENV.
    pub(crate) fn run_env(&self) -> Vec<String> {
        let mut env: Vec<(String, String)> = vec![("PATH".into(), DEFAULT_PATH.into())];
        for (k, v) in self.args.iter().filter_map(|(k, v)| Some((k, v.as_ref()?))) {
            set(&mut env, k.clone(), v.clone());
        }
        for (k, v) in &self.env {
            set(&mut env, k.clone(), v.clone());
        }
        env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    async fn run(&mut self, at: &Located<Step>, argv: Vec<String>) -> Result<(), BuildFailure> {
        let spec = ExecSpec { argv, env: self.run_env(), cwd: self.workdir.clone(), user: self.user.clone() };
        if spec.has_nul() {
            return Err(failed(at, "the command or its environment holds a NUL byte"));
        }
        let outcome = match self.input.sandbox.isolation {
            Isolation::Namespaces => self.in_vm(at, &spec, None).await?,
            Isolation::Unisolated => host::run(&self.input.out_dir, &spec, STEP_TIMEOUT).await.map_err(|e| failed(at, e))?,
        };
        check(at, &outcome, "exited with status")
    }

    async fn mkdir(&mut self, at: &Located<Step>, dir: &str) -> Result<(), BuildFailure> {
        if self.input.sandbox.isolation == Isolation::Unisolated {
            return Ok(()); // Recorded only: unisolated VMs have no image filesystem.
        }
        let argv = vec!["mkdir".into(), "-p".into(), "--".into(), dir.to_owned()];
        let spec = ExecSpec { argv, env: self.run_env(), cwd: "/".into(), user: None };
        let outcome = self.in_vm(at, &spec, None).await?;
        check(at, &outcome, "failed: mkdir -p exited with status")
    }

    /// Runs `spec` in a throwaway VM over the image's layer (with the context when given).
    pub(crate) async fn in_vm(&mut self, at: &Located<Step>, spec: &ExecSpec, context: Option<&Path>) -> Result<StepOutcome, BuildFailure> {
        self.steps_run += 1;
        let vm_id = format!(
            "build-{}-{}-{}-{}",
            safe_name(&self.input.image_name),
            safe_name(&self.input.version),
            self.steps_run,
            uuid::Uuid::new_v4().simple()
        );
        let fs = StepFs { context: context.map(Path::to_path_buf), ..self.fs.clone() };
        let result = run_step(&self.step_config(), &vm_id, &fs, spec, STEP_TIMEOUT).await;
        result.map_err(|e| failed(at, format!("the build sandbox failed: {e}")))
    }

    fn step_config(&self) -> SandboxConfig {
        let mut cfg = self.input.sandbox.clone();
        cfg.set_image(&self.input.base);
        cfg.privileged = self.input.privileged;
        cfg.egress_none = self.input.egress_none;
        cfg
    }
}

/// Fails the step unless it exited 0; quotes the end of its output.
pub(crate) fn check<T>(at: &Located<T>, outcome: &StepOutcome, what: &str) -> Result<(), BuildFailure> {
    if outcome.status == 0 && !outcome.timed_out {
        return Ok(());
    }
    let tail = tail(&outcome.output);
    let how = match outcome.timed_out {
        true => format!("did not finish within {} minutes and was killed", STEP_TIMEOUT.as_secs() / 60),
        false => format!("{what} {}", outcome.status),
    };
    Err(ended(at, if tail.is_empty() { format!(" {how} and printed nothing") } else { format!(" {how}: {tail}") }))
}

/// The last lines of `output` on one line (` / ` between them), control characters dropped.
fn tail(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let joined = lines[lines.len().saturating_sub(TAIL_LINES)..].join(" / ");
    let skip = joined.chars().count().saturating_sub(TAIL_CHARS);
    match skip {
        0 => joined,
        n => format!("…{}", joined.chars().skip(n).collect::<String>()),
    }
}

/// `k=v k2="v 2"` (or the legacy `key value with spaces`) as pairs.
fn pairs(args: &str, vars: &Vars) -> Result<Vec<(String, String)>, String> {
    let first = args.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (key, rest) = args.trim().split_once(char::is_whitespace).ok_or("expected NAME=VALUE pairs or NAME VALUE")?;
        return Ok(vec![(key.to_owned(), word(rest.trim(), vars)?)]);
    }
    words(args, vars)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(format!("{w:?} is not NAME=VALUE")),
        })
        .collect()
}

fn set(list: &mut Vec<(String, String)>, key: String, value: String) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => list.push((key, value)),
    }
}

/// BuildKit's automatic platform ARGs (for this host: the VMs run here).
fn automatic_arg(name: &str) -> Option<String> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    match name {
        "TARGETOS" | "BUILDOS" => Some("linux".into()),
        "TARGETARCH" | "BUILDARCH" => Some(arch.into()),
        "TARGETPLATFORM" | "BUILDPLATFORM" => Some(format!("linux/{arch}")),
        _ => None,
    }
}

/// Letters, digits, `-`, `_` and `.` of `s` (a VM id component), at most 40 of them.
fn safe_name(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).take(40).collect()
}

/// Parses a `--chmod` value (octal).
pub(crate) fn parse_mode(s: &str) -> Option<u32> {
    (!s.is_empty() && s.len() <= 4).then(|| u32::from_str_radix(s, 8).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_in_both_forms() {
        let vars: Vars = [("A".to_string(), "1".to_string())].into_iter().collect();
        assert_eq!(pairs("K=v X=\"a $A\"", &vars), Ok(vec![("K".into(), "v".into()), ("X".into(), "a 1".into())]));
        assert_eq!(pairs("K my value", &vars), Ok(vec![("K".into(), "my value".into())]));
        assert!(pairs("=x", &vars).is_err());
    }

    #[test]
    fn tail_keeps_the_last_lines_on_one_line() {
        let out: String = (1..=20).map(|i| format!("line {i}\r\n")).collect();
        let t = tail(out.as_bytes());
        assert!(t.starts_with("line 11 / ") && t.ends_with("line 20"), "{t}");
        assert!(tail(&[b'x'; 5000]).chars().count() <= TAIL_CHARS + 1);
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("755"), Some(0o755));
        assert_eq!(parse_mode("u+x"), None);
    }
}
