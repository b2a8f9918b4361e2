//! Image, version and build shapes, member for member as the service sends them: explicit
//! `null`s, the unmodelled members (`id`, `buildPhaseOverrides`, `roleConfiguration`,
//! `versionStateTimeBucket`, `terminationReasonCode`), builds' `buildState` (reference §A.4.5–A.4.8).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::state::clock::hour_bucket;
use crate::state::image_model::{Build, ImageSpec};
use crate::state::images::{Image, ImageVersion};

/// The members a version's request set, echoed on Create/Update answers and on versions.
fn spec_members(spec: &ImageSpec) -> Map<String, Value> {
    let v = json!({
        "baseImageArn": spec.base_image_arn,
        "baseImageVersion": spec.base_image_version,
        "buildRoleArn": spec.build_role_arn,
        "description": spec.description,
        "codeArtifact": {"uri": spec.code_artifact_uri},
        "logging": spec.logging,
        "egressNetworkConnectors": spec.egress,
        "cpuConfigurations": spec.cpu_configurations,
        "resources": [{"minimumMemoryInMiB": spec.memory_mib}],
        "additionalOsCapabilities": spec.capabilities,
        "hooks": spec.hooks,
        "environmentVariables": spec.environment_variables,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// CreateMicrovmImage (`tags` = `Some`) and UpdateMicrovmImage (`None`: no `tags` member) answer.
pub(crate) fn image_reply(image: &Image, version: &ImageVersion, tags: Option<Option<&BTreeMap<String, String>>>) -> Value {
    let mut m = spec_members(&version.spec);
    for (k, v) in [
        ("imageArn", json!(image.arn)),
        ("name", json!(image.name)),
        ("id", json!(image.id)),
        ("state", json!(image.state)),
        ("imageVersion", json!(version.version)),
        ("latestActiveImageVersion", json!(image.latest_active().map(|v| &v.version))),
        ("latestFailedImageVersion", json!(image.latest_failed().map(|v| &v.version))),
        ("createdAt", json!(image.created_at)),
        ("updatedAt", json!(image.updated_at)),
        ("buildPhaseOverrides", Value::Null),
        ("roleConfiguration", Value::Null),
    ] {
        m.insert(k.into(), v);
    }
    if let Some(tags) = tags {
        m.insert("tags".into(), json!(tags));
    }
    Value::Object(m)
}

/// A ListMicrovmImages item.
pub(crate) fn image_summary(image: &Image) -> Value {
    json!({
        "imageArn": image.arn,
        "name": image.name,
        "id": image.id,
        "state": image.state,
        "latestActiveImageVersion": image.latest_active().map(|v| &v.version),
        "latestFailedImageVersion": image.latest_failed().map(|v| &v.version),
        "createdAt": image.created_at,
    })
}

/// GetMicrovmImage answer (no `stateReason`; `tags` is `{}` when none).
pub(crate) fn image(image: &Image) -> Value {
    let mut v = image_summary(image);
    v["tags"] = json!(image.tags);
    v["updatedAt"] = json!(image.updated_at);
    v
}

/// GetMicrovmImageVersion / UpdateMicrovmImageVersion answer and ListMicrovmImageVersions item.
/// The version's `stateReason` is null even on failure: the reason lives on the builds (§D.3).
pub(crate) fn image_version(image: &Image, version: &ImageVersion) -> Value {
    let mut m = spec_members(&version.spec);
    for (k, v) in [
        ("imageArn", json!(image.arn)),
        ("imageVersion", json!(version.version)),
        ("state", json!(version.state)),
        ("status", json!(version.status)),
        ("stateReason", Value::Null),
        ("createdAt", json!(version.created_at)),
        ("updatedAt", json!(version.updated_at)),
        ("tags", Value::Null),
        ("versionStateTimeBucket", json!(format!("{}#{}", version.state, hour_bucket(version.updated_at)))),
    ] {
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

/// A ListMicrovmImageBuilds item.
pub(crate) fn build_summary(image: &Image, version: &ImageVersion, build: &Build) -> Value {
    json!({
        "imageArn": image.arn,
        "imageVersion": version.version,
        "buildId": build.id,
        "buildState": build.state,
        "architecture": "ARM_64",
        "chipset": "GRAVITON",
        "chipsetGeneration": build.generation,
        "stateReason": build.state_reason,
        "createdAt": build.created_at,
        "terminationReasonCode": null,
    })
}

/// GetMicrovmImageBuild answer: the summary plus `snapshotBuild` (null until a success).
pub(crate) fn build(image: &Image, version: &ImageVersion, build: &Build) -> Value {
    let mut v = build_summary(image, version, build);
    v["snapshotBuild"] = match build.snapshot {
        Some(s) => json!({
            "memorySnapshotSizeInBytes": s.memory,
            "codeInstallSizeInBytes": s.code_install,
            "diskSnapshotSizeInBytes": s.disk,
        }),
        None => Value::Null,
    };
    v
}

/// DeleteMicrovmImage (`version` = `None`) and DeleteMicrovmImageVersion answer.
pub(crate) fn deleting(arn: &str, version: Option<&str>) -> Value {
    match version {
        Some(v) => json!({"imageIdentifier": arn, "imageVersion": v, "state": "DELETING"}),
        None => json!({"imageIdentifier": arn, "state": "DELETING"}),
    }
}
