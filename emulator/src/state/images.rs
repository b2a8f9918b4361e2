//! The image catalog: the managed base image and the customer images of the emulator's account.
//!
//! The managed base `al2023-1` and the seeded `whim-default` image are backed by the host root
//! filesystem (the sandbox overlays it); images created through the API are built from their
//! code artifact by [`super::image_build`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};

use serde_json::Value;

use super::clock::epoch_now;
pub(crate) use super::image_model::{Image, ImageSpec, ImageVersion};
use crate::build::ImageFs;
use crate::config::EmulatorConfig;

/// Name of the managed base image (reference §A.4.9).
pub(crate) const MANAGED_BASE_NAME: &str = "al2023-1";
/// Name of the customer image the emulator provides at start (emulator-only).
pub(crate) const DEFAULT_IMAGE_NAME: &str = "whim-default";

/// One version of a managed base image.
#[derive(Debug, Clone)]
pub(crate) struct ManagedVersion {
    /// `"1"`, `"0"`.
    pub version: String,
    /// `AVAILABLE` or `DEPRECATED`.
    pub status: &'static str,
    /// Epoch seconds.
    pub created_at: f64,
    /// Epoch seconds.
    pub updated_at: f64,
}

/// A managed base image (reference §A.4.9).
#[derive(Debug, Clone)]
pub(crate) struct ManagedImage {
    /// `arn:aws:lambda:<region>:aws:microvm-image:<name>`.
    pub arn: String,
    /// Epoch seconds.
    pub created_at: f64,
    /// Epoch seconds.
    pub updated_at: f64,
    /// Versions, newest first (as recorded).
    pub versions: Vec<ManagedVersion>,
    /// What `FROM` maps to in builds on this base (every version alike).
    pub fs: ImageFs,
}

/// Why no launchable version was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LaunchLookup {
    /// No such image, or no ACTIVE+SUCCESSFUL version (pinned or latest).
    NoActiveVersion,
}

/// What an earlier Create/UpdateMicrovmImage with a `clientToken` answered.
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    /// The operation and its parameters (everything but the token), to detect reuse.
    pub fingerprint: String,
    /// The original answer.
    pub answer: Value,
}

/// All images the emulator knows.
#[derive(Debug)]
pub(crate) struct ImageCatalog {
    images: RwLock<Vec<Image>>,
    managed: Vec<ManagedImage>,
    replays: Mutex<HashMap<String, Replay>>,
}

impl ImageCatalog {
    /// The catalog present at start: `al2023-1` (versions 1 and 0), `whim-default` (1.0) unless
    /// `cfg.seed_default_image` is off, and one image per `cfg.startup_failures`.
    pub(crate) fn seeded(cfg: &EmulatorConfig) -> Self {
        let now = epoch_now();
        let managed_arn = managed_image_arn(&cfg.region, MANAGED_BASE_NAME);
        let host_root = ImageFs::from_root(cfg.sandbox.image_root.clone());
        let managed = ManagedImage {
            arn: managed_arn.clone(),
            created_at: now,
            updated_at: now,
            versions: ["1", "0"]
                .iter()
                .map(|v| ManagedVersion { version: (*v).into(), status: "AVAILABLE", created_at: now, updated_at: now })
                .collect(),
            fs: host_root.clone(),
        };
        let mut images = Vec::new();
        if cfg.seed_default_image {
            images.push(host_image(cfg, &managed_arn, &host_root, DEFAULT_IMAGE_NAME));
        }
        for (name, reason) in &cfg.startup_failures {
            let mut image = host_image(cfg, &managed_arn, &host_root, name);
            image.startup_failure = Some(reason.clone());
            images.push(image);
        }
        Self { images: RwLock::new(images), managed: vec![managed], replays: Mutex::new(HashMap::new()) }
    }

    /// A customer image by ARN.
    pub(crate) fn get(&self, arn: &str) -> Option<Image> {
        self.read().iter().find(|i| i.arn == arn).cloned()
    }

    /// Every customer image, in creation order.
    pub(crate) fn list(&self) -> Vec<Image> {
        self.read().clone()
    }

    /// Adds a new image; `false` (and nothing added) when its name is taken.
    pub(crate) fn insert(&self, image: Image) -> bool {
        let mut images = self.write();
        if images.iter().any(|i| i.name == image.name) {
            return false;
        }
        images.push(image);
        true
    }

    /// Runs `change` on the image `arn`; `None` when there is none.
    pub(crate) fn with_image<R>(&self, arn: &str, change: impl FnOnce(&mut Image) -> R) -> Option<R> {
        self.write().iter_mut().find(|i| i.arn == arn).map(change)
    }

    /// Removes the image `arn`.
    pub(crate) fn remove(&self, arn: &str) -> Option<Image> {
        let mut images = self.write();
        let at = images.iter().position(|i| i.arn == arn)?;
        Some(images.remove(at))
    }

    /// The managed base images.
    pub(crate) fn managed(&self) -> &[ManagedImage] {
        &self.managed
    }

    /// The image and version RunMicrovm would launch: the pinned version, else the newest
    /// version that is both SUCCESSFUL and ACTIVE (never while the image is being deleted).
    pub(crate) fn launchable(&self, arn: &str, pinned: Option<&str>) -> Result<(Image, ImageVersion), LaunchLookup> {
        let image = self.get(arn).filter(|i| i.state != "DELETING").ok_or(LaunchLookup::NoActiveVersion)?;
        let usable = |v: &&ImageVersion| v.launchable();
        let version = match pinned {
            Some(p) => image.versions.iter().filter(usable).find(|v| v.version == p),
            None => image.versions.iter().rev().find(usable),
        };
        let version = version.cloned().ok_or(LaunchLookup::NoActiveVersion)?;
        Ok((image, version))
    }

    /// The earlier answer to `token`, if any.
    pub(crate) fn replay(&self, token: &str) -> Option<Replay> {
        self.lock_replays().get(token).cloned()
    }

    /// Remembers the answer to `token` (permanently, as the service does for images).
    pub(crate) fn remember(&self, token: String, replay: Replay) {
        self.lock_replays().insert(token, replay);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Image>> {
        self.images.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Image>> {
        self.images.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_replays(&self) -> std::sync::MutexGuard<'_, HashMap<String, Replay>> {
        self.replays.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `arn:aws:lambda:<region>:aws:microvm-image:<name>`.
pub(crate) fn managed_image_arn(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:aws:microvm-image:{name}")
}

/// `arn:aws:lambda:<region>:<account>:microvm-image:<name>`.
pub(crate) fn image_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:microvm-image:{name}")
}

/// A managed network connector ARN (`HTTP_INGRESS`, `SHELL_INGRESS`, `ALL_INGRESS`, `INTERNET_EGRESS`).
pub(crate) fn managed_connector_arn(region: &str, kind: &str) -> String {
    format!("arn:aws:lambda:{region}:aws:network-connector:aws-network-connector:{kind}")
}

/// An image that exists from the start, backed by the host root (emulator-only: nothing was
/// built, so its build facts are invented).
fn host_image(cfg: &EmulatorConfig, base_arn: &str, host_root: &ImageFs, name: &str) -> Image {
    let now = epoch_now();
    let spec = ImageSpec {
        base_image_arn: base_arn.into(),
        base_image_version: "1.0".into(),
        build_role_arn: format!("arn:aws:iam::{}:role/whim-local-build", cfg.account),
        code_artifact_uri: format!("s3://whim-local-{}/{name}.zip", cfg.account),
        description: Some("The host root filesystem, served by whim-emulator".into()),
        egress: vec![managed_connector_arn(&cfg.region, "INTERNET_EGRESS")],
        memory_mib: 2048,
        capabilities: None,
        cpu_configurations: None,
        logging: None,
        hooks: None,
        environment_variables: None,
    };
    let mut version = ImageVersion::pending("1.0".into(), spec, std::path::PathBuf::new());
    version.set_state("SUCCESSFUL");
    version.out_dir = None;
    version.fs = Some(host_root.clone());
    Image {
        name: name.into(),
        arn: image_arn(&cfg.region, &cfg.account, name),
        id: uuid::Uuid::new_v4().to_string(),
        state: "CREATED",
        created_at: now,
        updated_at: now,
        tags: BTreeMap::new(),
        versions: vec![version],
        startup_failure: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_catalog_launches_the_default_image() {
        let c = ImageCatalog::seeded(&EmulatorConfig::local_default());
        let arn = image_arn("us-east-1", "123456789012", DEFAULT_IMAGE_NAME);
        let (img, ver) = c.launchable(&arn, None).expect("default image launches");
        assert_eq!((img.state, ver.version.as_str()), ("CREATED", "1.0"));
        assert_eq!(ver.fs.map(|fs| fs.layers), Some(vec![std::path::PathBuf::from("/")]));
        assert!(c.launchable(&arn, Some("9.0")).is_err());
        assert_eq!(c.managed()[0].versions[0].version, "1");
        let mut cfg = EmulatorConfig::local_default();
        cfg.seed_default_image = false;
        assert!(ImageCatalog::seeded(&cfg).list().is_empty());
    }
}
