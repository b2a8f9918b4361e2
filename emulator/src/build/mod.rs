//! Image builds: a code artifact (a zip with a `Dockerfile` at its root) becomes an image
//! filesystem that VMs of the image boot from (reference §D).
//!
//! INTERFACE (shared by the control plane and the builder; the builder owns this module).
//!
//! [`build`] unpacks the zip ([`context`]), parses the Dockerfile ([`dockerfile`]) and runs it
//! ([`steps`]): every filesystem change (RUN, COPY, ADD, WORKDIR) happens in a throwaway
//! namespace VM whose overlay upper dir is the image's one layer, `<out_dir>/diff`, kept across
//! steps, so deletions persist as overlay whiteouts. The image is that layer over the base.
//!
//! Unisolated emulators (`--unisolated`) cannot layer filesystems: there RUN executes on the
//! host in a scratch dir (with a warning; its effects are not part of the image), WORKDIR is
//! recorded only, and COPY/ADD fail the build. ENV, WORKDIR, USER, CMD and the rest work.

mod context;
mod copy;
mod dockerfile;
mod host;
mod steps;
mod words;

use std::path::PathBuf;

use crate::sandbox::SandboxConfig;

/// Everything one build needs; no ambient state.
#[derive(Debug, Clone)]
pub struct BuildInput {
    /// The artifact's bytes, as stored in the emulator's S3.
    pub zip: Vec<u8>,
    /// Image name and version being built (for logs and scratch names).
    pub image_name: String,
    /// `"1.0"`, `"2.0"`, …
    pub version: String,
    /// `additionalOsCapabilities: ["ALL"]`: RUN steps (and later the VMs) get all capabilities.
    pub privileged: bool,
    /// The image's egress list lacks INTERNET_EGRESS: RUN steps get a loopback-only network.
    pub egress_none: bool,
    /// How sandboxes are made (helper binary, isolation, masks, scratch dir). `image_root` is
    /// ignored: the base is [`BuildInput::base`].
    pub sandbox: SandboxConfig,
    /// The managed base's filesystem (what `FROM` maps to); the host root for `al2023-1`.
    pub base: ImageFs,
    /// A fresh directory owned by this build; its layers are created beneath it and it is
    /// removed with the image version.
    pub out_dir: PathBuf,
}

/// What a VM of an image boots from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFs {
    /// Overlay lower directories, top first; the base root (the host's `/`) is the last.
    pub layers: Vec<PathBuf>,
    /// `ENV` of the image, applied to every shell of its VMs.
    pub env: Vec<(String, String)>,
    /// `WORKDIR` of the image: the shells' working directory.
    pub workdir: Option<String>,
    /// All capabilities in the VMs' sandboxes (`additionalOsCapabilities: ["ALL"]`).
    pub privileged: bool,
    /// The image's egress list lacks INTERNET_EGRESS: its VMs get a loopback-only network
    /// (a build copies [`BuildInput::egress_none`] here).
    pub egress_none: bool,
    /// `USER` of the image (recorded; the VMs' shells stay root, as on the service).
    pub user: Option<String>,
    /// `CMD` as an argv (recorded, not run: the emulator has no app to start).
    pub cmd: Option<Vec<String>>,
    /// `ENTRYPOINT` as an argv (recorded, not run).
    pub entrypoint: Option<Vec<String>>,
    /// `LABEL`s, in order.
    pub labels: Vec<(String, String)>,
    /// `EXPOSE`d ports as written (`80`, `53/udp`).
    pub exposed_ports: Vec<String>,
}

impl ImageFs {
    /// An image that is only the filesystem at `root` (the host root for `/`), with no
    /// environment, working directory or privileges.
    pub fn from_root(root: impl Into<PathBuf>) -> Self {
        ImageFs { layers: vec![root.into()], ..ImageFs::default() }
    }
}

/// A failed build: the reason the builds report as `stateReason` (reference §D.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFailure {
    /// One line a user can act on, starting with the service's failure code, e.g.
    /// `CONTAINER_BUILD_FAILED: RUN make (Dockerfile line 4) exited with status 2: …`.
    pub state_reason: String,
}

impl BuildFailure {
    fn new(code: &str, why: impl std::fmt::Display) -> Self {
        BuildFailure { state_reason: format!("{code}: {why}") }
    }
}

impl std::fmt::Display for BuildFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.state_reason)
    }
}

impl std::error::Error for BuildFailure {}

/// Builds `input`'s Dockerfile over its base into `input.out_dir`; the image's layers live
/// there until the caller removes the directory.
pub async fn build(input: BuildInput) -> Result<ImageFs, BuildFailure> {
    tracing::info!(image = %input.image_name, version = %input.version, "building image");
    let internal = |what: &str, e: std::io::Error| BuildFailure::new("INTERNAL_PLATFORM_ERROR", format!("{what}: {e}"));
    std::fs::create_dir_all(&input.out_dir).map_err(|e| internal("create the build directory", e))?;
    // The layer holds files owned by any uid, setuid ones included: keep other users out.
    let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
    std::fs::set_permissions(&input.out_dir, private).map_err(|e| internal("chmod the build directory", e))?;
    let context_dir = input.out_dir.join("context");
    let _ = std::fs::remove_dir_all(&context_dir);
    let result = build_in(&input, &context_dir).await;
    let _ = std::fs::remove_dir_all(&context_dir);
    match &result {
        Ok(_) => tracing::info!(image = %input.image_name, version = %input.version, "image built"),
        Err(e) => tracing::info!(image = %input.image_name, version = %input.version, "image build failed: {e}"),
    }
    result
}

async fn build_in(input: &BuildInput, context_dir: &std::path::Path) -> Result<ImageFs, BuildFailure> {
    let (zip, dest) = (input.zip.clone(), context_dir.to_path_buf());
    let unpacked = tokio::task::spawn_blocking(move || context::unpack(&zip, &dest))
        .await
        .map_err(|e| BuildFailure::new("INTERNAL_PLATFORM_ERROR", format!("the unpacking task failed: {e}")))?;
    let text = unpacked.map_err(|e| match e {
        context::ContextError::NoDockerfile => {
            BuildFailure::new("ARCHIVE_DOCKERFILE_NOT_FOUND", "the code artifact has no Dockerfile at its root.")
        }
        context::ContextError::Invalid(why) => BuildFailure::new("ARCHIVE_INVALID", format!("{why}.")),
    })?;
    let file = dockerfile::parse(&text).map_err(|why| BuildFailure::new("CONTAINER_BUILD_FAILED", format!("{why}.")))?;
    steps::run(input, &file, context_dir).await
}
