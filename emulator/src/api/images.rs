//! Image read operations: customer images, versions and builds, managed images and versions
//! (reference §A.3 #10, 11, 14, 15, 18–21). The writes are in [`super::image_write`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};

use super::arn::check_image_label;
use super::error::ApiError;
use super::image_wire;
use super::input::Query;
use super::labels::Labels;
use super::microvms::ApiResult;
use super::paging::{Listing, PageRequest};
use super::wire;
use crate::state::App;
use crate::state::images::{Image, ImageVersion, ManagedImage};

/// GET /2025-09-09/microvm-images — `maxResults` applies before `nameFilter` (recorded), so a
/// page may be empty yet carry a `nextToken`.
pub(crate) async fn list(State(app): State<Arc<App>>, RawQuery(raw): RawQuery) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    let page = PageRequest::from_query(Listing::Images, &query, &app.cfg.guesses)?;
    let (items, next) = page.page(&app.images.list());
    let filter = query.get("nameFilter").unwrap_or("");
    let items = items.iter().filter(|i| i.name.contains(filter)).map(image_wire::image_summary).collect();
    Ok(Json(wire::page(items, next)))
}

/// GET /2025-09-09/microvm-images/{img}
pub(crate) async fn get(State(app): State<Arc<App>>, Labels(arn): Labels<String>) -> ApiResult {
    let image = find_image(&app, "GetMicrovmImage", &arn)?;
    Ok(Json(image_wire::image(&image)))
}

/// GET /2025-09-09/microvm-images/{img}/versions
pub(crate) async fn list_versions(State(app): State<Arc<App>>, Labels(arn): Labels<String>, RawQuery(raw): RawQuery) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    let page = PageRequest::from_query(Listing::ImageVersions, &query, &app.cfg.guesses)?;
    let image = find_image(&app, "ListMicrovmImageVersions", &arn)?;
    let (versions, next) = page.page(&image.versions);
    let items = versions.iter().map(|v| image_wire::image_version(&image, v)).collect();
    Ok(Json(wire::page(items, next)))
}

/// GET /2025-09-09/microvm-images/{img}/versions/{ver}
pub(crate) async fn get_version(State(app): State<Arc<App>>, Labels((arn, version)): Labels<(String, String)>) -> ApiResult {
    let (image, found) = find_version(&app, "GetMicrovmImageVersion", &arn, &version)?;
    Ok(Json(image_wire::image_version(&image, &found)))
}

/// GET /2025-09-09/microvm-images/{img}/versions/{ver}/builds — filters `architecture`,
/// `chipset`, `chipsetGeneration`; generation 4 is listed first (recorded).
pub(crate) async fn list_builds(
    State(app): State<Arc<App>>,
    Labels((arn, version)): Labels<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    let page = PageRequest::from_query(Listing::ImageBuilds, &query, &app.cfg.guesses)?;
    let (image, found) = find_version(&app, "ListMicrovmImageBuilds", &arn, &version)?;
    let matches = |key: &str, value: &str| query.get(key).is_none_or(|want| want == value);
    let builds: Vec<_> = found
        .builds
        .iter()
        .filter(|b| matches("architecture", "ARM_64") && matches("chipset", "GRAVITON") && matches("chipsetGeneration", b.generation))
        .cloned()
        .collect();
    let (builds, next) = page.page(&builds);
    Ok(Json(wire::page(builds.iter().map(|b| image_wire::build_summary(&image, &found, b)).collect(), next)))
}

/// GET /2025-09-09/microvm-images/{img}/versions/{ver}/builds/{buildId}
pub(crate) async fn get_build(State(app): State<Arc<App>>, Labels((arn, version, id)): Labels<(String, String, String)>) -> ApiResult {
    let (image, found) = find_version(&app, "GetMicrovmImageBuild", &arn, &version)?;
    // GUESS: the not-found wording for an unknown build id was never recorded.
    let missing = || ApiError::not_found(format!("MicroVMImageBuild not found for MicroVMImage: {arn}, Version: {version}, BuildId: {id}"));
    let build = found.builds.iter().find(|b| b.id == id).ok_or_else(missing)?;
    Ok(Json(image_wire::build(&image, &found, build)))
}

/// GET /2025-09-09/managed-microvm-images
pub(crate) async fn list_managed(State(app): State<Arc<App>>, RawQuery(raw): RawQuery) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    let page = PageRequest::from_query(Listing::ManagedImages, &query, &app.cfg.guesses)?;
    let (images, next) = page.page(app.images.managed());
    Ok(Json(wire::page(images.iter().map(wire::managed_image).collect(), next)))
}

/// GET /2025-09-09/managed-microvm-images/{img}/versions — the full managed ARN is required.
pub(crate) async fn list_managed_versions(State(app): State<Arc<App>>, Labels(arn): Labels<String>, RawQuery(raw): RawQuery) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    let page = PageRequest::from_query(Listing::ManagedImageVersions, &query, &app.cfg.guesses)?;
    check_image_label("ListManagedMicrovmImageVersions", &arn, &app.cfg.account)?;
    let image: &ManagedImage = app
        .images
        .managed()
        .iter()
        .find(|m| m.arn == arn)
        // GUESS: the not-found wording for an unknown managed image was never recorded.
        .ok_or_else(|| ApiError::not_found(format!("Managed MicroVM image not found: {arn}")))?;
    let (versions, next) = page.page(&image.versions);
    Ok(Json(wire::page(versions.iter().map(|v| wire::managed_version(image, v)).collect(), next)))
}

/// The image `arn`, or the recorded 404.
pub(crate) fn find_image(app: &App, operation: &str, arn: &str) -> Result<Image, ApiError> {
    check_image_label(operation, arn, &app.cfg.account)?;
    app.images.get(arn).ok_or_else(|| image_not_found(arn))
}

/// The recorded 404 for an unknown image.
pub(crate) fn image_not_found(arn: &str) -> ApiError {
    ApiError::not_found(format!("MicroVMImage not found for MicroVMImageID: {arn}"))
}

/// The recorded 404 for an unknown image or version.
pub(crate) fn version_not_found(arn: &str, version: &str) -> ApiError {
    ApiError::not_found(format!("MicroVMImage not found for MicroVMImage: {arn}, Version: {version}"))
}

fn find_version(app: &App, operation: &str, arn: &str, version: &str) -> Result<(Image, ImageVersion), ApiError> {
    check_image_label(operation, arn, &app.cfg.account)?;
    let image = app.images.get(arn).ok_or_else(|| version_not_found(arn, version))?;
    let found = image.versions.iter().find(|v| v.version == version).cloned().ok_or_else(|| version_not_found(arn, version))?;
    Ok((image, found))
}
