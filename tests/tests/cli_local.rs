//! The README's first command: `whim --local run …` with no AWS account, starting the
//! emulator in the background and reusing it.

mod common;

use std::process::Command;

use common::{show, whim_bin};

fn whim(state: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(whim_bin())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", state)
        .env("WHIM_STATE_DIR", state)
        .args(args)
        .output()
        .expect("whim runs")
}

#[test]
fn local_needs_no_account_and_reuses_the_emulator() {
    let state = tempfile::tempdir().expect("tempdir");
    let o = whim(state.path(), &["--local", "run", "--", "sh", "-c", "uname -a; id"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("uid=0(root)"), "{}", show(&o));
    let first = std::fs::read_to_string(state.path().join("emulator.json")).expect("state recorded");
    let o = whim(state.path(), &["--local", "run", "--", "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(std::fs::read_to_string(state.path().join("emulator.json")).expect("state"), first, "the emulator was reused");
    let o = whim(state.path(), &["--local", "version"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("local emulator"), "{}", show(&o));
    let o = whim(state.path(), &["emulator", "stop"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(!state.path().join("emulator.json").exists());
}
