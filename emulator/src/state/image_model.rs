//! Customer images, their versions and builds (reference §A.4.5–A.4.8, §C.2), with the state
//! walks the control plane and the build task drive.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::clock::epoch_now;
use crate::build::ImageFs;

/// What Create/UpdateMicrovmImage asked a version to be, after defaults. Members the emulator
/// only echoes are kept as the JSON they arrived as.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImageSpec {
    /// The managed base's ARN.
    pub base_image_arn: String,
    /// Normalised base version (`"1.0"`).
    pub base_image_version: String,
    /// Build role ARN.
    pub build_role_arn: String,
    /// `codeArtifact.uri`.
    pub code_artifact_uri: String,
    /// Optional description.
    pub description: Option<String>,
    /// Image-level egress connectors (`[INTERNET_EGRESS]` when absent; an explicit `[]` stays).
    pub egress: Vec<String>,
    /// `resources[0].minimumMemoryInMiB`.
    pub memory_mib: i64,
    /// `additionalOsCapabilities` as given.
    pub capabilities: Option<Value>,
    /// `cpuConfigurations` as given.
    pub cpu_configurations: Option<Value>,
    /// `logging` as given.
    pub logging: Option<Value>,
    /// `hooks` as given.
    pub hooks: Option<Value>,
    /// `environmentVariables` as given.
    pub environment_variables: Option<Value>,
}

impl ImageSpec {
    /// `additionalOsCapabilities` contains `ALL`.
    pub(crate) fn privileged(&self) -> bool {
        self.capabilities.as_ref().and_then(Value::as_array).is_some_and(|caps| caps.iter().any(|c| c == "ALL"))
    }

    /// The egress list lacks `INTERNET_EGRESS` (an emulator reading; see `Guesses`).
    pub(crate) fn lacks_internet_egress(&self) -> bool {
        !self.egress.iter().any(|arn| arn.rsplit(':').next() == Some("INTERNET_EGRESS"))
    }
}

/// Sizes a successful build reports (`snapshotBuild`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SnapshotSizes {
    /// `memorySnapshotSizeInBytes`.
    pub memory: u64,
    /// `codeInstallSizeInBytes`.
    pub code_install: u64,
    /// `diskSnapshotSizeInBytes`.
    pub disk: u64,
}

/// One build of a version: one per chipset generation (reference §A.4.8).
#[derive(Debug, Clone)]
pub(crate) struct Build {
    /// UUID.
    pub id: String,
    /// `"4"` or `"3"` (GRAVITON, ARM_64).
    pub generation: &'static str,
    /// BuildState wire value.
    pub state: &'static str,
    /// Why it failed.
    pub state_reason: Option<String>,
    /// Epoch seconds.
    pub created_at: f64,
    /// Set on success.
    pub snapshot: Option<SnapshotSizes>,
}

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
    /// What the version was asked to be.
    pub spec: ImageSpec,
    /// Builds, generation 4 first (as listed by the service).
    pub builds: Vec<Build>,
    /// What its VMs boot from, once SUCCESSFUL.
    pub fs: Option<ImageFs>,
    /// The build's directory (removed with the version); `None` for images nobody built.
    pub out_dir: Option<PathBuf>,
}

impl ImageVersion {
    /// A PENDING version with two PENDING builds.
    pub(crate) fn pending(version: String, spec: ImageSpec, out_dir: PathBuf) -> Self {
        let now = epoch_now();
        let build = |generation| Build {
            id: uuid::Uuid::new_v4().to_string(),
            generation,
            state: "PENDING",
            state_reason: None,
            created_at: now,
            snapshot: None,
        };
        let builds = vec![build("4"), build("3")];
        Self {
            version,
            state: "PENDING",
            status: "ACTIVE",
            created_at: now,
            updated_at: now,
            spec,
            builds,
            fs: None,
            out_dir: Some(out_dir),
        }
    }

    /// SUCCESSFUL and ACTIVE: RunMicrovm may launch it.
    pub(crate) fn launchable(&self) -> bool {
        self.state == "SUCCESSFUL" && self.status == "ACTIVE" && self.fs.is_some()
    }

    /// PENDING or IN_PROGRESS.
    pub(crate) fn building(&self) -> bool {
        matches!(self.state, "PENDING" | "IN_PROGRESS")
    }

    /// Moves the version and its builds to `state` (build states share the version's names).
    pub(crate) fn set_state(&mut self, state: &'static str) {
        self.state = state;
        self.updated_at = epoch_now();
        for build in &mut self.builds {
            build.state = state;
        }
    }
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
    /// Test fixture: VMs of this image die while PENDING with this `stateReason`.
    pub startup_failure: Option<String>,
}

impl Image {
    /// Moves the image to `state`.
    pub(crate) fn set_state(&mut self, state: &'static str) {
        self.state = state;
        self.updated_at = epoch_now();
    }

    /// A version by name.
    pub(crate) fn version_mut(&mut self, version: &str) -> Option<&mut ImageVersion> {
        self.versions.iter_mut().find(|v| v.version == version)
    }

    /// The version number the next UpdateMicrovmImage mints: `"N+1.0"`.
    pub(crate) fn next_version(&self) -> String {
        let major = |v: &ImageVersion| v.version.split('.').next().and_then(|m| m.parse::<u64>().ok()).unwrap_or(0);
        format!("{}.0", self.versions.iter().map(major).max().unwrap_or(0) + 1)
    }

    /// `latestActiveImageVersion`: the newest SUCCESSFUL and ACTIVE version.
    pub(crate) fn latest_active(&self) -> Option<&ImageVersion> {
        self.versions.iter().rev().find(|v| v.state == "SUCCESSFUL" && v.status == "ACTIVE")
    }

    /// `latestFailedImageVersion`: the newest FAILED version.
    pub(crate) fn latest_failed(&self) -> Option<&ImageVersion> {
        self.versions.iter().rev().find(|v| v.state == "FAILED")
    }

    /// True while a build or a delete of one of its versions is under way.
    pub(crate) fn busy(&self) -> bool {
        self.versions.iter().any(|v| v.building() || v.state == "DELETING")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ImageSpec {
        ImageSpec {
            base_image_arn: "arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1".into(),
            base_image_version: "1.0".into(),
            build_role_arn: "arn:aws:iam::123456789012:role/b".into(),
            code_artifact_uri: "s3://b/k.zip".into(),
            description: None,
            egress: vec![],
            memory_mib: 2048,
            capabilities: Some(serde_json::json!(["ALL"])),
            cpu_configurations: None,
            logging: None,
            hooks: None,
            environment_variables: None,
        }
    }

    #[test]
    fn versions_count_up_and_builds_follow_the_version() {
        let mut v = ImageVersion::pending("1.0".into(), spec(), "/tmp/x".into());
        assert_eq!(v.builds.iter().map(|b| b.generation).collect::<Vec<_>>(), ["4", "3"]);
        v.set_state("IN_PROGRESS");
        assert!(v.building() && v.builds.iter().all(|b| b.state == "IN_PROGRESS"));
        assert!(v.spec.privileged() && v.spec.lacks_internet_egress());
        let image = Image {
            name: "n".into(),
            arn: "a".into(),
            id: "i".into(),
            state: "CREATING",
            created_at: 0.0,
            updated_at: 0.0,
            tags: BTreeMap::new(),
            versions: vec![v],
            startup_failure: None,
        };
        assert_eq!(image.next_version(), "2.0");
        assert!(image.busy() && image.latest_active().is_none());
    }
}
