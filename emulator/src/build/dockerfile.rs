//! The Dockerfile parser: logical lines (comments, `\` continuations), instructions, exec-form
//! JSON arrays and flags, checked against what the emulator's builder supports.
//!
//! Variables are not substituted here: ARG and ENV values accumulate while the build runs, so
//! [`super::steps`] substitutes each instruction when it executes.

/// A command as written: shell form (run by `/bin/sh -c`) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// `RUN make all`.
    Shell(String),
    /// `RUN ["make", "all"]`.
    Exec(Vec<String>),
}

impl Command {
    /// The argv to execute.
    pub(crate) fn argv(&self) -> Vec<String> {
        match self {
            Command::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
            Command::Exec(argv) => argv.clone(),
        }
    }
}

/// One supported instruction after FROM, arguments still unsubstituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// `RUN`.
    Run(Command),
    /// `COPY` (or `ADD` when `add`), flags as `(name, raw value)`, then the raw arguments.
    Copy {
        /// ADD rather than COPY.
        add: bool,
        /// `--chown`, `--chmod`, … as written.
        flags: Vec<(String, String)>,
        /// Sources and destination (words or a JSON array).
        args: String,
    },
    /// `ENV`.
    Env(String),
    /// `ARG`.
    Arg(String),
    /// `WORKDIR`.
    Workdir(String),
    /// `USER`.
    User(String),
    /// `CMD` (recorded).
    Cmd(Command),
    /// `ENTRYPOINT` (recorded).
    Entrypoint(Command),
    /// `LABEL` (recorded).
    Label(String),
    /// `EXPOSE` (recorded).
    Expose(String),
    /// `MAINTAINER` (deprecated; accepted and ignored).
    Maintainer,
}

/// A step with where it came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located<T> {
    /// 1-based Dockerfile line where the instruction starts.
    pub line: usize,
    /// The instruction as written, on one line (for messages).
    pub text: String,
    /// What it does.
    pub step: T,
}

/// A parsed, supported Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dockerfile {
    /// `ARG`s before FROM (their raw arguments).
    pub global_args: Vec<Located<String>>,
    /// The instructions after FROM.
    pub steps: Vec<Located<Step>>,
}

/// Instructions a Dockerfile may use that this builder refuses (named in the error).
const UNSUPPORTED: [&str; 5] = ["HEALTHCHECK", "ONBUILD", "VOLUME", "SHELL", "STOPSIGNAL"];

/// Parses `text`; the error is one sentence naming the line.
pub(crate) fn parse(text: &str) -> Result<Dockerfile, String> {
    let mut file = Dockerfile { global_args: Vec::new(), steps: Vec::new() };
    let mut seen_from = false;
    for (line, raw) in logical_lines(text) {
        let (keyword, args) = split_keyword(&raw);
        let upper = keyword.to_ascii_uppercase();
        let at = |what: String| format!("{what} (Dockerfile line {line})");
        let text = one_line(&raw);
        match (upper.as_str(), seen_from) {
            ("FROM", false) => {
                check_from(args).map_err(at)?;
                seen_from = true;
            }
            ("FROM", true) => {
                return Err(at("a second FROM: multi-stage builds are not supported by the emulator's builder".into()));
            }
            ("ARG", false) => file.global_args.push(Located { line, text, step: args.to_owned() }),
            (_, false) => return Err(at(format!("{upper} before FROM: the Dockerfile must start with FROM (ARG may precede it)"))),
            _ => {
                let step = step(&upper, args).map_err(at)?;
                file.steps.push(Located { line, text, step });
            }
        }
    }
    if !seen_from {
        return Err("the Dockerfile has no FROM instruction".into());
    }
    Ok(file)
}

/// Joins `\` continuations and drops comments and blank lines; yields (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let (start, mut acc) = current.take().unwrap_or((i + 1, String::new()));
        let body = line.trim_end();
        match body.strip_suffix('\\') {
            Some(head) => {
                acc.push_str(head);
                current = Some((start, acc));
            }
            None => {
                acc.push_str(body);
                out.push((start, acc));
            }
        }
    }
    out.extend(current);
    out
}

fn split_keyword(line: &str) -> (&str, &str) {
    let line = line.trim();
    match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], line[i..].trim()),
        None => (line, ""),
    }
}

fn one_line(raw: &str) -> String {
    let squeezed: Vec<&str> = raw.split_whitespace().collect();
    let joined = squeezed.join(" ");
    match joined.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

fn check_from(args: &str) -> Result<(), String> {
    let (flags, rest) = split_flags(args);
    if let Some((name, _)) = flags.iter().find(|(n, _)| n != "platform") {
        return Err(format!("FROM --{name} is not supported"));
    }
    match rest.split_whitespace().collect::<Vec<_>>()[..] {
        [_] => Ok(()),
        [_, as_kw, _] if as_kw.eq_ignore_ascii_case("AS") => Ok(()),
        _ => Err("FROM takes one image name (optionally `AS name`)".into()),
    }
}

fn step(keyword: &str, args: &str) -> Result<Step, String> {
    let needs_args = |s: Step| if args.is_empty() { Err(format!("{keyword} needs arguments")) } else { Ok(s) };
    match keyword {
        "RUN" => run_step(args),
        "COPY" | "ADD" => copy_step(keyword == "ADD", args),
        "ENV" => needs_args(Step::Env(args.into())),
        "ARG" => needs_args(Step::Arg(args.into())),
        "WORKDIR" => needs_args(Step::Workdir(args.into())),
        "USER" => needs_args(Step::User(args.into())),
        "CMD" => needs_args(Step::Cmd(command(args))),
        "ENTRYPOINT" => needs_args(Step::Entrypoint(command(args))),
        "LABEL" => needs_args(Step::Label(args.into())),
        "EXPOSE" => needs_args(Step::Expose(args.into())),
        "MAINTAINER" => Ok(Step::Maintainer),
        other if UNSUPPORTED.contains(&other) => {
            Err(format!("{other} is not supported by the emulator's builder; remove it from the Dockerfile"))
        }
        other => Err(format!("unknown instruction {other}")),
    }
}

fn run_step(args: &str) -> Result<Step, String> {
    let (flags, rest) = split_flags(args);
    if let Some((name, _)) = flags.first() {
        return Err(format!("RUN --{name} is not supported by the emulator's builder"));
    }
    if rest.is_empty() {
        return Err("RUN needs a command".into());
    }
    if has_heredoc(rest) {
        return Err("heredocs (<<EOF) are not supported by the emulator's builder".into());
    }
    Ok(Step::Run(command(rest)))
}

fn copy_step(add: bool, args: &str) -> Result<Step, String> {
    let name = if add { "ADD" } else { "COPY" };
    let (flags, rest) = split_flags(args);
    for (flag, _) in &flags {
        match flag.as_str() {
            "chown" | "chmod" | "link" => {}
            "from" => return Err(format!("{name} --from is not supported: multi-stage builds are not supported")),
            other => return Err(format!("{name} --{other} is not supported by the emulator's builder")),
        }
    }
    if has_heredoc(rest) {
        return Err("heredocs (<<EOF) are not supported by the emulator's builder".into());
    }
    Ok(Step::Copy { add, flags, args: rest.to_owned() })
}

/// Leading `--name=value` (or bare `--name`) flags, and the rest of the arguments.
pub(crate) fn split_flags(args: &str) -> (Vec<(String, String)>, &str) {
    let mut flags = Vec::new();
    let mut rest = args.trim_start();
    while let Some(after) = rest.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let flag = &after[..end];
        let (name, value) = flag.split_once('=').unwrap_or((flag, ""));
        flags.push((name.to_ascii_lowercase(), value.to_owned()));
        rest = after[end..].trim_start();
    }
    (flags, rest)
}

/// Exec form when `args` is a JSON array of strings, shell form otherwise (as docker does).
pub(crate) fn command(args: &str) -> Command {
    match exec_form(args) {
        Some(argv) => Command::Exec(argv),
        None => Command::Shell(args.to_owned()),
    }
}

/// `args` as a JSON array of strings, if it is one.
pub(crate) fn exec_form(args: &str) -> Option<Vec<String>> {
    if !args.trim_start().starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(args.trim()).ok()
}

/// `<<WORD`, `<<-WORD` or `<<"WORD"` that is not part of a `<<<` here-string.
fn has_heredoc(args: &str) -> bool {
    let bytes = args.as_bytes();
    (0..bytes.len().saturating_sub(2)).any(|i| {
        let prev_ok = i == 0 || bytes[i - 1] != b'<';
        let mut j = i + 2;
        if !(prev_ok && bytes[i] == b'<' && bytes[i + 1] == b'<') {
            return false;
        }
        while j < bytes.len() && matches!(bytes[j], b'-' | b'"' | b'\'') {
            j += 1;
        }
        j < bytes.len() && (bytes[j].is_ascii_alphabetic() || bytes[j] == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(text: &str) -> Vec<(usize, Step)> {
        parse(text).expect("parses").steps.into_iter().map(|s| (s.line, s.step)).collect()
    }

    #[test]
    fn parses_the_supported_instructions() {
        let shell = |s: &str| Command::Shell(s.into());
        let cases: &[(&str, Vec<(usize, Step)>)] = &[
            ("FROM x\nRUN true", vec![(2, Step::Run(shell("true")))]),
            ("from x\nrun echo hi", vec![(2, Step::Run(shell("echo hi")))]),
            ("FROM x\nRUN [\"a\", \"b c\"]", vec![(2, Step::Run(Command::Exec(vec!["a".into(), "b c".into()])))]),
            ("FROM x\nRUN [not json", vec![(2, Step::Run(shell("[not json")))]),
            ("FROM x\nRUN a \\\n  && b", vec![(2, Step::Run(shell("a   && b")))]),
            ("FROM x\nRUN a \\\n# comment\n\n  b", vec![(2, Step::Run(shell("a   b")))]),
            ("# syntax=docker/dockerfile:1\nFROM x\n\n# c\nENV A=1", vec![(5, Step::Env("A=1".into()))]),
            ("FROM x AS build\nWORKDIR /app", vec![(2, Step::Workdir("/app".into()))]),
            ("FROM --platform=linux/arm64 x\nUSER 1000:1000", vec![(2, Step::User("1000:1000".into()))]),
            (
                "FROM x\nCOPY --chown=a:b --chmod=755 src /dst/",
                vec![(
                    2,
                    Step::Copy {
                        add: false,
                        flags: vec![("chown".into(), "a:b".into()), ("chmod".into(), "755".into())],
                        args: "src /dst/".into(),
                    },
                )],
            ),
            ("FROM x\nCMD [\"sleep\", \"1\"]", vec![(2, Step::Cmd(Command::Exec(vec!["sleep".into(), "1".into()])))]),
            (
                "FROM x\nLABEL a=b\nEXPOSE 80\nMAINTAINER me",
                vec![(2, Step::Label("a=b".into())), (3, Step::Expose("80".into())), (4, Step::Maintainer)],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&steps(text), want, "{text:?}");
        }
    }

    #[test]
    fn args_before_from_are_global() {
        let file = parse("ARG V=1\nFROM base:$V\nARG V").expect("parses");
        assert_eq!(file.global_args[0].step, "V=1");
        assert_eq!(file.steps[0].step, Step::Arg("V".into()));
    }

    #[test]
    fn refuses_what_the_builder_cannot_do() {
        let cases: &[(&str, &str)] = &[
            ("FROM x\nHEALTHCHECK CMD true", "HEALTHCHECK is not supported"),
            (
                "FROM x\nRUN true\nVOLUME /data",
                "VOLUME is not supported by the emulator's builder; remove it from the Dockerfile (Dockerfile line 3)",
            ),
            ("FROM x\nSHELL [\"bash\"]", "SHELL"),
            ("FROM x\nSTOPSIGNAL 9", "STOPSIGNAL"),
            ("FROM x\nONBUILD RUN x", "ONBUILD"),
            ("FROM x\nFROM y", "multi-stage"),
            ("FROM x\nCOPY --from=a b c", "--from"),
            ("RUN x", "RUN before FROM"),
            ("", "no FROM"),
            ("FROM x\nBOGUS y", "unknown instruction BOGUS"),
            ("FROM x\nRUN <<EOF\necho\nEOF", "heredocs"),
            ("FROM x\nRUN --mount=type=cache,target=/x true", "RUN --mount"),
            ("FROM x\nENV", "ENV needs arguments"),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn here_strings_are_not_heredocs() {
        assert!(!has_heredoc("cat <<<\"$x\""));
        assert!(has_heredoc("cat <<-'END' > f"));
    }
}
