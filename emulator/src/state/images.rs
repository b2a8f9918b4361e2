//! The image catalog: the managed base image and the customer images of the emulator's account.
//!
//! Both images present at start are backed by the host root filesystem (the sandbox overlays it).
//! Creating, updating and deleting images is a later issue; the catalog is read-mostly for now.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::RwLock;

use super::clock::epoch_now;

/// Name of the managed base image (reference §A.4.9).
pub(crate) const MANAGED_BASE_NAME: &str = "al2023-1";
/// Name of the customer image the emulator provides at start (emulator-only).
pub(crate) const DEFAULT_IMAGE_NAME: &str = "whim-default";

/// One version of a customer image (reference §A.4.7).
#[derive(Debug, Clone)]
pub(crate) struct ImageVersion {
    /// `"1.0"`, `"2.0"`, …
    pub version: String,
    /// MicrovmImageVersionState wire value.
    pub state: &'static str,
    /// `ACTIVE` or `INACTIVE`.
    pub status: &'static str,
    /// Epoch seconds.
    pub created_at: f64,
    /// Epoch seconds.
    pub updated_at: f64,
    /// The managed base this version was built on.
    pub base_image_arn: String,
    /// Normalised base version (`"1.0"`).
    pub base_image_version: String,
    /// Build role ARN.
    pub build_role_arn: String,
    /// `codeArtifact.uri`.
    pub code_artifact_uri: String,
    /// Image-level egress connectors.
    pub egress: Vec<String>,
    /// `resources[0].minimumMemoryInMiB`.
    pub memory_mib: u32,
    /// Optional description.
    pub description: Option<String>,
}

/// A customer image (reference §A.4.6).
#[derive(Debug, Clone)]
pub(crate) struct Image {
    /// Image name (last ARN segment).
    pub name: String,
    /// Image ARN.
    pub arn: String,
    /// The unmodelled `id` member (a UUID).
    pub id: String,
    /// MicrovmImageState wire value.
    pub state: &'static str,
    /// Epoch seconds.
    pub created_at: f64,
    /// Epoch seconds.
    pub updated_at: f64,
    /// Tags (`{}` when none).
    pub tags: BTreeMap<String, String>,
    /// Versions, oldest first.
    pub versions: Vec<ImageVersion>,
    /// Lower dir of the VMs' overlay root.
    pub root: PathBuf,
    /// Test fixture: VMs of this image die while PENDING with this `stateReason`.
    pub startup_failure: Option<String>,
}

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
}

/// Why no launchable version was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LaunchLookup {
    /// No such image, or no ACTIVE+SUCCESSFUL version (pinned or latest).
    NoActiveVersion,
}

/// All images the emulator knows.
#[derive(Debug)]
pub(crate) struct ImageCatalog {
    images: RwLock<Vec<Image>>,
    managed: Vec<ManagedImage>,
}

impl ImageCatalog {
    /// The catalog present at start: `al2023-1` (versions 1 and 0) and `whim-default` (1.0).
    /// Each of `failing` adds an image whose VMs die at startup (see `EmulatorConfig`).
    pub(crate) fn seeded(region: &str, account: &str, failing: &[(String, String)]) -> Self {
        let now = epoch_now();
        let managed_arn = managed_image_arn(region, MANAGED_BASE_NAME);
        let managed = ManagedImage {
            arn: managed_arn.clone(),
            created_at: now,
            updated_at: now,
            versions: ["1", "0"]
                .iter()
                .map(|v| ManagedVersion { version: (*v).into(), status: "AVAILABLE", created_at: now, updated_at: now })
                .collect(),
        };
        let mut images = vec![default_image(region, account, &managed_arn, now, DEFAULT_IMAGE_NAME)];
        for (name, reason) in failing {
            let mut image = default_image(region, account, &managed_arn, now, name);
            image.startup_failure = Some(reason.clone());
            images.push(image);
        }
        Self { images: RwLock::new(images), managed: vec![managed] }
    }

    /// A customer image by ARN.
    pub(crate) fn get(&self, arn: &str) -> Option<Image> {
        self.read().iter().find(|i| i.arn == arn).cloned()
    }

    /// Every customer image, in creation order.
    pub(crate) fn list(&self) -> Vec<Image> {
        self.read().clone()
    }

    /// The managed base images.
    pub(crate) fn managed(&self) -> &[ManagedImage] {
        &self.managed
    }

    /// The image and version RunMicrovm would launch: the pinned version, else the newest
    /// version that is both SUCCESSFUL and ACTIVE.
    pub(crate) fn launchable(&self, arn: &str, pinned: Option<&str>) -> Result<(Image, ImageVersion), LaunchLookup> {
        let image = self.get(arn).ok_or(LaunchLookup::NoActiveVersion)?;
        let usable = |v: &&ImageVersion| v.state == "SUCCESSFUL" && v.status == "ACTIVE";
        let version = match pinned {
            Some(p) => image.versions.iter().filter(usable).find(|v| v.version == p),
            None => image.versions.iter().rev().find(usable),
        };
        let version = version.cloned().ok_or(LaunchLookup::NoActiveVersion)?;
        Ok((image, version))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Image>> {
        self.images.read().unwrap_or_else(std::sync::PoisonError::into_inner)
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

fn default_image(region: &str, account: &str, base_arn: &str, now: f64, name: &str) -> Image {
    // Build facts of the emulator's own image are invented (emulator-only): nothing was built.
    let version = ImageVersion {
        version: "1.0".into(),
        state: "SUCCESSFUL",
        status: "ACTIVE",
        created_at: now,
        updated_at: now,
        base_image_arn: base_arn.into(),
        base_image_version: "1.0".into(),
        build_role_arn: format!("arn:aws:iam::{account}:role/whim-local-build"),
        code_artifact_uri: format!("s3://whim-local-{account}/{name}.zip"),
        egress: vec![managed_connector_arn(region, "INTERNET_EGRESS")],
        memory_mib: 2048,
        description: Some("The host root filesystem, served by whim-emulator".into()),
    };
    Image {
        name: name.into(),
        arn: image_arn(region, account, name),
        id: uuid::Uuid::new_v4().to_string(),
        state: "CREATED",
        created_at: now,
        updated_at: now,
        tags: BTreeMap::new(),
        versions: vec![version],
        root: PathBuf::from("/"),
        startup_failure: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_catalog_launches_the_default_image() {
        let c = ImageCatalog::seeded("us-east-1", "123456789012", &[]);
        let arn = image_arn("us-east-1", "123456789012", DEFAULT_IMAGE_NAME);
        let (img, ver) = c.launchable(&arn, None).expect("default image launches");
        assert_eq!((img.state, ver.version.as_str()), ("CREATED", "1.0"));
        assert!(c.launchable(&arn, Some("9.0")).is_err());
        assert_eq!(c.managed()[0].versions[0].version, "1");
    }
}
