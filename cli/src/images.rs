//! `whim build`, `whim image ls|rm`, `whim init` and the `--privileged` image: custom images,
//! cached by name in the config file per account and region.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;
use whim_core::config::CachedImage;
use whim_core::image::{DEFAULT_DOCKERFILE, DEFAULT_IMAGE, EGRESS_FACT, PRIVILEGED_DOCKERFILE, PRIVILEGED_IMAGE};
use whim_tokio::{Bootstrap, BuildOptions, BuiltImage, ContextOptions, Egress, Manager};

use crate::cli::{BuildArgs, Global, ImageCmd};
use crate::vms::{columns, emit, json_line, redact};
use crate::{aws, config, progress};

/// `whim build SOURCE --name N …`.
pub async fn build(g: &Global, a: BuildArgs) -> anyhow::Result<u8> {
    let egress = Egress::from_options(a.egress.as_deref(), a.egress_connector.as_deref())?;
    if matches!(egress, Egress::None) {
        eprintln!("whim: note: {EGRESS_FACT}");
    }
    let context = context_options(&a)?;
    // Bad input fails before anything is created or uploaded.
    whim_core::image::validate_name(&a.name)?;
    whim_core::source::Source::parse(&a.source).map_err(|e| crate::cli::Usage(format!("invalid build source: {e}")))?;
    let mgr = aws::manager(g).await?;
    let boot = bootstrap(&mgr).await?;
    let opts = BuildOptions {
        name: a.name.clone(),
        artifact_bucket: boot.bucket.clone(),
        base_image_arn: None,
        build_role_arn: boot.build_role_arn.clone(),
        egress,
        privileged: a.privileged,
        force: a.force,
        any_content: false,
        context,
        progress: None,
    };
    let built = build_and_cache(&mgr, &boot, &a.source, opts, None).await?;
    if a.json {
        let v =
            json!({"name": built.name, "arn": redact(&built.arn), "source": built.source, "cached": built.cached, "egress": built.egress});
        return Ok(emit(&json_line(&v)));
    }
    Ok(emit(&format!("{}\n", redact(&built.arn))))
}

/// The context options of `whim build`: headers, CA roots, GitHub token and API base.
fn context_options(a: &BuildArgs) -> anyhow::Result<ContextOptions> {
    let mut ctx = ContextOptions { context_subdir: a.context_subdir.clone(), ..ContextOptions::default() };
    for h in &a.header {
        // The value may be a secret: messages never quote it.
        let Some((name, value)) = h
            .split_once(':')
            .filter(|(n, v)| is_token(n.trim()) && v.trim().bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80))
        else {
            return Err(crate::cli::Usage(
                "--header: use 'Name: value' (a name of letters, digits and -, a value without control characters)".into(),
            )
            .into());
        };
        if name.trim().eq_ignore_ascii_case("host") {
            return Err(crate::cli::Usage("--header: the Host header comes from the URL".into()).into());
        }
        ctx.https_headers.push((name.trim().to_owned(), whim_tokio::Secret::new(value.trim().to_owned())));
    }
    if let Some(path) = &a.ca_bundle {
        ctx.extra_root_certs_pem.push(std::fs::read(path).with_context(|| format!("--ca-bundle: cannot read {}", path.display()))?);
    }
    if let Some(token) = std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty()) {
        ctx.github_token = Some(whim_tokio::Secret::new(token));
    }
    if let Some(base) = std::env::var("WHIM_GITHUB_API_URL").ok().filter(|b| !b.is_empty()) {
        ctx.github_api_base = base;
    }
    Ok(ctx)
}

/// The bucket and build role of the caller's account and region: from the config, else made
/// (idempotently) and recorded.
async fn bootstrap(mgr: &Manager) -> anyhow::Result<Bootstrap> {
    let account = mgr.account().await?;
    let region = mgr.region().to_owned();
    let known = config::load()?.scope(&account, &region).and_then(|s| Some((s.bucket.clone()?, s.build_role_arn.clone()?)));
    if let Some((bucket, build_role_arn)) = known {
        return Ok(Bootstrap { account, bucket, build_role_arn });
    }
    eprintln!("whim: creating the artifact bucket and the build role (once per account and region)");
    let boot = mgr.bootstrap().await?;
    config::update(|c| {
        let s = c.scope_mut(&boot.account, &region);
        s.bucket = Some(boot.bucket.clone());
        s.build_role_arn = Some(boot.build_role_arn.clone());
    })?;
    Ok(boot)
}

/// Builds (or reuses) an image with progress on stderr, and records it in the config.
/// `recorded` names the source in the config and output instead of `source` (whim's own
/// images are built from a temporary directory). A build that fails after a `--force` delete
/// drops the name's entry: the image it described is gone.
async fn build_and_cache(
    mgr: &Manager,
    boot: &Bootstrap,
    source: &str,
    mut opts: BuildOptions,
    recorded: Option<&str>,
) -> anyhow::Result<BuiltImage> {
    let started = Instant::now();
    let bar = progress::Progress::new(&opts.name);
    opts.progress = Some(bar.sink());
    let result = mgr.build_from_source(source, &opts).await;
    bar.finish();
    let region = mgr.region().to_owned();
    let mut built = match result {
        Ok(b) => b,
        Err(e) => {
            if opts.force || matches!(e, whim_tokio::Error::BuildFailed { .. }) {
                config::update(|c| {
                    c.scope_mut(&boot.account, &region).images.remove(&opts.name);
                })?;
            }
            return Err(e.into());
        }
    };
    if let Some(r) = recorded {
        r.clone_into(&mut built.source);
    }
    let verb = if built.cached { "reused" } else { "built" };
    eprintln!("whim: {verb} image {} (version {}) in {:.1}s", built.name, built.version, started.elapsed().as_secs_f64());
    config::update(|c| {
        let images = &mut c.scope_mut(&boot.account, &region).images;
        // A reused image keeps the time it was built.
        let built_at = match images.get(&built.name) {
            Some(k) if built.cached && k.arn == built.arn => k.built_at,
            _ => crate::vms::unix_now().as_secs(),
        };
        let entry = CachedImage {
            arn: built.arn.clone(),
            source: built.source.clone(),
            egress: built.egress.clone(),
            privileged: opts.privileged,
            built_at,
        };
        images.insert(built.name.clone(), entry);
    })?;
    Ok(built)
}

/// `whim image ls` / `whim image rm`.
pub async fn image(g: &Global, cmd: ImageCmd) -> anyhow::Result<u8> {
    let mgr = aws::manager(g).await?;
    match cmd {
        ImageCmd::Ls { quiet, json } => {
            let images = mgr.list_images().await?;
            if json {
                let items: Vec<_> = images
                    .iter()
                    .map(|i| json!({"name": i.name, "arn": redact(&i.arn), "state": i.state, "version": i.latest_active_version, "created_at": i.created_at.as_secs()}))
                    .collect();
                return Ok(emit(&json_line(&serde_json::Value::Array(items))));
            }
            if quiet {
                return Ok(emit(&images.iter().map(|i| format!("{}\n", i.name)).collect::<String>()));
            }
            let mut rows = vec![vec!["NAME".to_owned(), "STATE".into(), "VERSION".into(), "ARN".into()]];
            rows.extend(images.iter().map(|i| {
                vec![i.name.clone(), i.state.clone(), i.latest_active_version.clone().unwrap_or_else(|| "-".into()), redact(&i.arn)]
            }));
            Ok(emit(&columns(&rows)))
        }
        ImageCmd::Rm { names } => {
            let (account, region) = (mgr.account().await?, mgr.region().to_owned());
            // A config that cannot be updated stops everything before anything is deleted.
            config::load()?;
            let mut failed = false;
            let mut seen = std::collections::BTreeSet::new();
            for name in names.iter().filter(|n| seen.insert(n.as_str())) {
                match mgr.remove_image(name).await {
                    Ok(()) => {
                        config::update(|c| {
                            c.scope_mut(&account, &region).images.retain(|n, i| n != name && i.arn != *name);
                        })?;
                        println!("{name}");
                    }
                    Err(e) => {
                        eprintln!("whim: {name}: {e}");
                        failed = true;
                    }
                }
            }
            Ok(u8::from(failed))
        }
    }
}

/// `whim init`: the bucket, the build role and the default image; instant when cached.
pub async fn init(g: &Global, image_name: Option<String>, force: bool) -> anyhow::Result<u8> {
    let name = image_name.unwrap_or_else(|| DEFAULT_IMAGE.to_owned());
    let mgr = aws::manager(g).await?;
    let boot = bootstrap(&mgr).await?;
    eprintln!("whim: artifact bucket {}, build role {}", boot.bucket, redact(&boot.build_role_arn));
    let built = ensure_image(&mgr, &boot, &name, DEFAULT_DOCKERFILE, false, force).await?;
    println!("{}", redact(&built));
    Ok(0)
}

/// The image `shell`/`run` launch: `--image`, the `whim-privileged` image for
/// `--privileged` (built on first use), else the default image.
pub async fn image_to_launch(mgr: &Manager, image: Option<String>, privileged: bool) -> anyhow::Result<String> {
    if privileged {
        let boot = bootstrap(mgr).await?;
        return ensure_image(mgr, &boot, PRIVILEGED_IMAGE, PRIVILEGED_DOCKERFILE, true, false).await;
    }
    Ok(image.unwrap_or_else(|| DEFAULT_IMAGE.to_owned()))
}

/// One of whim's own images: the cached ARN when the image still exists and is built,
/// otherwise built from `dockerfile`. Returns the ARN.
async fn ensure_image(
    mgr: &Manager,
    boot: &Bootstrap,
    name: &str,
    dockerfile: &str,
    privileged: bool,
    force: bool,
) -> anyhow::Result<String> {
    let cached = config::load()?.scope(&boot.account, mgr.region()).and_then(|s| s.images.get(name).cloned());
    let recorded = format!("(whim's built-in {name} Dockerfile)");
    if let Some(c) = cached.filter(|c| !force && c.privileged == privileged && c.egress == Egress::Public.label() && c.source == recorded)
        && is_ready(mgr.api().image_state(&c.arn).await?.map(|(state, ..)| state).as_deref())
    {
        return Ok(c.arn);
    }
    let dir = ContextDir::new(dockerfile)?;
    let opts = BuildOptions {
        name: name.to_owned(),
        artifact_bucket: boot.bucket.clone(),
        base_image_arn: None,
        build_role_arn: boot.build_role_arn.clone(),
        egress: Egress::Public,
        privileged,
        force,
        // Any whim-built image of the name will do (whim's Dockerfiles change between versions).
        any_content: true,
        context: ContextOptions::default(),
        progress: None,
    };
    let source = dir.0.to_str().context("the temporary directory's path is not UTF-8")?.to_owned();
    match build_and_cache(mgr, boot, &source, opts, Some(&recorded)).await {
        Err(e) => match e.downcast_ref() {
            Some(whim_tokio::Error::ImageDiffers { name, has, asked }) => {
                let again = if privileged { "the next `--privileged` use" } else { "`whim init`" };
                Err(anyhow::anyhow!(
                    "image `{name}` exists with {has}, not {asked} as whim needs it: `whim image rm {name}` removes it and {again} builds it again"
                ))
            }
            _ => Err(e),
        },
        Ok(built) => Ok(built.arn),
    }
}

fn is_ready(state: Option<&str>) -> bool {
    state.is_some_and(|s| whim_core::image::ImageProgress::from_wire(s) == whim_core::image::ImageProgress::Ready)
}

/// A temporary build context holding one Dockerfile, removed on drop.
struct ContextDir(PathBuf);

impl ContextDir {
    fn new(dockerfile: &str) -> anyhow::Result<ContextDir> {
        let dir = std::env::temp_dir().join(format!("whim-context-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let ctx = ContextDir(dir);
        std::fs::write(ctx.0.join("Dockerfile"), dockerfile).with_context(|| format!("cannot write {}", ctx.0.display()))?;
        Ok(ctx)
    }
}

impl Drop for ContextDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::from(d.subsec_nanos()))
}

/// An HTTP header name (RFC 9110 token characters).
fn is_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
