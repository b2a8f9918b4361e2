//! The build of one image version (reference §C.2, §D): read the code artifact from the
//! emulator's S3, hand it to [`crate::build`], and walk the version, its builds and the image
//! through their states. A failure's reason goes on both builds; the version's stays null (§D.3).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::App;
use super::image_model::{ImageSpec, SnapshotSizes};
use super::objects::{ObjectReadError, parse_s3_uri};
use crate::build::{BuildInput, ImageFs};

/// Starts building version `version` of image `arn` in the background.
pub(crate) fn spawn(app: &Arc<App>, arn: String, version: String) {
    tokio::spawn(run(app.clone(), arn, version));
}

/// `<state>/images/<name>/<version>`: where a version's build puts its layers.
pub(crate) fn out_dir(state_dir: &Path, name: &str, version: &str) -> PathBuf {
    state_dir.join("images").join(name).join(version)
}

async fn run(app: Arc<App>, arn: String, version: String) {
    let started = app.images.with_image(&arn, |image| {
        let name = image.name.clone();
        let v = image.version_mut(&version)?;
        v.set_state("IN_PROGRESS");
        Some((name, v.spec.clone(), v.out_dir.clone()?))
    });
    let Some(Some((name, spec, out_dir))) = started else { return };
    tracing::info!(image = %name, %version, "building image version");
    let outcome = build_version(&app, &name, &version, &spec, &out_dir).await;
    if let Err(reason) = &outcome {
        tracing::info!(image = %name, %version, "image build failed: {reason}");
    }
    record(&app, &arn, &version, outcome, &out_dir).await;
}

async fn build_version(app: &App, name: &str, version: &str, spec: &ImageSpec, out_dir: &Path) -> Result<(ImageFs, SnapshotSizes), String> {
    let zip = read_artifact(app, &spec.code_artifact_uri).await?;
    let base = app.images.managed().iter().find(|m| m.arn == spec.base_image_arn).map(|m| m.fs.clone());
    let base = base.ok_or_else(|| format!("INTERNAL_PLATFORM_ERROR: unknown base image {}.", spec.base_image_arn))?;
    fresh_dir(out_dir).await.map_err(|e| format!("INTERNAL_PLATFORM_ERROR: cannot create {}: {e}", out_dir.display()))?;
    let artifact_bytes = zip.len() as u64;
    let input = BuildInput {
        zip,
        image_name: name.into(),
        version: version.into(),
        privileged: spec.privileged(),
        egress_none: app.cfg.guesses.enforce_egress_none && spec.lacks_internet_egress(),
        sandbox: app.cfg.sandbox.clone(),
        base,
        out_dir: out_dir.to_owned(),
    };
    let mut fs = crate::build::build(input).await.map_err(|f| f.state_reason)?;
    fs.privileged |= spec.privileged();
    let dir = out_dir.to_owned();
    let layers = tokio::task::spawn_blocking(move || tree_size(&dir)).await.unwrap_or(0);
    // Emulator-invented sizes: no memory snapshot exists, so it reports the image's memory.
    let memory = u64::try_from(spec.memory_mib).unwrap_or(0) * 1024 * 1024;
    Ok((fs, SnapshotSizes { memory, code_install: artifact_bytes + layers, disk: layers }))
}

async fn read_artifact(app: &App, uri: &str) -> Result<Vec<u8>, String> {
    let Some((bucket, key)) = parse_s3_uri(uri) else {
        return Err(format!("S3_INVALID_OBJECT: the code artifact {uri} is not an s3://bucket/key URI."));
    };
    app.objects.read_object(bucket, key).await.map_err(|e| match e {
        ObjectReadError::NoSuchBucket => format!("S3_NO_SUCH_BUCKET: the bucket of the code artifact {uri} does not exist."),
        ObjectReadError::NoSuchKey => format!("S3_NO_SUCH_KEY: the code artifact {uri} does not exist."),
        ObjectReadError::Unreadable(why) => format!("S3_INVALID_OBJECT: the code artifact {uri} cannot be read: {why}"),
    })
}

async fn record(app: &App, arn: &str, version: &str, outcome: Result<(ImageFs, SnapshotSizes), String>, out_dir: &Path) {
    let succeeded = outcome.is_ok();
    let recorded = app.images.with_image(arn, |image| {
        let Some(v) = image.version_mut(version) else { return false };
        match outcome {
            Ok((fs, sizes)) => {
                v.set_state("SUCCESSFUL");
                v.fs = Some(fs);
                v.builds.iter_mut().for_each(|b| b.snapshot = Some(sizes));
            }
            Err(reason) => {
                v.set_state("FAILED");
                v.builds.iter_mut().for_each(|b| b.state_reason = Some(reason.clone()));
            }
        }
        let settled = match (image.state, succeeded) {
            ("CREATING", true) => "CREATED",
            ("CREATING", false) => "CREATE_FAILED",
            ("UPDATING", true) => "UPDATED",
            ("UPDATING", false) => "UPDATE_FAILED",
            (other, _) => other,
        };
        image.set_state(settled);
        true
    });
    if recorded != Some(true) {
        // The image or version went away meanwhile: nothing will boot from these layers.
        remove_dir(out_dir).await;
    }
}

/// Removes a version's build directory (best effort; logged).
pub(crate) async fn remove_dir(dir: &Path) {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot remove {}: {e}", dir.display()),
    }
}

async fn fresh_dir(dir: &Path) -> std::io::Result<()> {
    remove_dir(dir).await;
    tokio::fs::create_dir_all(dir).await
}

/// Bytes of the regular files under `dir` (symlinks not followed).
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}
