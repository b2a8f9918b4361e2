//! Shared harness for end-to-end tests: an in-process emulator on an ephemeral
//! loopback port and the real `whim` binary pointed at it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aws_sdk_lambdamicrovms::Client;

/// The `whim` binary cargo built for these tests.
pub fn whim_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("whim")
}

/// A running emulator and a state dir for `whim`.
pub struct Env {
    pub emu: whim_emulator::Emulator,
    pub url: String,
    pub state: tempfile::TempDir,
}

impl Env {
    /// Starts an emulator whose sandboxes re-execute the `whim` binary as setup helper.
    pub async fn start() -> Env {
        let mut cfg = whim_emulator::EmulatorConfig::local_default();
        cfg.sandbox.helper_exe = whim_bin();
        let emu = whim_emulator::Emulator::start(cfg).await.expect("emulator starts");
        let url = emu.endpoint_url();
        Env { emu, url, state: tempfile::tempdir().expect("tempdir") }
    }

    /// `whim --local --endpoint-url URL ARGS…` with a clean environment.
    pub fn whim(&self, args: &[&str]) -> Command {
        let mut c = Command::new(whim_bin());
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.state.path())
            .env("WHIM_STATE_DIR", self.state.path())
            .args(["--local", "--endpoint-url", &self.url])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Runs `whim` to completion off the async runtime.
    pub async fn output(&self, args: &[&str]) -> Output {
        let mut c = self.whim(args);
        tokio::task::spawn_blocking(move || c.output().expect("whim runs")).await.expect("join")
    }

    /// An SDK client on the emulator with the fixed local credentials.
    pub async fn client(&self) -> Client {
        let creds = local_credentials();
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new(whim_emulator::LOCAL_REGION))
            .credentials_provider(creds)
            .endpoint_url(&self.url)
            .load()
            .await;
        Client::new(&sdk)
    }

    /// An S3 client on the emulator (path style, the local key pair).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let creds = local_credentials();
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(whim_emulator::LOCAL_REGION))
            .credentials_provider(creds)
            .endpoint_url(&self.url)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Every VM the emulator knows, with its state.
    pub async fn vms(&self) -> Vec<(String, String)> {
        let c = self.client().await;
        let mut out = Vec::new();
        let mut pages = c.list_microvms().into_paginator().send();
        while let Some(p) = pages.next().await {
            for i in p.expect("list").items() {
                out.push((i.microvm_id().to_owned(), i.state().as_str().to_owned()));
            }
        }
        out
    }

    /// Waits until `f` holds for the VM list (at most `secs`).
    pub async fn wait_vms(&self, secs: u64, f: impl Fn(&[(String, String)]) -> bool) -> Vec<(String, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.vms().await;
            if f(&v) || tokio::time::Instant::now() > deadline {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The emulator's fixed local key pair.
fn local_credentials() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(whim_emulator::LOCAL_ACCESS_KEY_ID, whim_emulator::LOCAL_SECRET_ACCESS_KEY, None, None, "test")
}

/// stdout as text.
pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A readable summary for assertion messages.
pub fn show(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    let tail: String = out.chars().rev().take(400).collect::<Vec<_>>().into_iter().rev().collect();
    format!("status {:?}\nstdout (tail): {tail}\nstderr: {}", o.status, String::from_utf8_lossy(&o.stderr))
}
