//! `build_from_source`: validate and package a build source, upload it, create the image and
//! wait for its build (reference §D), as an executor-agnostic future. The blocking part
//! (reading local files, downloading, zipping) runs wherever the runtime crate's `offload`
//! puts it.

use std::future::Future;
use std::sync::Arc;

use whim_core::image::{Egress, ImageProgress, artifact_key, validate_name};
use whim_core::source::Source;

use crate::context::{ContextOptions, PreparedContext};
use crate::images::ImageSpec;
use crate::{Api, Error};

/// Everything a build needs, explicit: the library discovers nothing.
#[derive(Clone)]
pub struct BuildOptions {
    /// The image name (the cache key).
    pub name: String,
    /// The bucket context zips are uploaded to (same region as the image).
    pub artifact_bucket: String,
    /// The managed base; `None`: `al2023-1` of the region.
    pub base_image_arn: Option<String>,
    /// The role the service builds with.
    pub build_role_arn: String,
    /// Where the image's VMs may connect to.
    pub egress: Egress,
    /// All OS capabilities in the image's VMs.
    pub privileged: bool,
    /// Delete an existing image of that name and build again.
    pub force: bool,
    /// Reuse an existing image of that name whatever context it was built from (its egress
    /// and capabilities must still match). Off: only an image built from the same content.
    pub any_content: bool,
    /// How the source is fetched and packaged (subdir, headers, caps, tokens, CA roots).
    pub context: ContextOptions,
    /// Told what is happening (for a progress display).
    pub progress: Option<Arc<dyn Fn(BuildEvent) + Send + Sync>>,
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("name", &self.name)
            .field("artifact_bucket", &self.artifact_bucket)
            .field("base_image_arn", &self.base_image_arn)
            .field("build_role_arn", &self.build_role_arn)
            .field("egress", &self.egress)
            .field("privileged", &self.privileged)
            .field("force", &self.force)
            .field("any_content", &self.any_content)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// A step of a build, for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildEvent {
    /// Reading or downloading the source (redacted).
    Preparing(String),
    /// The context zip is ready.
    Prepared {
        /// Files in it.
        files: u64,
        /// Its size.
        zip_bytes: u64,
    },
    /// Uploading to this `s3://` URI.
    Uploading(String),
    /// Deleting the existing image (`force`).
    Deleting(String),
    /// CreateMicrovmImage was accepted.
    Creating(String),
    /// The image entered this state.
    State(String),
}

/// A built (or reused) image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The image name.
    pub name: String,
    /// The image ARN.
    pub arn: String,
    /// The version VMs launch from.
    pub version: String,
    /// The source, redacted.
    pub source: String,
    /// An image of that name was already built and is reused.
    pub cached: bool,
    /// `public`, `none` or the connector ARN.
    pub egress: String,
}

/// A blocking job that packages a source.
pub type PrepareJob = Box<dyn FnOnce() -> Result<PreparedContext, Error> + Send>;

impl BuildOptions {
    fn emit(&self, e: BuildEvent) {
        if let Some(p) = &self.progress {
            p(e);
        }
    }
}

impl Api {
    /// Builds image `opts.name` from `source` (a local path, `s3://`, `https://` or GitHub
    /// shorthand): validates and packages the source before anything is uploaded, uploads the
    /// zip, creates the image, waits for the build and reports the builds' `stateReason` on
    /// failure. An existing built image of that name is reused when it was built from the same
    /// content with the same egress and capabilities (else [`Error::ImageDiffers`]), unless
    /// `force`, which deletes it (only after the new source packaged cleanly) and builds
    /// again. `offload` runs a blocking job off the executor (tokio's `spawn_blocking`,
    /// `blocking::unblock`, or just calls it).
    pub async fn build_from_source<F, Fut>(&self, source: &str, opts: &BuildOptions, offload: F) -> Result<BuiltImage, Error>
    where
        F: FnOnce(PrepareJob) -> Fut,
        Fut: Future<Output = Result<PreparedContext, Error>>,
    {
        validate_name(&opts.name).map_err(|e| Error::InvalidOption(e.to_string()))?;
        let parsed = Source::parse(source).map_err(|e| Error::InvalidSource(e.to_string()))?;
        let shown = parsed.to_string();
        let mut existing = self.find_image(&opts.name).await?;
        if let Some(img) = existing.as_ref().filter(|i| ImageProgress::from_wire(&i.state) == ImageProgress::Deleting) {
            // Its name stays reserved until the delete drains.
            self.delete_image(&img.arn).await?;
            existing = None;
        }
        // Packaged first even when an image exists: it is reused only if built from this
        // very content (the zip is deterministic; its hash is in the artifact's key).
        opts.emit(BuildEvent::Preparing(shown.clone()));
        let prepared = match &parsed {
            Source::S3 { bucket, key } => {
                let bytes = self.fetch_object(bucket, key, opts.context.limits.max_compressed_bytes).await?;
                let ctx = opts.context.clone();
                offload(Box::new(move || crate::context::prepare_archive(&bytes, &ctx))).await?
            }
            other => {
                let (src, ctx) = (other.clone(), opts.context.clone());
                offload(Box::new(move || crate::context::prepare(&src, &ctx))).await?
            }
        };
        opts.emit(BuildEvent::Prepared { files: prepared.files, zip_bytes: prepared.zip.len() as u64 });
        let limit = opts.context.limits.max_compressed_bytes;
        if prepared.zip.len() as u64 > limit {
            return Err(Error::SourceTooLarge(format!(
                "the context zip is {} bytes, over the compressed size limit of {limit} bytes: leave large files out with .dockerignore",
                prepared.zip.len()
            )));
        }
        let key = artifact_key(&opts.name, &prepared.sha256_hex);
        if let Some(img) = existing.as_ref().filter(|_| !opts.force) {
            return self.reuse(img, &shown, &key, opts).await;
        }
        let uri = format!("s3://{}/{key}", opts.artifact_bucket);
        opts.emit(BuildEvent::Uploading(uri.clone()));
        self.upload_artifact(&opts.artifact_bucket, &key, prepared.zip).await?;
        if let Some(img) = existing {
            opts.emit(BuildEvent::Deleting(img.arn.clone()));
            self.delete_image(&img.arn).await?;
        }
        let spec = ImageSpec {
            name: opts.name.clone(),
            base_image_arn: opts.base_image_arn.clone().unwrap_or_else(|| self.managed_base_arn()),
            build_role_arn: opts.build_role_arn.clone(),
            artifact_uri: uri,
            egress: opts.egress.connectors(),
            privileged: opts.privileged,
        };
        let arn = match self.create_image(&spec).await {
            Ok((arn, _)) => arn,
            // Another build of the name got there first: wait for it and take it if it is
            // what was asked for.
            Err(Error::Api { message, .. }) if message.contains("already exists") => {
                let img = self.find_image(&opts.name).await?.ok_or_else(|| Error::ImageNotFound(opts.name.clone()))?;
                return self.reuse(&img, &shown, &key, opts).await;
            }
            Err(e) => return Err(e),
        };
        opts.emit(BuildEvent::Creating(arn.clone()));
        let version = self.wait_built(&opts.name, &arn, &|s| opts.emit(BuildEvent::State(s.to_owned()))).await?;
        Ok(BuiltImage { name: opts.name.clone(), arn, version, source: shown, cached: false, egress: opts.egress.label().to_owned() })
    }

    /// An image of that name exists and no rebuild was asked for: wait for it if it is still
    /// building; a failed one is reported with its reason (rebuild with `force`).
    async fn reuse(&self, img: &crate::ImageEntry, shown: &str, key: &str, opts: &BuildOptions) -> Result<BuiltImage, Error> {
        let version = match ImageProgress::from_wire(&img.state) {
            ImageProgress::Ready => img.latest_active_version.clone().unwrap_or_default(),
            ImageProgress::Building => self.wait_built(&opts.name, &img.arn, &|s| opts.emit(BuildEvent::State(s.to_owned()))).await?,
            ImageProgress::Deleting => {
                return Err(Error::Api {
                    operation: "ListMicrovmImages",
                    code: None,
                    message: format!("image {} is being deleted (by another command): try again once it is gone", opts.name),
                });
            }
            ImageProgress::Failed => {
                return Err(match self.wait_built(&opts.name, &img.arn, &|_| {}).await {
                    Err(Error::BuildFailed { name, reason }) => {
                        Error::BuildFailed { name, reason: format!("{reason} (the image exists in a failed state: rebuild with --force)") }
                    }
                    Err(e) => e,
                    Ok(_) => Error::InvalidOption(format!("image {} changed state while being checked: try again", opts.name)),
                });
            }
        };
        // Reused only as asked: an image built with other settings is not silently handed out.
        let built = self.image_settings(&img.arn, &version).await?;
        if built.egress != opts.egress || built.privileged != opts.privileged {
            return Err(Error::ImageDiffers {
                name: opts.name.clone(),
                has: settings(&built.egress, built.privileged),
                asked: settings(&opts.egress, opts.privileged),
            });
        }
        let same_content = built.artifact_uri.as_deref().is_some_and(|u| u.ends_with(&format!("/{key}")));
        if !same_content && !opts.any_content {
            return Err(Error::ImageDiffers {
                name: opts.name.clone(),
                has: "another build context".into(),
                asked: format!("the context of {shown}"),
            });
        }
        let egress = built.egress;
        Ok(BuiltImage {
            name: opts.name.clone(),
            arn: img.arn.clone(),
            version,
            source: shown.to_owned(),
            cached: true,
            egress: egress.label().to_owned(),
        })
    }
}

/// "egress none, privileged" and the like, for messages.
fn settings(egress: &Egress, privileged: bool) -> String {
    format!("egress {}{}", egress.label(), if privileged { ", privileged" } else { ", unprivileged" })
}
