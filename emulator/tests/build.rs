//! End-to-end tests of the image builder: real zips, real Dockerfiles, real build sandboxes,
//! and VMs booted from the built layers. They need root (as on the project's machines and CI).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use whim_emulator::build::{BuildInput, ImageFs, build};
use whim_emulator::sandbox::{Isolation, SandboxConfig, ShellReader, ShellWriter, Vm};
use zip::write::SimpleFileOptions;

const PATIENCE: Duration = Duration::from_secs(20);

fn unique(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{name}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn sandbox() -> SandboxConfig {
    let mut cfg = SandboxConfig::default_for_host();
    cfg.helper_exe = env!("CARGO_BIN_EXE_whim-sandbox-helper").into();
    cfg.state_dir = std::env::temp_dir().join(format!("whim-build-test-{}", std::process::id()));
    cfg
}

/// A zip of `(name, contents, unix mode)`; a name ending in `/` is a directory.
fn zip_of(entries: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body, mode) in entries {
        let opts = SimpleFileOptions::default().unix_permissions(*mode);
        if let Some(dir) = name.strip_suffix('/') {
            w.add_directory(dir, opts).expect("zip dir");
        } else {
            w.start_file(*name, opts).expect("zip file");
            w.write_all(body.as_bytes()).expect("zip write");
        }
    }
    w.finish().expect("zip finish").into_inner()
}

fn dockerfile_zip(dockerfile: &str) -> Vec<u8> {
    zip_of(&[("Dockerfile", dockerfile, 0o644)])
}

/// Scratch dir for one build's output, removed by [`Out::drop`].
struct Out(PathBuf);

impl Drop for Out {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn input(zip: Vec<u8>, out: &Out) -> BuildInput {
    BuildInput {
        zip,
        image_name: "test-image".into(),
        version: "1.0".into(),
        privileged: false,
        egress_none: false,
        sandbox: sandbox(),
        base: ImageFs::from_root("/"),
        out_dir: out.0.clone(),
    }
}

fn out_dir(name: &str) -> Out {
    Out(std::env::temp_dir().join(format!("whim-build-out-{}", unique(name))))
}

async fn build_ok(input: BuildInput) -> ImageFs {
    match build(input).await {
        Ok(image) => image,
        Err(e) => panic!("build failed: {e}"),
    }
}

async fn build_err(input: BuildInput) -> String {
    match build(input).await {
        Ok(image) => panic!("build succeeded: {image:?}"),
        Err(e) => e.state_reason,
    }
}

async fn boot(image: &ImageFs) -> Vm {
    let mut cfg = sandbox();
    cfg.set_image(image);
    Vm::boot(&cfg, &unique("img")).await.unwrap_or_else(|e| panic!("boot: {e}"))
}

/// A shell of a VM, driven by typing (as in tests/sandbox.rs).
struct Term {
    reader: ShellReader,
    writer: ShellWriter,
    seen: Vec<u8>,
    n: u32,
}

impl Term {
    async fn open(vm: &Vm) -> Term {
        let (reader, writer, _control) = vm.spawn_shell().await.expect("spawn shell").split();
        let mut term = Term { reader, writer, seen: Vec::new(), n: 0 };
        term.until(0, "λ $").await;
        term
    }

    async fn until(&mut self, from: usize, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&self.seen[from..]).contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.reader.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.seen.extend_from_slice(&buf[..n]),
                _ => panic!("did not see {needle:?}: {}", String::from_utf8_lossy(&self.seen)),
            }
        }
        String::from_utf8_lossy(&self.seen[from..]).into_owned()
    }

    /// What `cmd` printed, trimmed.
    async fn run(&mut self, cmd: &str) -> String {
        self.n += 1;
        let (from, n) = (self.seen.len(), self.n);
        let line = format!("echo __B''{n}__; {cmd}; echo __E''{n}__\n");
        self.writer.write_all(line.as_bytes()).await.expect("type");
        let out = self.until(from, &format!("__E{n}__\r\n")).await;
        let begin = format!("__B{n}__\r\n");
        let start = out.find(&begin).map_or(0, |i| i + begin.len());
        out[start..out.find(&format!("__E{n}__")).unwrap_or(out.len())].trim().to_owned()
    }

    async fn status(&mut self, cmd: &str) -> String {
        self.run(&format!("{cmd} >/dev/null 2>&1; echo rc=$?")).await
    }
}

/// A base file present on this host that a RUN may delete.
fn base_file() -> &'static str {
    ["/etc/debian_version", "/usr/bin/zcat", "/etc/os-release", "/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("a base file")
}

#[tokio::test]
async fn dockerfile_steps_shape_the_vm() {
    let gone = base_file();
    let dockerfile = format!(
        "# a comment\nFROM public.ecr.aws/docker/library/debian:12\nARG GREETING=hello\n\
         ENV APP_HOME=/srv/app MSG=\"$GREETING world\" PATH=/srv/app/bin:$PATH\nWORKDIR $APP_HOME\n\
         COPY tool.sh ./bin/\nCOPY data/ /srv/data/\nCOPY [\"data/sub/x.txt\", \"/srv/single\"]\n\
         RUN echo built > /built-file \\\n    && rm {gone}\nUSER nobody\nRUN test \"$(id -u)\" = 65534 && test \"$PWD\" = /srv/app\n\
         USER root\nCMD [\"/srv/app/bin/tool.sh\"]\nEXPOSE 8080\nLABEL team=whim\n"
    );
    let zip = zip_of(&[
        ("Dockerfile", &dockerfile, 0o644),
        ("tool.sh", "#!/bin/sh\necho tool-ran\n", 0o755),
        ("data/", "", 0o755),
        ("data/sub/x.txt", "payload", 0o640),
    ]);
    let out = out_dir("steps");
    let image = build_ok(input(zip, &out)).await;
    assert_eq!(image.layers.len(), 2, "{image:?}");
    assert_eq!(image.workdir.as_deref(), Some("/srv/app"));
    assert_eq!(image.cmd, Some(vec!["/srv/app/bin/tool.sh".to_string()]));
    assert_eq!((image.user.as_deref(), image.exposed_ports.clone()), (Some("root"), vec!["8080".to_string()]));
    let vm = boot(&image).await;
    let mut t = Term::open(&vm).await;
    assert_eq!(t.run("cat /built-file").await, "built");
    assert_eq!(t.status(&format!("test -e {gone}")).await, "rc=1", "{gone} was removed by RUN");
    assert!(Path::new(gone).exists(), "the host keeps {gone}");
    assert_eq!(t.run("echo \"$MSG|$APP_HOME|$GREETING\"").await, "hello world|/srv/app|", "ENV only, no ARG");
    assert_eq!(t.run("pwd").await, "/srv/app");
    assert_eq!(
        t.run("echo $PATH; tool.sh").await,
        "/srv/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\r\ntool-ran",
        "ENV PATH=…:$PATH extends the default"
    );
    assert_eq!(t.run("stat -c %a bin/tool.sh && ./bin/tool.sh").await, "755\r\ntool-ran");
    assert_eq!(t.run("stat -c '%a %U' /srv/data/sub/x.txt && cat /srv/data/sub/x.txt").await, "640 root\r\npayload");
    assert_eq!(t.run("cat /srv/single").await, "payload");
    assert_eq!(t.status("test -e /dev/.whim-build-context").await, "rc=1", "the context is not in VMs");
    vm.kill().await;
}

#[tokio::test]
async fn copy_honours_chown_chmod_and_globs() {
    let dockerfile = "FROM x\nCOPY --chown=nobody:nogroup --chmod=700 *.sh /opt/tools/\nCOPY --chown=1234 conf /etc/whim-conf\n";
    let zip = zip_of(&[
        ("Dockerfile", dockerfile, 0o644),
        ("a.sh", "a", 0o644),
        ("b.sh", "b", 0o644),
        ("c.txt", "c", 0o644),
        ("conf/x", "x", 0o644),
    ]);
    let out = out_dir("chown");
    let image = build_ok(input(zip, &out)).await;
    let vm = boot(&image).await;
    let mut t = Term::open(&vm).await;
    assert_eq!(t.run("cd /opt/tools && stat -c '%n %a %U' *").await, "a.sh 700 nobody\r\nb.sh 700 nobody");
    assert_eq!(t.run("stat -c %u /etc/whim-conf/x").await, "1234");
    vm.kill().await;
}

#[tokio::test]
async fn failing_run_reports_line_status_and_output() {
    let dockerfile = "FROM x\nENV A=1\nRUN echo first; echo oops >&2; exit 3\nRUN echo never\n";
    let out = out_dir("fail");
    let reason = build_err(input(dockerfile_zip(dockerfile), &out)).await;
    assert!(
        reason.starts_with("CONTAINER_BUILD_FAILED: RUN echo first; echo oops >&2; exit 3 (Dockerfile line 3) exited with status 3: "),
        "{reason}"
    );
    assert!(reason.ends_with("first / oops"), "{reason}");
    assert!(!reason.contains('\n'), "one line: {reason}");
}

#[tokio::test]
async fn refused_inputs_say_why() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (dockerfile_zip("FROM x\nRUN true\nHEALTHCHECK CMD true\n"), "CONTAINER_BUILD_FAILED: HEALTHCHECK is not supported"),
        (dockerfile_zip("FROM x\nFROM y\n"), "multi-stage"),
        (zip_of(&[("src/Dockerfile", "FROM x", 0o644)]), "ARCHIVE_DOCKERFILE_NOT_FOUND: the code artifact has no Dockerfile at its root."),
        (b"not a zip".to_vec(), "ARCHIVE_INVALID: "),
        (
            zip_of(&[("Dockerfile", "FROM x", 0o644), ("../evil", "x", 0o644)]),
            "ARCHIVE_INVALID: the code artifact has an entry name with '..'",
        ),
        (zip_of(&[("Dockerfile", "FROM x", 0o644), ("/etc/evil", "x", 0o644)]), "ARCHIVE_INVALID: "),
        (zip_of(&[("Dockerfile", "FROM x", 0o644), ("a", "1", 0o644), ("a/", "", 0o755)]), "duplicate"),
        (dockerfile_zip("FROM x\nCOPY missing /x\n"), "\"missing\" was not found in the build context"),
        (dockerfile_zip("FROM x\nADD https://example.com/f /f\n"), "is a URL"),
    ];
    for (zip, want) in cases {
        let out = out_dir("refused");
        let reason = build_err(input(zip, &out)).await;
        assert!(reason.contains(want), "want {want:?} in {reason:?}");
    }
}

#[tokio::test]
async fn escaping_symlinks_are_refused() {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("Dockerfile", SimpleFileOptions::default()).expect("zip");
    w.write_all(b"FROM x\n").expect("zip");
    w.add_symlink("dir/link", "../../etc", SimpleFileOptions::default()).expect("zip");
    let zip = w.finish().expect("zip").into_inner();
    let out = out_dir("symlink");
    let reason = build_err(input(zip, &out)).await;
    assert!(reason.starts_with("ARCHIVE_INVALID: ") && reason.contains("points outside"), "{reason}");
}

#[tokio::test]
async fn egress_none_builds_cannot_reach_the_host() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dockerfile = format!("FROM x\nRUN bash -c 'echo > /dev/tcp/127.0.0.1/{port}'\n");
    let out = out_dir("net-open");
    let image = build_ok(input(dockerfile_zip(&dockerfile), &out)).await;
    assert!(!image.egress_none);
    let out = out_dir("net-none");
    let mut closed = input(dockerfile_zip(&dockerfile), &out);
    closed.egress_none = true;
    let reason = build_err(closed).await;
    assert!(reason.contains("(Dockerfile line 2) exited with status 1"), "{reason}");
    let out = out_dir("net-vm");
    let mut quiet = input(dockerfile_zip("FROM x\n"), &out);
    quiet.egress_none = true;
    let image = build_ok(quiet).await;
    assert!(image.egress_none);
    let vm = boot(&image).await;
    let mut t = Term::open(&vm).await;
    assert_eq!(t.status(&format!("bash -c 'echo > /dev/tcp/127.0.0.1/{port}'")).await, "rc=1");
    vm.kill().await;
    drop(listener);
}

/// CapEff of a fully privileged process on this kernel.
fn all_caps() -> u64 {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40);
    (1u64 << (last + 1)) - 1
}

fn cap_eff(text: &str) -> u64 {
    let hex = text.rsplit(':').next().unwrap_or("").trim();
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("no CapEff in {text:?}"))
}

#[tokio::test]
async fn privileged_builds_and_vms_have_every_capability() {
    let dockerfile = "FROM x\nRUN grep CapEff /proc/self/status > /build-caps\n";
    for privileged in [false, true] {
        let out = out_dir("caps");
        let mut req = input(dockerfile_zip(dockerfile), &out);
        req.privileged = privileged;
        let image = build_ok(req).await;
        assert_eq!(image.privileged, privileged);
        let vm = boot(&image).await;
        let mut t = Term::open(&vm).await;
        let want = if privileged { all_caps() } else { whim_emulator::sandbox::docker_mask() };
        assert_eq!(cap_eff(&t.run("cat /build-caps").await), want, "RUN, privileged={privileged}");
        assert_eq!(cap_eff(&t.run("grep CapEff /proc/self/status").await), want, "VM, privileged={privileged}");
        vm.kill().await;
    }
}

#[tokio::test]
async fn unisolated_builds_run_on_the_host_but_cannot_copy() {
    const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    let out = out_dir("unisolated");
    let mut req = input(dockerfile_zip("FROM x\nRUN true\nENV A=b\nWORKDIR /app\n"), &out);
    req.sandbox.isolation = Isolation::Unisolated;
    let image = build_ok(req).await;
    assert_eq!(
        (image.env.clone(), image.workdir.clone()),
        (vec![("PATH".to_string(), DEFAULT_PATH.to_string()), ("A".to_string(), "b".to_string())], Some("/app".to_string()))
    );
    let out = out_dir("unisolated-copy");
    let zip = zip_of(&[("Dockerfile", "FROM x\nCOPY f /f\n", 0o644), ("f", "x", 0o644)]);
    let mut req = input(zip, &out);
    req.sandbox.isolation = Isolation::Unisolated;
    let reason = build_err(req).await;
    assert!(reason.contains("COPY needs the namespace sandbox; start the emulator without --unisolated"), "{reason}");
}
