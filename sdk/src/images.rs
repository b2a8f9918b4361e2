//! Custom images: listing, creating, waiting for a build, deleting (reference §A, §C.2, §D).

use std::time::{Duration, Instant};

use aws_sdk_lambdamicrovms::types::{Capability, CodeArtifact};
use aws_smithy_async::rt::sleep::AsyncSleep as _;
use whim_core::image::{BUILD_TIMEOUT, Egress, ImageProgress, failure_reason, poll_interval};

use crate::error::api;
use crate::{Api, Error};

/// One image of the caller's account, as `whim image ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    /// The image name.
    pub name: String,
    /// The image ARN.
    pub arn: String,
    /// The wire state (`CREATED`, `CREATE_FAILED`, …).
    pub state: String,
    /// The version VMs launch from, if any.
    pub latest_active_version: Option<String>,
    /// The version whose build failed last, if any.
    pub latest_failed_version: Option<String>,
    /// When it was created, since the Unix epoch.
    pub created_at: Duration,
}

/// What an image version was built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSettings {
    /// Where its VMs may connect to.
    pub egress: Egress,
    /// All OS capabilities.
    pub privileged: bool,
    /// `codeArtifact.uri`: the context zip it was built from.
    pub artifact_uri: Option<String>,
}

/// What CreateMicrovmImage is asked for.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The image name.
    pub name: String,
    /// The managed base ARN.
    pub base_image_arn: String,
    /// The build role ARN.
    pub build_role_arn: String,
    /// `s3://bucket/key` of the context zip.
    pub artifact_uri: String,
    /// `egressNetworkConnectors` (`None`: the service default).
    pub egress: Option<Vec<String>>,
    /// `additionalOsCapabilities: ["ALL"]`.
    pub privileged: bool,
}

/// A state change while waiting for a build (for progress displays).
pub type StateSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

fn since_epoch(t: &aws_sdk_lambdamicrovms::primitives::DateTime) -> Duration {
    u64::try_from(t.secs()).map_or(Duration::ZERO, Duration::from_secs)
}

fn entry(i: &aws_sdk_lambdamicrovms::types::MicrovmImageSummary) -> ImageEntry {
    ImageEntry {
        name: i.name().to_owned(),
        arn: i.image_arn().to_owned(),
        state: i.state().as_str().to_owned(),
        latest_active_version: i.latest_active_image_version().map(str::to_owned),
        latest_failed_version: i.latest_failed_image_version().map(str::to_owned),
        created_at: since_epoch(i.created_at()),
    }
}

/// How long a delete refused "in the current state" or "with running microvms" is retried.
const DELETE_RETRY: Duration = Duration::from_secs(30);

fn is_transient_refusal(code: &str, message: &str) -> bool {
    (code == "ValidationException" || code == "ConflictException")
        && (message.contains("current state") || message.contains("running microvms"))
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Api { code: Some(c), .. } if c == "ResourceNotFoundException")
}

impl Api {
    /// The managed base image ARN of this region.
    #[must_use]
    pub fn managed_base_arn(&self) -> String {
        format!("arn:aws:lambda:{}:aws:microvm-image:{}", self.region(), whim_core::image::MANAGED_BASE)
    }

    /// One page of ListManagedMicrovmImages (free, read-only): proves endpoint, signature,
    /// IAM and region together. Returns how many managed images it listed.
    pub async fn probe_managed_images(&self) -> Result<usize, Error> {
        let out = self.client.list_managed_microvm_images().send().await.map_err(|e| api("ListManagedMicrovmImages", e))?;
        Ok(out.items().len())
    }

    /// Every image of the caller's account (all pages), sorted by name.
    pub async fn list_images(&self) -> Result<Vec<ImageEntry>, Error> {
        let mut pages = self.client.list_microvm_images().into_paginator().send();
        let mut out: Vec<ImageEntry> = Vec::new();
        while let Some(page) = pages.next().await {
            for i in page.map_err(|e| api("ListMicrovmImages", e))?.items() {
                if out.iter().all(|o| o.arn != i.image_arn()) {
                    out.push(entry(i));
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The image named exactly `name`, if any (every page is read: `nameFilter` is a
    /// substring match applied after paging).
    pub async fn find_image(&self, name: &str) -> Result<Option<ImageEntry>, Error> {
        let mut pages = self.client.list_microvm_images().name_filter(name).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api("ListMicrovmImages", e))?;
            if let Some(i) = page.items().iter().find(|i| i.name() == name) {
                return Ok(Some(entry(i)));
            }
        }
        Ok(None)
    }

    /// GetMicrovmImage's state and versions, `None` when the image is gone.
    pub async fn image_state(&self, arn: &str) -> Result<Option<(String, Option<String>, Option<String>)>, Error> {
        match self.client.get_microvm_image().image_identifier(arn).send().await.map_err(|e| api("GetMicrovmImage", e)) {
            Ok(o) => Ok(Some((
                o.state().as_str().to_owned(),
                o.latest_active_image_version().map(str::to_owned),
                o.latest_failed_image_version().map(str::to_owned),
            ))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What version `version` of image `arn` was built with.
    pub async fn image_settings(&self, arn: &str, version: &str) -> Result<VersionSettings, Error> {
        let out = self
            .client
            .get_microvm_image_version()
            .image_identifier(arn)
            .image_version(version)
            .send()
            .await
            .map_err(|e| api("GetMicrovmImageVersion", e))?;
        Ok(VersionSettings {
            egress: Egress::from_connectors(out.egress_network_connectors()),
            privileged: out.additional_os_capabilities().contains(&Capability::All),
            artifact_uri: out.code_artifact().and_then(|c| c.as_uri().ok()).cloned(),
        })
    }

    /// CreateMicrovmImage with a fresh `clientToken` (tokens are permanent for images: a
    /// reused one replays an old create, reference §A.7). Returns the ARN and version.
    pub async fn create_image(&self, spec: &ImageSpec) -> Result<(String, String), Error> {
        let out = self
            .client
            .create_microvm_image()
            .name(&spec.name)
            .base_image_arn(&spec.base_image_arn)
            .build_role_arn(&spec.build_role_arn)
            .code_artifact(CodeArtifact::Uri(spec.artifact_uri.clone()))
            .set_egress_network_connectors(spec.egress.clone())
            .set_additional_os_capabilities(spec.privileged.then(|| vec![Capability::All]))
            .client_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .map_err(|e| api("CreateMicrovmImage", e))?;
        Ok((out.image_arn().to_owned(), out.image_version().to_owned()))
    }

    /// Waits until image `arn` is built: `Ok(version)` when launchable, [`Error::BuildFailed`]
    /// with the builds' `stateReason`s when it failed.
    pub async fn wait_built(&self, name: &str, arn: &str, on_state: StateSink<'_>) -> Result<String, Error> {
        let sleep = self.sleeper()?;
        let start = Instant::now();
        let mut last = String::new();
        let deleted = || Error::BuildFailed {
            name: name.into(),
            reason: "the image was deleted while it was being built (`whim image rm`, or another build's --force)".into(),
        };
        for n in 0.. {
            let Some((state, active, failed)) = self.image_state(arn).await? else {
                return Err(deleted());
            };
            if state != last {
                on_state(&state);
                last.clone_from(&state);
            }
            match ImageProgress::from_wire(&state) {
                ImageProgress::Ready => {
                    return active.ok_or_else(|| Error::BuildFailed {
                        name: name.into(),
                        reason: format!("the image is {state} but has no active version"),
                    });
                }
                ImageProgress::Failed => return Err(self.build_failure(name, arn, failed.as_deref()).await),
                ImageProgress::Deleting => return Err(deleted()),
                ImageProgress::Building if start.elapsed() > BUILD_TIMEOUT => {
                    return Err(Error::Timeout(format!("image {name} still {state} after {} minutes", BUILD_TIMEOUT.as_secs() / 60)));
                }
                ImageProgress::Building => sleep.sleep(poll_interval(n)).await,
            }
        }
        unreachable!("the poll loop only ends by returning")
    }

    pub(crate) async fn build_failure(&self, name: &str, arn: &str, version: Option<&str>) -> Error {
        let Some(version) = version else {
            return Error::BuildFailed { name: name.into(), reason: failure_reason([None]) };
        };
        let builds = self.client.list_microvm_image_builds().image_identifier(arn).image_version(version).send().await;
        let reason = match builds {
            Ok(b) => failure_reason(b.items().iter().map(|b| b.state_reason())),
            Err(e) => format!("the builds could not be read: {}", api("ListMicrovmImageBuilds", e)),
        };
        Error::BuildFailed { name: name.into(), reason }
    }

    /// Deletes the image named `name_or_arn` (a name of the caller's account or an ARN) and
    /// waits until it is gone; an unknown name is [`Error::ImageNotFound`].
    pub async fn remove_image(&self, name_or_arn: &str) -> Result<(), Error> {
        let arn = if name_or_arn.starts_with("arn:") {
            if self.image_state(name_or_arn).await?.is_none() {
                return Err(Error::ImageNotFound(name_or_arn.to_owned()));
            }
            name_or_arn.to_owned()
        } else {
            self.find_image(name_or_arn).await?.ok_or_else(|| Error::ImageNotFound(name_or_arn.to_owned()))?.arn
        };
        self.delete_image(&arn).await
    }

    /// The caller's VMs launched from image `arn` that are up and not on their way out
    /// (terminating ones drain by themselves; these will not).
    async fn live_vms_of(&self, arn: &str) -> Result<Vec<String>, Error> {
        let vms = self.list(false).await?;
        Ok(vms.into_iter().filter(|v| v.image_arn == arn && !v.state.is_final()).map(|v| v.id).collect())
    }

    /// Deletes image `arn` and waits until it is gone (its name stays reserved while it
    /// drains). An image that is already gone is not an error.
    pub async fn delete_image(&self, arn: &str) -> Result<(), Error> {
        let sleep = self.sleeper()?;
        let start = Instant::now();
        // Refusals while VMs terminate or builds and version deletes drain are retried for a
        // while (reference §D.4); a VM that stays up is reported.
        for n in 0.. {
            match self.client.delete_microvm_image().image_identifier(arn).send().await.map_err(|e| api("DeleteMicrovmImage", e)) {
                Ok(_) => break,
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(Error::Api { code: Some(c), message, .. }) if is_transient_refusal(&c, &message) => {
                    // VMs that are up will not go away by themselves: say which, at once.
                    let live = if message.contains("running microvms") { self.live_vms_of(arn).await? } else { Vec::new() };
                    if live.is_empty() && start.elapsed() < DELETE_RETRY {
                        tracing::debug!(%message, "DeleteMicrovmImage refused; retrying");
                        sleep.sleep(poll_interval(n)).await;
                        continue;
                    }
                    let which = if live.is_empty() { "them".to_owned() } else { live.join(", ") };
                    let advice = if message.contains("running microvms") {
                        format!(" Terminate {which} first (`whim ps` lists them, `whim gc` reaps them).")
                    } else {
                        String::new()
                    };
                    return Err(Error::Api { operation: "DeleteMicrovmImage", code: Some(c), message: format!("{message}{advice}") });
                }
                Err(e) => return Err(e),
            }
        }
        for n in 0.. {
            match self.image_state(arn).await? {
                None => return Ok(()),
                Some((state, ..)) if state == "DELETE_FAILED" => {
                    return Err(Error::Api {
                        operation: "DeleteMicrovmImage",
                        code: None,
                        message: format!("the delete of {arn} failed (DELETE_FAILED)"),
                    });
                }
                // Someone made an image of that name again (a parallel `build --force`):
                // there is nothing left to wait for. A launchable state right after the delete
                // may be the service catching up, so that one is given a while.
                Some((state, ..))
                    if ImageProgress::from_wire(&state) == ImageProgress::Building
                        || (ImageProgress::from_wire(&state) == ImageProgress::Ready && start.elapsed() > DELETE_RETRY) =>
                {
                    return Err(Error::Api {
                        operation: "DeleteMicrovmImage",
                        code: None,
                        message: format!("{arn} was created again ({state}) while it was being deleted, by another build: try again"),
                    });
                }
                Some((state, ..)) if start.elapsed() > BUILD_TIMEOUT => {
                    return Err(Error::Timeout(format!("image {arn} still {state} after the delete")));
                }
                Some(_) => sleep.sleep(poll_interval(n)).await,
            }
        }
        unreachable!("the poll loop only ends by returning")
    }
}
