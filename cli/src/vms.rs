//! The VM-management commands: `launch`, `terminate`, `exec`, `ps`, `gc`, `suspend`,
//! `resume`. `ps` and `gc` only see the caller's VMs (whim_core::fleet's ownership rule);
//! the id-taking commands act on the VM the user names.

use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use serde_json::json;
use whim_core::fleet::{GcFilter, VmEntry};
use whim_core::ttl::{format_short, parse_duration};
use whim_tokio::{Error, LaunchOptions, Manager, Ttl};

use crate::cli::{Global, fail};
use crate::signals::Terminators;
use crate::{EXIT_INTERRUPTED, aws, run};

/// Writes `text` to stdout. A closed stdout (`whim ps | head -1`) is not an error and
/// prints nothing more.
pub fn emit(text: &str) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "whim: cannot write to stdout: {e}");
            1
        }
    }
}

pub fn json_line(v: &serde_json::Value) -> String {
    format!("{v}\n")
}

/// A duration option (`90s`, `25m`, `2h`).
pub fn duration_opt(flag: &str, text: Option<&str>) -> anyhow::Result<Option<Duration>> {
    let parsed = text.map(parse_duration).transpose();
    parsed.map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

/// `whim launch`: start a VM, print its id; it runs until its TTL, `terminate` or `gc`.
pub async fn launch(g: &Global, image: Option<String>, ttl: Option<String>, quiet: bool, json: bool) -> anyhow::Result<u8> {
    let mut sigs = Terminators::install()?;
    let ttl = ttl.as_deref().map(Ttl::parse).transpose()?.unwrap_or_default();
    let mgr = aws::manager(g).await?;
    let image = image.unwrap_or_else(|| aws::DEFAULT_IMAGE.to_owned());
    let mut code = None;
    let launched = mgr.launch_until(&image, LaunchOptions { ttl, ..Default::default() }, async { code = Some(sigs.recv().await) });
    let mut sb = match launched.await {
        Err(Error::Interrupted) => return Ok(code.unwrap_or(EXIT_INTERRUPTED)),
        other => other?,
    };
    sb.close().await;
    let id = sb.id().to_owned();
    let text = if json {
        json_line(&json!({"id": id, "state": "RUNNING", "endpoint": sb.endpoint(), "image": image, "ttl": ttl.duration().as_secs()}))
    } else {
        if !quiet && std::io::stderr().is_terminal() {
            eprintln!(
                "whim: VM {id} runs for {}: `whim exec {id} -- CMD`, `whim shell {id}`, `whim terminate {id}`",
                format_short(ttl.duration())
            );
        }
        format!("{id}\n")
    };
    // Nobody learns the id of a VM whose id could not be printed: do not leave it running.
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        let _ = sb.terminate().await;
        eprintln!("whim: cannot print the id of VM {id} ({e}), so it was terminated");
        return Ok(1);
    }
    Ok(0)
}

/// `whim terminate ID...`: idempotent; a VM that does not exist is reported and the
/// others are still terminated.
pub async fn terminate(g: &Global, ids: Vec<String>) -> anyhow::Result<u8> {
    let mgr = aws::manager(g).await?;
    let mut code = 0;
    for id in ids {
        match mgr.terminate(&id).await {
            Ok(()) => code = code.max(emit(&format!("{id}\n"))),
            Err(e) => {
                eprintln!("whim: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `whim exec ID -- CMD`: `run`'s output, stdin and exit-code rules on an existing VM,
/// which stays up. With `json`, one object `{id, exit_code, output}` (or `error`).
pub async fn exec(g: &Global, id: String, timeout: Option<String>, json: bool, cmd: Vec<std::ffi::OsString>) -> u8 {
    let report = |code: u8, output: Option<&[u8]>, error: Option<String>| {
        let mut v = json!({"id": id, "exit_code": code});
        if let Some(o) = output {
            v["output"] = String::from_utf8_lossy(o).into();
        }
        if let Some(e) = error {
            v["error"] = e.into();
        }
        emit(&json_line(&v)).max(code)
    };
    let failed = |e: &dyn std::fmt::Display| if json { report(crate::EXIT_WHIM_FAILED, None, Some(e.to_string())) } else { fail(e) };
    let timeout = match duration_opt("--timeout", timeout.as_deref()) {
        Ok(t) => t,
        Err(e) => return failed(&e),
    };
    let mut sigs = match Terminators::install() {
        Ok(s) => s,
        Err(e) => return failed(&format!("cannot install signal handlers: {e}")),
    };
    let mgr = match aws::manager(g).await {
        Ok(m) => m,
        Err(e) => return failed(&format!("{e:#}")),
    };
    let mut sb = match mgr.attach(&id).await {
        Ok(sb) => sb,
        Err(e) => return failed(&e),
    };
    sb.set_exec_timeout(timeout);
    let argv: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
    let code = if json {
        let mut out = Vec::new();
        let r = tokio::select! {
            r = run::exec_to(&mut sb, &argv, &mut out) => r,
            code = sigs.recv() => Ok(code),
        };
        match r {
            Ok(code) => report(code, Some(&out), None),
            Err(e) => report(run::failure_code(&e), Some(&out), Some(e.to_string())),
        }
    } else {
        tokio::select! {
            code = run::exec(&mut sb, &argv) => code,
            code = sigs.recv() => code,
        }
    };
    sb.close().await;
    code
}

/// `whim ps`: the caller's VMs like `docker ps`.
pub async fn ps(g: &Global, quiet: bool, json: bool, all: bool) -> anyhow::Result<u8> {
    let mgr = aws::manager(g).await?;
    let vms = mgr.list(all).await?;
    let now = unix_now();
    if json {
        let rows: Vec<serde_json::Value> = vms.iter().map(|v| vm_json(v, now)).collect();
        return Ok(emit(&json_line(&serde_json::Value::Array(rows))));
    }
    if quiet {
        return Ok(emit(&vms.iter().map(|v| format!("{}\n", v.id)).collect::<String>()));
    }
    Ok(emit(&table(&vms, now)))
}

pub fn unix_now() -> Duration {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
}

fn vm_json(v: &VmEntry, now: Duration) -> serde_json::Value {
    json!({
        "id": v.id,
        "state": v.state.as_str(),
        "image": v.image_name(),
        "image_arn": redact(&v.image_arn),
        "image_version": v.image_version,
        "started_at": v.started_at.as_secs(),
        "age_seconds": v.age(now).as_secs(),
        "ttl_left_seconds": v.ttl_left(now).map(|d| d.as_secs()),
    })
}

/// With `WHIM_REDACT_ACCOUNT=1`, `text` with every 12-digit account id masked.
pub fn redact(text: &str) -> String {
    if std::env::var_os("WHIM_REDACT_ACCOUNT").is_none_or(|v| v != "1") {
        return text.to_owned();
    }
    mask_accounts(text)
}

/// Every run of exactly 12 digits (an account id, in an ARN or a bucket name) masked.
fn mask_accounts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    for c in text.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        out.push_str(if digits.len() == 12 { "************" } else { &digits });
        digits.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

/// The `docker ps`-like table.
fn table(vms: &[VmEntry], now: Duration) -> String {
    let mut rows = vec![vec!["VM ID".to_owned(), "STATE".into(), "AGE".into(), "IMAGE".into(), "TTL LEFT".into()]];
    for v in vms {
        let ttl = v.ttl_left(now).map_or_else(|| "-".to_owned(), format_short);
        rows.push(vec![v.id.clone(), v.state.as_str().to_owned(), format_short(v.age(now)), v.image_name().to_owned(), ttl]);
    }
    columns(&rows)
}

/// Rows as left-aligned columns three spaces apart (the first row is the header).
pub fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..n).map(|c| rows.iter().map(|r| r.get(c).map_or(0, |x| x.chars().count())).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            format!("{}\n", cells.join("   ").trim_end())
        })
        .collect()
}

/// `whim gc`: terminate the caller's VMs (older than `older_than`), after confirmation.
pub async fn gc(g: &Global, older_than: Option<String>, yes: bool, dry_run: bool) -> anyhow::Result<u8> {
    let filter = GcFilter { older_than: duration_opt("--older-than", older_than.as_deref())? };
    let mgr = aws::manager(g).await?;
    let plan = mgr.gc_plan(filter).await?;
    let now = unix_now();
    if plan.is_empty() {
        eprintln!("whim: no VMs to terminate");
        return Ok(0);
    }
    if dry_run {
        eprintln!("whim: would terminate {} VM(s) (dry run):", plan.len());
        return Ok(emit(&table(&plan, now)));
    }
    if !yes && !confirm(&plan, now)? {
        return Ok(1);
    }
    terminate_plan(&mgr, plan).await
}

/// Asks y/N on the terminal; refuses without one.
fn confirm(plan: &[VmEntry], now: Duration) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("refusing to terminate {} VM(s) without confirmation and no terminal to ask on: pass --yes", plan.len());
    }
    eprint!("{}Terminate these {} VM(s)? [y/N] ", table(plan, now), plan.len());
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    let yes = matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes");
    if !yes {
        eprintln!("whim: nothing terminated");
    }
    Ok(yes)
}

async fn terminate_plan(mgr: &Manager, plan: Vec<VmEntry>) -> anyhow::Result<u8> {
    let mut code = 0;
    for vm in plan {
        match mgr.terminate(&vm.id).await {
            Ok(()) => code = code.max(emit(&format!("{}\n", vm.id))),
            Err(e) => {
                eprintln!("whim: could not terminate {}: {e}", vm.id);
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `whim suspend ID` / `whim resume ID`.
pub async fn power(g: &Global, id: String, suspend: bool) -> anyhow::Result<u8> {
    let mgr = aws::manager(g).await?;
    if suspend {
        mgr.suspend(&id).await?
    } else {
        mgr.resume(&id).await?
    }
    Ok(emit(&format!("{id}\n")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn account_ids_are_masked_wherever_they_stand() {
        let masked = super::mask_accounts(
            "arn:aws:lambda:us-east-1:123456789012:microvm-image:x s3://whim-artifacts-123456789012-us-east-1/k 1234567890123",
        );
        assert_eq!(
            masked,
            "arn:aws:lambda:us-east-1:************:microvm-image:x s3://whim-artifacts-************-us-east-1/k 1234567890123"
        );
    }
}
