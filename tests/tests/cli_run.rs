//! `whim run` end to end: the real binary against an emulator on an ephemeral port.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::{Env, show, text};
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_propagate() {
    let env = Env::start().await;
    for (cmd, code) in [("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("kill -9 $$", 137)] {
        let o = env.output(&["run", "--", "sh", "-c", cmd]).await;
        assert_eq!(o.status.code(), Some(code), "{cmd}: {}", show(&o));
    }
    let all = env.wait_vms(5, |v| v.iter().all(|(_, s)| s == "TERMINATED")).await;
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|(_, s)| s == "TERMINATED"), "every VM terminated: {all:?}");
}

/// Case C1: large output with a non-zero exit, five times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_million_lines_intact_five_times() {
    let env = Env::start().await;
    for _ in 0..5 {
        let o = env.output(&["run", "--", "sh", "-c", "seq 1 5000000; exit 3"]).await;
        assert_eq!(o.status.code(), Some(3), "{}", show(&o));
        let expected: Vec<u8> = (1..=5_000_000u32).flat_map(|i| format!("{i}\n").into_bytes()).collect();
        assert!(o.stdout == expected, "output differs: {} bytes vs {}; {}", o.stdout.len(), expected.len(), show(&o));
    }
}

/// Case C2: 1 MiB of random bytes, compared with a sha256 computed in the VM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_output_is_byte_exact() {
    let env = Env::start().await;
    let o = env.output(&["run", "--", "sh", "-c", "head -c 1048576 /dev/urandom > /tmp/r; cat /tmp/r; sha256sum /tmp/r"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(o.stdout.len(), 1_048_576 + 64 + "  /tmp/r\n".len(), "{}", show(&o));
    let (data, sum) = o.stdout.split_at(1_048_576);
    let local: String = Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(String::from_utf8_lossy(&sum[..64]), local);
}

/// Case C3 and output without a trailing newline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newlines_are_not_translated() {
    let env = Env::start().await;
    let o = env.output(&["run", "--", "printf", "a\\n"]).await;
    assert_eq!(o.stdout, b"a\n", "{}", show(&o));
    let o = env.output(&["run", "--", "printf", "no newline\\r\\nat end"]).await;
    assert_eq!(o.stdout, b"no newline\r\nat end", "{}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_are_quoted_exactly_once() {
    let env = Env::start().await;
    let args = ["it's", "a  b", "$HOME", "*", "\"q\"", "`id`", "$(touch /tmp/pwned)", "tab\there", "new\nline", "ünï", ";", "\\"];
    let mut argv = vec!["run", "--", "sh", "-c", "printf '%s|' \"$@\"; ls /tmp/pwned 2>/dev/null || printf ok", "sh"];
    argv.extend(args);
    let o = env.output(&argv).await;
    let expected = format!("{}|ok", args.join("|"));
    assert_eq!(text(&o), expected, "{}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_is_forwarded_when_not_a_terminal() {
    let env = Env::start().await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut c = env.whim(&["run", "--", "sha256sum"]);
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let input = data.clone();
    let o = tokio::task::spawn_blocking(move || {
        let mut child = c.spawn().expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
        let o = child.wait_with_output().expect("wait");
        writer.join().expect("join").expect("write");
        o
    })
    .await
    .expect("join");
    let local: String = Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(text(&o).starts_with(&local), "{}", show(&o));
}

/// Case C4's rules for `run`: empty and closed stdin end at once with no output; one byte
/// arrives as one byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_closed_and_tiny_stdin() {
    let env = Env::start().await;
    let o = env.output(&["run", "--", "cat"]).await; // stdin is /dev/null: closed at once
    assert_eq!((o.status.code(), o.stdout.as_slice()), (Some(0), &b""[..]), "{}", show(&o));
    for (input, cmd, want) in [(&b""[..], "cat", &b""[..]), (b"x", "wc -c", b"1\n")] {
        let mut c = env.whim(&["run", "--", "sh", "-c", cmd]);
        c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let input = input.to_vec();
        let o = tokio::task::spawn_blocking(move || {
            let mut child = c.spawn().expect("spawn");
            std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &input).expect("write");
            child.wait_with_output().expect("wait")
        })
        .await
        .expect("join");
        assert_eq!((o.status.code(), o.stdout.as_slice()), (Some(0), want), "{cmd}: {}", show(&o));
    }
}

/// Case C5 (the SIGTERM half) and its siblings: each terminating signal ends the VM before
/// whim exits, with the shell's 128+n code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_signals_terminate_the_vm() {
    use nix::sys::signal::Signal;
    let env = Env::start().await;
    for (sig, code) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130), (Signal::SIGHUP, 129)] {
        let mut c = env.whim(&["run", "--", "sleep", "300"]);
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let child = c.spawn().expect("spawn");
        let running = env.wait_vms(20, |v| v.iter().any(|(_, s)| s == "RUNNING")).await;
        assert!(running.iter().any(|(_, s)| s == "RUNNING"), "{sig}: {running:?}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).expect("kill");
        let o = tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait")).await.expect("join");
        assert_eq!(o.status.code(), Some(code), "{sig}: {}", show(&o));
        // Terminated before whim exited: no waiting needed.
        let v = env.vms().await;
        assert!(v.iter().all(|(_, s)| s == "TERMINATED" || s == "TERMINATING"), "{sig}: {v:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_terminates_the_vm() {
    let env = Env::start().await;
    let o = env.output(&["run", "--ttl", "2s", "--", "sleep", "30"]).await;
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("connection"), "{}", show(&o));
    // The shell dies with the VM; the state may pass TERMINATING on its way.
    let v = env.wait_vms(5, |v| v.iter().all(|(_, s)| s == "TERMINATED")).await;
    assert!(!v.is_empty() && v.iter().all(|(_, s)| s == "TERMINATED"), "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_sandbox_refuses_mount_and_user_namespaces() {
    let env = Env::start().await;
    let o = env
        .output(&["run", "--", "sh", "-c", "mount -t tmpfs x /mnt 2>&1; echo mount=$?; unshare -U true 2>&1; echo unshare=$?; id -u"])
        .await;
    let t = text(&o);
    assert!(t.contains("mount=32") || t.contains("mount=1"), "{t}");
    assert!(!t.contains("unshare=0") && t.contains("unshare="), "{t}");
    assert!(t.contains("Operation not permitted") || t.contains("permission denied"), "{t}");
    assert!(t.trim_end().ends_with('0'), "root inside: {t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_token_never_appears_in_output_at_trace() {
    let env = Env::start().await;
    let mut c = env.whim(&["-vv", "run", "--", "echo", "hello"]);
    c.env("RUST_LOG", "trace");
    let o = tokio::task::spawn_blocking(move || c.output().expect("run")).await.expect("join");
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let tokens = env.emu.issued_tokens();
    assert!(!tokens.is_empty(), "a token was minted");
    let all = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
    assert!(all.len() > 10_000, "trace logging was on ({} bytes)", all.len());
    for t in tokens {
        assert!(t.len() > 100);
        let hay = String::from_utf8_lossy(&all);
        assert!(!hay.contains(&t) && !hay.contains(&t[..40]) && !hay.contains(&t[t.len() - 40..]), "token leaked");
    }
    assert!(!String::from_utf8_lossy(&all).contains(whim_emulator::LOCAL_SECRET_ACCESS_KEY), "secret key leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_image_is_a_clear_125() {
    let env = Env::start().await;
    let o = env.output(&["run", "--image", "no-such-image", "--", "true"]).await;
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-image"), "{}", show(&o));
    let o = env.output(&["run", "--ttl", "9h", "--", "true"]).await;
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("8h"), "{}", show(&o));
    assert!(o.status.signal().is_none());
}
