//! MicroVM operations: Run, Get, List, Suspend, Resume, Terminate (reference §A.3 #1–6).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use serde_json::{Value, json};

use super::error::ApiError;
use super::input::{Body, Query};
use super::labels::Labels;
use super::paging::{Listing, PageRequest};
use super::run_request::RunRequest;
use super::wire;
use crate::state::App;
use crate::state::fleet::LifecycleError;
use crate::state::images::managed_connector_arn;
use crate::state::vm::{Microvm, VmSpec};

/// The JSON answer of every control-plane operation.
pub(crate) type ApiResult = Result<Json<Value>, ApiError>;

/// POST /2025-09-09/microvms
pub(crate) async fn run(State(app): State<Arc<App>>, body: Bytes) -> ApiResult {
    let req = RunRequest::parse(&Body::parse(&body)?)?;
    // GUESS (§H 27): a reused clientToken returns the original VM even if the parameters differ.
    if let Some(vm) = req.client_token.as_deref().and_then(|t| app.fleet.replay(t)) {
        return Ok(Json(wire::microvm(&vm)));
    }
    let (image, version) = app
        .images
        .launchable(&req.image, req.version.as_deref())
        .map_err(|_| ApiError::not_found(no_active_version(&req.image, req.version.as_deref())))?;
    let region = &app.cfg.region;
    let default_ingress = || vec![managed_connector_arn(region, "HTTP_INGRESS")];
    let default_egress = || vec![managed_connector_arn(region, "INTERNET_EGRESS")];
    let image_fs = version.fs.clone().unwrap_or_default();
    let egress_none = app.cfg.guesses.enforce_egress_none && version.spec.lacks_internet_egress();
    let spec = VmSpec {
        image_arn: image.arn,
        image_version: version.version,
        image_fs,
        egress_none,
        execution_role_arn: req.execution_role_arn,
        idle_policy: req.idle_policy,
        ingress: req.ingress.filter(|l| !l.is_empty()).unwrap_or_else(default_ingress),
        egress: req.egress.filter(|l| !l.is_empty()).unwrap_or_else(default_egress),
        max_duration_secs: req.max_duration_secs,
        startup_failure: image.startup_failure,
    };
    let vm = app.fleet.create(spec);
    let reply = wire::microvm(&vm);
    app.fleet.start(&vm, req.client_token);
    Ok(Json(reply))
}

/// GET /2025-09-09/microvms/{id}
pub(crate) async fn get(State(app): State<Arc<App>>, Labels(id): Labels<String>) -> ApiResult {
    let vm = find(&app, &id)?;
    Ok(Json(wire::microvm(&vm)))
}

/// GET /2025-09-09/microvms
pub(crate) async fn list(State(app): State<Arc<App>>, RawQuery(raw): RawQuery) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    let page = PageRequest::from_query(Listing::Microvms, &query, &app.cfg.guesses)?;
    let image = query.get("imageIdentifier");
    let version = query.get("imageVersion");
    let matching: Vec<Arc<Microvm>> = app
        .fleet
        .list()
        .into_iter()
        .filter(|vm| image.is_none_or(|i| vm.spec.image_arn == i))
        .filter(|vm| version.is_none_or(|v| vm.spec.image_version == v))
        .collect();
    let (items, next) = page.page(&matching);
    Ok(Json(wire::page(items.iter().map(|vm| wire::microvm_item(vm)).collect(), next)))
}

/// DELETE /2025-09-09/microvms/{id} — idempotent (`{}` for an already terminated VM, recorded).
pub(crate) async fn terminate(State(app): State<Arc<App>>, Labels(id): Labels<String>) -> ApiResult {
    let vm = find(&app, &id)?;
    app.fleet.terminate(&vm, "Success.");
    Ok(Json(json!({})))
}

/// POST /2025-09-09/microvms/{id}/suspend
pub(crate) async fn suspend(State(app): State<Arc<App>>, Labels(id): Labels<String>) -> ApiResult {
    let vm = find(&app, &id)?;
    app.fleet.suspend(&vm).map_err(lifecycle_error)?;
    Ok(Json(json!({})))
}

/// POST /2025-09-09/microvms/{id}/resume
pub(crate) async fn resume(State(app): State<Arc<App>>, Labels(id): Labels<String>) -> ApiResult {
    let vm = find(&app, &id)?;
    app.fleet.resume(&vm).await.map_err(lifecycle_error)?;
    Ok(Json(json!({})))
}

/// The VM `id`, or the recorded 404.
pub(crate) fn find(app: &App, id: &str) -> Result<Arc<Microvm>, ApiError> {
    app.fleet.get(id).ok_or_else(|| ApiError::not_found(format!("MicroVM not found: {id}")))
}

/// Lifecycle refusals are ValidationExceptions (the terminated message is recorded).
pub(crate) fn lifecycle_error(e: LifecycleError) -> ApiError {
    ApiError::validation(e.to_string())
}

fn no_active_version(image: &str, pinned: Option<&str>) -> String {
    match pinned {
        Some(v) => format!("No active version found for MicroVM image {image} and version {v}"),
        None => format!("No active version found for MicroVM image {image}"),
    }
}
