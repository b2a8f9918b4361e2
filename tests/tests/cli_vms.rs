//! The VM-management commands end to end (`launch`, `exec`, `terminate`, `ps`, `gc`,
//! `suspend`, `resume`, `--timeout`): the real binary against an emulator on an ephemeral port.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Env, show, text};

const NO_VM: &str = "microvm-00000000-0000-0000-0000-000000000000";

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn launch(env: &Env) -> String {
    let o = env.output(&["launch", "-q", "--ttl", "5m"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let id = text(&o).trim().to_owned();
    assert!(id.starts_with("microvm-"), "{}", show(&o));
    id
}

async fn state(env: &Env, id: &str) -> String {
    env.vms().await.into_iter().find(|(v, _)| v == id).map(|(_, s)| s).unwrap_or_default()
}

async fn wait_state(env: &Env, id: &str, want: &str) -> String {
    let all = env.wait_vms(5, |v| v.iter().any(|(i, s)| i == id && s == want)).await;
    all.into_iter().find(|(v, _)| v == id).map(|(_, s)| s).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_exec_terminate() {
    let env = Env::start().await;
    let id = launch(&env).await;
    assert_eq!(state(&env, &id).await, "RUNNING");
    let o = env.output(&["exec", &id, "--", "sh", "-c", "echo hi; exit 3"]).await;
    assert_eq!((o.status.code(), text(&o).as_str()), (Some(3), "hi\n"), "{}", show(&o));
    let o = env.output(&["exec", &id, "--", "false"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    for (cmd, code) in [("echo x; kill -9 $$", 137), ("echo x; kill $$", 143)] {
        let o = env.output(&["exec", &id, "--", "sh", "-c", cmd]).await;
        assert_eq!((o.status.code(), text(&o).as_str()), (Some(code), "x\n"), "a death by signal adds nothing: {}", show(&o));
    }
    assert_eq!(state(&env, &id).await, "RUNNING", "exec leaves the VM up");
    let o = env.output(&["terminate", NO_VM, &id]).await;
    assert_eq!(o.status.code(), Some(1), "a missing VM fails the command: {}", show(&o));
    assert!(stderr(&o).contains(NO_VM), "{}", show(&o));
    assert_eq!(text(&o).trim(), id, "the other VM is still terminated: {}", show(&o));
    assert_eq!(wait_state(&env, &id, "TERMINATED").await, "TERMINATED");
    let o = env.output(&["terminate", &id]).await;
    assert_eq!(o.status.code(), Some(0), "terminate is idempotent: {}", show(&o));
    let o = env.output(&["exec", &id, "--", "true"]).await;
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(stderr(&o).contains(&id) && stderr(&o).contains("terminated"), "{}", show(&o));
    let o = env.output(&["shell", NO_VM]).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains("no such VM"), "{}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_json_is_one_object() {
    let env = Env::start().await;
    let o = env.output(&["launch", "--json", "--ttl", "90s"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let id = v["id"].as_str().expect("id").to_owned();
    assert_eq!((v["state"].as_str(), v["image"].as_str(), v["ttl"].as_u64()), (Some("RUNNING"), Some("whim-default"), Some(90)));
    assert!(v["endpoint"].as_str().is_some_and(|e| e.ends_with(".on.aws")), "{v}");
    assert_eq!(state(&env, &id).await, "RUNNING");
}

/// Case C10: a missing VM (125, "no such VM") vs the command's own failure (1), also as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c10_errors_you_can_tell_apart() {
    let env = Env::start().await;
    let o = env.output(&["exec", NO_VM, "--", "true"]).await;
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(stderr(&o).contains("no such VM"), "{}", show(&o));
    let id = launch(&env).await;
    let o = env.output(&["exec", &id, "--", "false"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));

    let o = env.output(&["exec", "--json", NO_VM, "--", "true"]).await;
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["exit_code"], 125);
    assert!(v["error"].as_str().is_some_and(|e| e.contains("no such VM")), "{v}");
    let o = env.output(&["exec", "--json", &id, "--", "sh", "-c", "echo out; exit 1"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!((v["id"].as_str(), v["exit_code"].as_u64(), v["output"].as_str()), (Some(id.as_str()), Some(1), Some("out\n")));
}

/// Case C11: `whim ps | head -1` — a closed stdout gives no panic and no noise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c11_closed_stdout_is_quiet() {
    let env = Env::start().await;
    launch(&env).await;
    launch(&env).await;
    for args in [&["ps"][..], &["ps", "--json"], &["ps", "-a"]] {
        let mut c = env.whim(args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let o = tokio::task::spawn_blocking(move || {
            let mut child = c.spawn().expect("spawn");
            drop(child.stdout.take());
            child.wait_with_output().expect("wait")
        })
        .await
        .expect("join");
        let err = stderr(&o).to_lowercase();
        assert!(!err.contains("panic") && !err.contains("broken pipe"), "{args:?}: {}", show(&o));
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", show(&o));
    }
    let script = format!("'{}' --local --endpoint-url '{}' ps | head -1", common::whim_bin().display(), env.url);
    let mut sh = std::process::Command::new("sh");
    sh.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("WHIM_STATE_DIR", env.state.path());
    sh.env("HOME", env.state.path()).arg("-c").arg(script).stdin(Stdio::null());
    let o = tokio::task::spawn_blocking(move || sh.output().expect("sh")).await.expect("join");
    assert_eq!(text(&o).lines().count(), 1, "{}", show(&o));
    assert!(text(&o).starts_with("VM ID"), "{}", show(&o));
    assert!(stderr(&o).is_empty(), "{}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ps_lists_the_callers_vms() {
    let env = Env::start().await;
    let o = env.output(&["ps", "--json"]).await;
    assert_eq!((o.status.code(), text(&o).trim()), (Some(0), "[]"), "{}", show(&o));
    let id = launch(&env).await;
    let o = env.output(&["ps"]).await;
    let t = text(&o);
    let row = t.lines().find(|l| l.starts_with(&id)).expect(&t);
    assert!(row.contains("RUNNING") && row.contains("whim-default"), "{t}");
    assert!(t.starts_with("VM ID"), "{t}");
    let o = env.output(&["ps", "-q"]).await;
    assert_eq!(text(&o).trim(), id);
    let o = env.output(&["ps", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let rows = v.as_array().expect("an array");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0]["id"].as_str(), rows[0]["state"].as_str()), (Some(id.as_str()), Some("RUNNING")));
    assert!(rows[0]["ttl_left_seconds"].as_u64().is_some_and(|s| s > 200 && s <= 300), "{v}");
    env.output(&["terminate", &id]).await;
    wait_state(&env, &id, "TERMINATED").await;
    let o = env.output(&["ps", "-q"]).await;
    assert_eq!(text(&o), "", "{}", show(&o));
    let o = env.output(&["ps", "-a", "-q"]).await;
    assert_eq!(text(&o).trim(), id, "{}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_asks_refuses_and_removes() {
    let env = Env::start().await;
    let id = launch(&env).await;
    let o = env.output(&["gc"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains("--yes"), "{}", show(&o));
    let o = env.output(&["gc", "--dry-run"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(text(&o).contains(&id), "{}", show(&o));
    let o = env.output(&["gc", "--yes", "--older-than", "1h"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(state(&env, &id).await, "RUNNING", "too young for the filter");
    let o = env.output(&["gc", "--yes"]).await;
    assert_eq!((o.status.code(), text(&o).trim()), (Some(0), id.as_str()), "{}", show(&o));
    assert_eq!(wait_state(&env, &id, "TERMINATED").await, "TERMINATED");
}

/// Case C5, second half: after SIGKILL of `whim run -- sleep 300`, `whim ps` shows the VM
/// and `whim gc --yes` removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c5_sigkilled_run_is_reaped_by_gc() {
    let env = Env::start().await;
    let mut child = env.whim(&["run", "--", "sleep", "300"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let running = env.wait_vms(20, |v| v.iter().any(|(_, s)| s == "RUNNING")).await;
    let (id, _) = running.into_iter().find(|(_, s)| s == "RUNNING").expect("the run's VM is running");
    tokio::time::sleep(Duration::from_millis(300)).await;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).expect("kill");
    let _ = child.wait();
    let o = env.output(&["ps"]).await;
    assert!(text(&o).lines().any(|l| l.starts_with(&id) && l.contains("RUNNING")), "{}", show(&o));
    let o = env.output(&["gc", "--yes"]).await;
    assert_eq!((o.status.code(), text(&o).trim()), (Some(0), id.as_str()), "{}", show(&o));
    assert_eq!(wait_state(&env, &id, "TERMINATED").await, "TERMINATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_resume_round_trip() {
    let env = Env::start().await;
    let id = launch(&env).await;
    let o = env.output(&["exec", &id, "--", "sh", "-c", "echo kept > /tmp/state"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = env.output(&["suspend", &id]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(state(&env, &id).await, "SUSPENDED");
    let o = env.output(&["ps"]).await;
    assert!(text(&o).lines().any(|l| l.starts_with(&id) && l.contains("SUSPENDED")), "{}", show(&o));
    let o = env.output(&["resume", &id]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(state(&env, &id).await, "RUNNING");
    let o = env.output(&["exec", &id, "--", "cat", "/tmp/state"]).await;
    assert_eq!((o.status.code(), text(&o).as_str()), (Some(0), "kept\n"), "{}", show(&o));
    env.output(&["terminate", &id]).await;
    wait_state(&env, &id, "TERMINATED").await;
    let o = env.output(&["suspend", &id]).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains("has been terminated and its state cannot be changed"), "{}", show(&o));
    let o = env.output(&["resume", NO_VM]).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains("no such VM"), "{}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_exit_124() {
    let env = Env::start().await;
    let id = launch(&env).await;
    let started = Instant::now();
    let o = env.output(&["exec", "--timeout", "1s", &id, "--", "sh", "-c", "sleep 4242 & sleep 4242"]).await;
    assert_eq!(o.status.code(), Some(124), "{}", show(&o));
    assert!(stderr(&o).contains("timed out"), "{}", show(&o));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let scan = "{ for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done; } 2>/dev/null | grep -c '^sleep 4242' || true";
    let o = env.output(&["exec", &id, "--", "sh", "-c", scan]).await;
    assert_eq!(text(&o).trim(), "0", "{}", show(&o));
    let o = env.output(&["exec", "--timeout", "5s", &id, "--", "sh", "-c", "echo quick; exit 6"]).await;
    assert_eq!((o.status.code(), text(&o).as_str()), (Some(6), "quick\n"), "{}", show(&o));
    let o = env.output(&["exec", "--timeout", "soon", &id, "--", "true"]).await;
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));

    let started = Instant::now();
    let mut c = env.whim(&["run", "--timeout", "1s", "--", "sh", "-c", "echo begun; sleep 30"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let o = tokio::task::spawn_blocking(move || {
        let mut child = c.spawn().expect("spawn");
        let mut out = String::new();
        child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read");
        let o = child.wait_with_output().expect("wait");
        (out, o)
    })
    .await
    .expect("join");
    assert_eq!((o.1.status.code(), o.0.as_str()), (Some(124), "begun\n"), "{}", show(&o.1));
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    let all = env.wait_vms(5, |v| v.iter().filter(|(i, _)| *i != id).all(|(_, s)| s == "TERMINATED")).await;
    assert!(all.iter().filter(|(i, _)| *i != id).all(|(_, s)| s == "TERMINATED"), "run terminated its VM: {all:?}");
}

/// Case C4 on a live VM: `true | whim exec ID -- cat` and `whim exec ID -- cat </dev/null`
/// end with 0 and no output; `printf x | whim exec ID -- wc -c` prints 1; input a command
/// never reads is never run as a command by the next exec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_empty_closed_tiny_and_unread_stdin() {
    let env = Env::start().await;
    let id = launch(&env).await;
    let piped = |input: &'static [u8], argv: Vec<&str>| {
        let mut c = env.whim(&[&["exec", id.as_str(), "--"][..], &argv].concat());
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        tokio::task::spawn_blocking(move || {
            let mut child = c.spawn().expect("spawn");
            std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input).expect("write");
            child.wait_with_output().expect("wait")
        })
    };
    let o = piped(b"", vec!["cat"]).await.expect("join");
    assert_eq!((o.status.code(), o.stdout.as_slice()), (Some(0), &b""[..]), "{}", show(&o));
    let mut c = env.whim(&["exec", &id, "--", "cat"]);
    c.stdin(Stdio::null());
    let o = tokio::task::spawn_blocking(move || c.output().expect("run")).await.expect("join");
    assert_eq!((o.status.code(), o.stdout.as_slice()), (Some(0), &b""[..]), "{}", show(&o));
    let o = piped(b"x", vec!["wc", "-c"]).await.expect("join");
    assert_eq!((o.status.code(), text(&o).trim()), (Some(0), "1"), "{}", show(&o));
    let o = piped(b"touch /tmp/pwned\n", vec!["true"]).await.expect("join");
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = env.output(&["exec", &id, "--", "sh", "-c", "ls /tmp/pwned 2>/dev/null; echo next"]).await;
    assert_eq!((o.status.code(), text(&o).as_str()), (Some(0), "next\n"), "{}", show(&o));
    let _ = env.output(&["terminate", &id]).await;
}
