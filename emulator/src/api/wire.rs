//! Response shapes, member for member as the service sends them: explicit `null` for absent
//! optional members and the unmodelled members it adds (reference §A.2, §A.4 and the fixtures).

use serde_json::{Value, json};

use crate::state::clock::hour_bucket;
use crate::state::images::{Image, ImageVersion, ManagedImage, ManagedVersion};
use crate::state::vm::Microvm;

/// RunMicrovm / GetMicrovm answer.
pub(crate) fn microvm(vm: &Microvm) -> Value {
    let status = vm.status();
    json!({
        "microvmId": vm.id,
        "state": status.state.as_str(),
        "endpoint": vm.endpoint_host,
        "imageArn": vm.spec.image_arn,
        "imageVersion": vm.spec.image_version,
        "executionRoleArn": vm.spec.execution_role_arn,
        "idlePolicy": vm.spec.idle_policy,
        "maximumDurationInSeconds": vm.spec.max_duration_secs,
        "startedAt": vm.started_at,
        "terminatedAt": status.terminated_at,
        "stateReason": status.state_reason,
        "ingressNetworkConnectors": vm.spec.ingress,
        "egressNetworkConnectors": vm.spec.egress,
        "terminationReasonCode": null,
    })
}

/// A ListMicrovms item (exactly these five members).
pub(crate) fn microvm_item(vm: &Microvm) -> Value {
    json!({
        "microvmId": vm.id,
        "state": vm.state().as_str(),
        "imageArn": vm.spec.image_arn,
        "imageVersion": vm.spec.image_version,
        "startedAt": vm.started_at,
    })
}

/// A ListMicrovmImages item.
pub(crate) fn image_summary(image: &Image) -> Value {
    json!({
        "imageArn": image.arn,
        "name": image.name,
        "id": image.id,
        "state": image.state,
        "latestActiveImageVersion": latest_active(image),
        "latestFailedImageVersion": latest_failed(image),
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

/// GetMicrovmImageVersion answer and ListMicrovmImageVersions item.
pub(crate) fn image_version(image: &Image, version: &ImageVersion) -> Value {
    json!({
        "imageArn": image.arn,
        "imageVersion": version.version,
        "state": version.state,
        "status": version.status,
        "stateReason": null,
        "createdAt": version.created_at,
        "updatedAt": version.updated_at,
        "baseImageArn": version.base_image_arn,
        "baseImageVersion": version.base_image_version,
        "buildRoleArn": version.build_role_arn,
        "description": version.description,
        "codeArtifact": {"uri": version.code_artifact_uri},
        "logging": null,
        "egressNetworkConnectors": version.egress,
        "cpuConfigurations": null,
        "resources": [{"minimumMemoryInMiB": version.memory_mib}],
        "additionalOsCapabilities": null,
        "hooks": null,
        "environmentVariables": null,
        "tags": null,
        "versionStateTimeBucket": format!("{}#{}", version.state, hour_bucket(version.updated_at)),
    })
}

/// A ListManagedMicrovmImages item.
pub(crate) fn managed_image(image: &ManagedImage) -> Value {
    json!({"imageArn": image.arn, "createdAt": image.created_at, "updatedAt": image.updated_at})
}

/// A ListManagedMicrovmImageVersions item.
pub(crate) fn managed_version(image: &ManagedImage, version: &ManagedVersion) -> Value {
    json!({
        "imageArn": image.arn,
        "imageVersion": version.version,
        "status": version.status,
        "createdAt": version.created_at,
        "updatedAt": version.updated_at,
    })
}

/// `{"items": […], "nextToken": …}`.
pub(crate) fn page(items: Vec<Value>, next: Option<String>) -> Value {
    json!({"items": items, "nextToken": next})
}

fn latest_active(image: &Image) -> Option<&str> {
    let usable = |v: &&ImageVersion| v.state == "SUCCESSFUL" && v.status == "ACTIVE";
    image.versions.iter().rev().find(usable).map(|v| v.version.as_str())
}

fn latest_failed(image: &Image) -> Option<&str> {
    image.versions.iter().rev().find(|v| v.state == "FAILED").map(|v| v.version.as_str())
}
