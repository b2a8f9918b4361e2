//! The `whim` binary itself: its help renders, and a closed stdout or stderr is never a
//! panic. (Being an integration test of this package also makes `cargo test` build the
//! binary that the end-to-end tests in `tests/` run.)

use std::process::{Command, Stdio};

fn whim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_whim"))
}

#[test]
fn help_and_version_render() {
    let o = whim().arg("--help").output().expect("run");
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("put"));
    let o = whim().args(["version"]).output().expect("run");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("whim "));
}

/// Runs `args` with stdout and stderr as pipes whose read ends are already closed.
fn closed_pipes(args: &[&str]) -> std::process::Output {
    let (r1, w1) = std::io::pipe().expect("pipe");
    let (r2, w2) = std::io::pipe().expect("pipe");
    drop((r1, r2));
    let mut c = whim();
    c.args(args).stdin(Stdio::null()).stdout(w1).stderr(w2).env("WHIM_STATE_DIR", std::env::temp_dir().join("whim-closed-pipes"));
    c.output().expect("run")
}

#[test]
fn closed_stdout_and_stderr_are_not_a_panic() {
    for args in
        [&["version"][..], &["completions", "bash"], &["exec", "--endpoint-url", "http://127.0.0.1:9", "--local", "x", "--", "true"]]
    {
        let o = closed_pipes(args);
        assert_ne!(o.status.code(), Some(101), "whim {args:?} panicked");
        assert!(o.status.code().is_some(), "whim {args:?} died of a signal");
    }
}
