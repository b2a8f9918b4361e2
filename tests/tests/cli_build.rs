//! Images end to end through the real binary against an in-process emulator: `build` from each
//! kind of source (local dir, local Dockerfile, local zip, S3, https with a test certificate,
//! a fake GitHub archive endpoint), `.dockerignore`, the name cache and `--force`, a failing
//! build's reason, hostile sources refused before upload, `image ls/rm`, `init`,
//! `preflight-check`, `--privileged`, `--egress none`, and GITHUB_TOKEN secrecy at trace level.

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use common::{Env, show, text};
use whim_tests::https::{HttpsServer, Reply};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn context(root: &Path) -> std::path::PathBuf {
    let dir = root.join("ctx");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM public.ecr.aws/amazonlinux/amazonlinux:2023-minimal\nRUN echo built > /built-file\nCOPY . /ctx/\n",
    )
    .expect("Dockerfile");
    std::fs::write(dir.join("kept.txt"), "kept\n").expect("kept");
    std::fs::write(dir.join("ignored.txt"), "ignored\n").expect("ignored");
    std::fs::write(dir.join(".dockerignore"), "# not shipped\nignored.txt\n").expect(".dockerignore");
    dir
}

/// A zip of `files` (path, mode, contents), each under `prefix`.
fn zip_of(prefix: &str, files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, mode, body) in files {
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
        w.start_file(format!("{prefix}{name}"), opts).expect("zip entry");
        w.write_all(body).expect("zip write");
    }
    w.finish().expect("zip finish").into_inner()
}

fn build_json(o: &std::process::Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "{}", show(o));
    serde_json::from_str(text(o).trim()).unwrap_or_else(|e| panic!("one JSON object ({e}): {}", show(o)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_then_run_cache_force_and_remove() {
    let env = Env::start().await;
    let ctx = context(env.state.path());
    let ctx = ctx.to_str().expect("utf-8");
    let first = build_json(&env.output(&["build", ctx, "--name", "x", "--json"]).await);
    assert_eq!(
        (first["name"].as_str(), first["cached"].as_bool(), first["egress"].as_str()),
        (Some("x"), Some(false), Some("public")),
        "{first}"
    );
    assert!(first["arn"].as_str().is_some_and(|a| a.ends_with(":microvm-image:x")), "{first}");
    let o = env.output(&["run", "--image", "x", "--", "sh", "-c", "cat /built-file /ctx/kept.txt; ls /ctx; stat -c %a /ctx"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = text(&o).replace('\r', "");
    assert!(out.starts_with("built\nkept\n") && !out.contains("ignored.txt"), "RUN, COPY and .dockerignore took effect: {out}");
    assert!(out.ends_with("\n755\n"), "COPY . /ctx/ makes /ctx 0755 as docker does: {out}");
    let again = build_json(&env.output(&["build", ctx, "--name", "x", "--json"]).await);
    assert_eq!(again["cached"].as_bool(), Some(true), "a second build of x is reused: {again}");
    let slash = format!("{ctx}/");
    let same = build_json(&env.output(&["build", &slash, "--name", "x", "--json"]).await);
    assert_eq!(same["cached"].as_bool(), Some(true), "the same content spelled otherwise is reused: {same}");
    // Cached by name, but never handed out with other settings or another source.
    let other = env.state.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("Dockerfile"), "FROM x\n").expect("Dockerfile");
    for (args, want) in [
        (vec!["--egress", "none"], "egress public, unprivileged"),
        (vec!["--privileged"], "egress public, unprivileged"),
        (vec![], "another build context"),
    ] {
        let src = if args.is_empty() { other.to_str().expect("utf-8") } else { ctx };
        let mut argv = vec!["build", src, "--name", "x", "--json"];
        argv.extend(args.iter().copied());
        let o = env.output(&argv).await;
        assert_eq!(o.status.code(), Some(1), "{argv:?}: {}", show(&o));
        assert!(stderr(&o).contains(want) && stderr(&o).contains("--force"), "{argv:?}: {}", show(&o));
        assert!(text(&o).is_empty(), "no JSON claims settings the image lacks: {}", show(&o));
    }
    let forced = build_json(&env.output(&["build", ctx, "--name", "x", "--force", "--json"]).await);
    assert_eq!(forced["cached"].as_bool(), Some(false), "--force rebuilds: {forced}");
    // A config that cannot be updated stops `image rm` before anything is deleted.
    let config_path = env.state.path().join(".config/whim/config.json");
    let saved = std::fs::read_to_string(&config_path).expect("config written");
    std::fs::write(&config_path, "{corrupt").expect("corrupt the config");
    let o = env.output(&["image", "rm", "x"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains("corrupt"), "{}", show(&o));
    std::fs::write(&config_path, saved).expect("restore the config");
    let o = env.output(&["image", "ls", "-q"]).await;
    assert!(text(&o).lines().any(|l| l == "x"), "x survived the refused rm: {}", show(&o));
    let config = std::fs::read_to_string(env.state.path().join(".config/whim/config.json")).expect("config written");
    assert!(config.contains("\"x\"") && config.contains("microvm-image:x"), "{config}");
    let o = env.output(&["image", "ls", "-q"]).await;
    assert!(text(&o).lines().any(|l| l == "x"), "{}", show(&o));
    let o = env.output(&["image", "rm", "x"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = env.output(&["image", "ls", "-q"]).await;
    assert!(!text(&o).lines().any(|l| l == "x"), "{}", show(&o));
    let o = env.output(&["image", "rm", "x"]).await;
    assert_eq!(o.status.code(), Some(1), "removing a missing image fails: {}", show(&o));
    let gone = forced["arn"].as_str().expect("arn");
    let o = env.output(&["image", "rm", gone]).await;
    assert_eq!(o.status.code(), Some(1), "removing a missing image by ARN fails too: {}", show(&o));
    assert!(stderr(&o).contains("not found"), "{}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_says_why() {
    let env = Env::start().await;
    let dir = env.state.path().join("bad");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("Dockerfile"), "FROM x\nRUN echo compiling; exit 7\n").expect("Dockerfile");
    let o = env.output(&["build", dir.to_str().expect("utf-8"), "--name", "bad"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains("bad") && err.contains("line 2") && err.contains('7'), "the builds' reason reaches the user: {}", show(&o));
    // Launching the failed image says it failed to build, and why, not that it is missing.
    let o = env.output(&["run", "--image", "bad", "--", "true"]).await;
    assert_ne!(o.status.code(), Some(0), "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains("failed to build") && err.contains("line 2") && err.contains("--force"), "{}", show(&o));
    let dir2 = env.state.path().join("unsupported");
    std::fs::create_dir(&dir2).expect("mkdir");
    std::fs::write(dir2.join("Dockerfile"), "FROM x\nHEALTHCHECK CMD true\n").expect("Dockerfile");
    let o = env.output(&["build", dir2.to_str().expect("utf-8"), "--name", "unsup"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains("HEALTHCHECK"), "{}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_dockerfile_and_zip_sources() {
    let env = Env::start().await;
    let root = env.state.path();
    std::fs::create_dir(root.join("proj")).expect("mkdir");
    std::fs::write(root.join("proj/build.Dockerfile"), "FROM x\nCOPY data.txt /from-dockerfile\n").expect("Dockerfile");
    std::fs::write(root.join("proj/data.txt"), "dockerfile source\n").expect("data");
    let o = env.output(&["build", root.join("proj/build.Dockerfile").to_str().expect("utf-8"), "--name", "df"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let zip = zip_of("", &[("Dockerfile", 0o644, b"FROM x\nCOPY run.sh /run.sh\n"), ("run.sh", 0o755, b"#!/bin/sh\necho zipped\n")]);
    std::fs::write(root.join("ctx.zip"), zip).expect("zip");
    let o = env.output(&["build", root.join("ctx.zip").to_str().expect("utf-8"), "--name", "zipped"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = env.output(&["run", "--image", "zipped", "--", "/run.sh"]).await;
    assert_eq!(text(&o).trim(), "zipped", "the exec bit survived the zip: {}", show(&o));
    let o = env.output(&["run", "--image", "df", "--", "cat", "/from-dockerfile"]).await;
    assert_eq!(text(&o).trim(), "dockerfile source", "{}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_source() {
    let env = Env::start().await;
    let s3 = env.s3();
    s3.create_bucket().bucket("sources").send().await.expect("CreateBucket");
    let zip = zip_of("", &[("Dockerfile", 0o644, b"FROM x\nRUN echo from-s3 > /src\n")]);
    s3.put_object().bucket("sources").key("ctx/app.zip").body(zip.into()).send().await.expect("PutObject");
    let o = env.output(&["build", "s3://sources/ctx/app.zip", "--name", "s3img"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = env.output(&["run", "--image", "s3img", "--", "cat", "/src"]).await;
    assert_eq!(text(&o).trim(), "from-s3", "{}", show(&o));
    let o = env.output(&["build", "s3://sources/missing.zip", "--name", "s3missing"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains("s3://sources/missing.zip"), "{}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sources_are_refused_before_upload() {
    let env = Env::start().await;
    let root = env.state.path();
    let slip = zip_of("", &[("Dockerfile", 0o644, b"FROM x\n"), ("../evil", 0o644, b"x")]);
    std::fs::write(root.join("slip.zip"), slip).expect("zip");
    let nodf = zip_of("", &[("README", 0o644, b"no dockerfile")]);
    std::fs::write(root.join("nodf.zip"), nodf).expect("zip");
    // A source whim refuses to parse is a usage error (2); one that fails to package, 1.
    for (source, want, code) in [
        (root.join("slip.zip").to_str().expect("utf-8").to_owned(), "..", 1),
        (root.join("nodf.zip").to_str().expect("utf-8").to_owned(), "Dockerfile", 1),
        ("http://127.0.0.1:9/ctx.zip".to_owned(), "https", 2),
        ("https://user:hunter2@127.0.0.1:9/ctx.zip".to_owned(), "header", 2),
        ("ftp://example.com/x".to_owned(), "ftp", 2),
    ] {
        let o = env.output(&["build", &source, "--name", "hostile"]).await;
        assert_eq!(o.status.code(), Some(code), "{source}: {}", show(&o));
        assert!(stderr(&o).contains(want), "{source}: {}", show(&o));
        assert!(!stderr(&o).contains("hunter2"), "no credentials in errors: {}", show(&o));
    }
    let dir = root.join("ok");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("Dockerfile"), "FROM x\n").expect("Dockerfile");
    for header in ["AuthorizationBearer-SECRET", ": SECRET", "Bad Name: SECRET", "X: a\r\nInjected: SECRET", "Host: SECRET"] {
        let o = env.output(&["build", dir.to_str().expect("utf-8"), "--name", "hostile", "-H", header]).await;
        assert_eq!(o.status.code(), Some(2), "{header:?}: {}", show(&o));
        assert!(!show(&o).contains("SECRET"), "a header value is never echoed: {}", show(&o));
    }
    let o = env.output(&["image", "ls", "-q"]).await;
    assert!(!text(&o).contains("hostile"), "nothing was created: {}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_github_sources_keep_the_token_secret() {
    let env = Env::start().await;
    let token = "ghp_TESTtokenNeverPrinted0123456789";
    let archive = zip_of("org-repo-abc123/", &[("Dockerfile", 0o644, b"FROM x\nCOPY hello /hello\n"), ("hello", 0o644, b"from github\n")]);
    let plain = zip_of("", &[("Dockerfile", 0o644, b"FROM x\nRUN echo from-https > /src\n")]);
    let gz_dockerfile = b"FROM x\nRUN echo raw-dockerfile > /src\n".to_vec();
    let mut routes = BTreeMap::new();
    routes.insert("/ctx.zip".to_owned(), Reply::ok(plain.clone()));
    routes.insert("/ctx.zip?X-Amz-Signature=SECRETSIG".to_owned(), Reply::ok(plain));
    routes.insert("/Dockerfile".to_owned(), Reply::ok(gz_dockerfile));
    routes.insert("/codeload/org-repo.zip".to_owned(), Reply::ok(archive));
    let server = HttpsServer::start(routes.clone()).await;
    let mut routes2 = routes;
    routes2.insert("/repos/org/repo/zipball/v1".to_owned(), Reply::redirect(&server.url("/codeload/org-repo.zip")));
    let github = HttpsServer::start(routes2).await;
    let ca = env.state.path().join("ca.pem");
    std::fs::write(&ca, format!("{}{}", server.cert_pem, github.cert_pem)).expect("ca");
    let run = |args: Vec<String>| {
        let mut c = env.whim(&args.iter().map(String::as_str).collect::<Vec<_>>());
        c.env("WHIM_CA_BUNDLE", &ca)
            .env("GITHUB_TOKEN", token)
            .env("WHIM_GITHUB_API_URL", github.url(""))
            .env("RUST_LOG", "trace")
            .arg("-vv");
        async move { tokio::task::spawn_blocking(move || c.output().expect("whim runs")).await.expect("join") }
    };
    for (source, name, want) in
        [(server.url("/ctx.zip"), "https-zip", "from-https"), (server.url("/Dockerfile"), "https-df", "raw-dockerfile")]
    {
        let o = run(vec!["build".into(), source.clone(), "--name".into(), name.into()]).await;
        assert_eq!(o.status.code(), Some(0), "{source}: {}", show(&o));
        let o = env.output(&["run", "--image", name, "--", "cat", "/src"]).await;
        assert_eq!(text(&o).trim(), want, "{}", show(&o));
    }
    // A presigned URL's signature is never shown or stored.
    let o = run(vec!["build".into(), server.url("/ctx.zip?X-Amz-Signature=SECRETSIG"), "--name".into(), "signed".into(), "--json".into()])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(!show(&o).contains("SECRETSIG"), "the query string leaked: {}", show(&o));
    assert_eq!(build_json(&o)["source"].as_str(), Some(server.url("/ctx.zip").as_str()));
    let o = run(vec!["build".into(), "github.com/org/repo@v1".into(), "--name".into(), "gh".into(), "--json".into()]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    for stream in [&o.stdout, &o.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(token), "GITHUB_TOKEN leaked at trace level: {}", show(&o));
    }
    let config = std::fs::read_to_string(env.state.path().join(".config/whim/config.json")).expect("config");
    assert!(!config.contains(token), "GITHUB_TOKEN in the config file");
    assert!(!config.contains("SECRETSIG"), "a presigned signature in the config file");
    let api_hits = github.seen();
    let hit = api_hits.iter().find(|s| s.path == "/repos/org/repo/zipball/v1").expect("the GitHub API was asked");
    assert_eq!(
        hit.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {token}").as_str()),
        "the token goes only as a header"
    );
    assert!(
        server.seen().iter().all(|s| !s.headers.contains_key("authorization")),
        "the token is not sent to another host after a redirect"
    );
    assert!(api_hits.iter().chain(server.seen().iter()).all(|s| !s.path.contains(token)), "never in a URL");
    let o = env.output(&["run", "--image", "gh", "--", "cat", "/hello"]).await;
    assert_eq!(text(&o).trim(), "from github", "the wrapping folder was stripped: {}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_preflight_image_ls_and_privileged() {
    let env = Env::start().await;
    let o = env.output(&["init"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(text(&o).contains("microvm-image:whim-default"), "{}", show(&o));
    let started = std::time::Instant::now();
    let o = env.output(&["init"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "a second init is instant");
    let o = env.output(&["preflight-check"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    for check in ["credentials", "lambda-microvms", "artifact bucket", "build role trust", "build role logs", "default image", "egress"] {
        assert!(text(&o).lines().any(|l| l.contains(check)), "{check}: {}", show(&o));
    }
    assert!(!text(&o).contains("FAIL"), "{}", show(&o));
    // C11: a closed stdout is not an error.
    let mut c = env.whim(&["image", "ls", "--json"]);
    c.stdout(std::process::Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    drop(child.stdout.take());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "`whim image ls --json | head -c 10` is not an error");
    let o = env.output(&["image", "ls", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(text(&o).trim()).expect("one JSON array");
    assert!(v.as_array().is_some_and(|a| a.iter().any(|i| i["name"] == "whim-default")), "{v}");
    let caps = "grep CapEff /proc/self/status";
    let o = env.output(&["run", "--privileged", "--", "sh", "-c", caps]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let privileged = text(&o);
    let o = env.output(&["run", "--", "sh", "-c", caps]).await;
    assert_ne!(text(&o), privileged, "--privileged VMs have more capabilities: {privileged}");
    assert!(privileged.contains("000001ffffffffff") || privileged.contains("ffffffff"), "{privileged}");
    let o = env.output(&["image", "ls", "-q"]).await;
    assert!(text(&o).lines().any(|l| l == "whim-privileged"), "built on first use: {}", show(&o));
    // An image named whim-privileged without all capabilities is never launched for --privileged.
    let o = env.output(&["image", "rm", "whim-privileged"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let dir = env.state.path().join("plain");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("Dockerfile"), "FROM x\n").expect("Dockerfile");
    let o = env.output(&["build", dir.to_str().expect("utf-8"), "--name", "whim-privileged"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = env.output(&["run", "--privileged", "--", "true"]).await;
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(stderr(&o).contains("unprivileged") && stderr(&o).contains("image rm whim-privileged"), "{}", show(&o));
    // A VM that is up makes `image rm` fail at once, naming it, instead of waiting.
    let o = env.output(&["launch", "-q"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let vm = text(&o).trim().to_owned();
    let started = std::time::Instant::now();
    let o = env.output(&["image", "rm", "whim-default"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains(&vm), "the VM in the way is named: {}", show(&o));
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "no silent wait: {:?}", started.elapsed());
    let o = env.output(&["terminate", &vm]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_none_isolates_the_vm_on_the_emulator() {
    let env = Env::start().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dir = env.state.path().join("ctx");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("Dockerfile"), "FROM x\n").expect("Dockerfile");
    let src = dir.to_str().expect("utf-8");
    let o = env.output(&["build", src, "--name", "closed", "--egress", "none", "--json"]).await;
    assert_eq!(build_json(&o)["egress"].as_str(), Some("none"));
    let o = env.output(&["build", src, "--name", "open"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let probe = format!("if (echo > /dev/tcp/127.0.0.1/{port}) 2>/dev/null; then echo reached; else echo blocked; fi");
    let o = env.output(&["run", "--image", "closed", "--", "bash", "-c", &probe]).await;
    assert_eq!(text(&o).trim(), "blocked", "{}", show(&o));
    let o = env.output(&["run", "--image", "open", "--", "bash", "-c", &probe]).await;
    assert_eq!(text(&o).trim(), "reached", "{}", show(&o));
    let o = env.output(&["build", "--help"]).await;
    assert!(text(&o).contains("measured NOT to block"), "the platform fact is in --help: {}", show(&o));
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_forced_builds_of_one_name_finish() {
    let env = Env::start().await;
    let dir = env.state.path().join("ctx");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("Dockerfile"), "FROM x\nRUN echo one > /one\n").expect("Dockerfile");
    let src = dir.to_str().expect("utf-8");
    let o = env.output(&["build", src, "--name", "p"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let started = std::time::Instant::now();
    let argv = ["build", src, "--name", "p", "--force"];
    let (a, b) = tokio::join!(env.output(&argv), env.output(&argv));
    assert!(started.elapsed() < std::time::Duration::from_secs(120), "neither waits without end: {:?}", started.elapsed());
    assert!(a.status.code() == Some(0) || b.status.code() == Some(0), "one of them wins:\n{}\n{}", show(&a), show(&b));
    for o in [&a, &b] {
        assert!(o.status.code() == Some(0) || !stderr(o).trim().is_empty(), "a loser says why: {}", show(o));
    }
    let o = env.output(&["run", "--image", "p", "--", "cat", "/one"]).await;
    assert_eq!(text(&o).trim(), "one", "{}", show(&o));
}
