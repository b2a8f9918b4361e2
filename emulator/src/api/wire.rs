//! Response shapes, member for member as the service sends them: explicit `null` for absent
//! optional members and the unmodelled members it adds (reference §A.2, §A.4 and the fixtures).

use serde_json::{Value, json};

use crate::state::images::{ManagedImage, ManagedVersion};
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
