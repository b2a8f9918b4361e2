//! Image read operations: customer images and versions, managed images and versions
//! (reference §A.3 #10, 11, 14, 15, 20, 21). Create/Update/Delete are a later issue.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};

use super::arn::check_image_label;
use super::error::ApiError;
use super::input::Query;
use super::labels::Labels;
use super::microvms::ApiResult;
use super::paging::{Listing, PageRequest};
use super::wire;
use crate::state::App;
use crate::state::images::{Image, ManagedImage};

/// GET /2025-09-09/microvm-images — `maxResults` applies before `nameFilter` (recorded), so a
/// page may be empty yet carry a `nextToken`.
pub(crate) async fn list(State(app): State<Arc<App>>, RawQuery(raw): RawQuery) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    let page = PageRequest::from_query(Listing::Images, &query, &app.cfg.guesses)?;
    let (items, next) = page.page(&app.images.list());
    let filter = query.get("nameFilter").unwrap_or("");
    let items = items.iter().filter(|i| i.name.contains(filter)).map(wire::image_summary).collect();
    Ok(Json(wire::page(items, next)))
}

/// GET /2025-09-09/microvm-images/{img}
pub(crate) async fn get(State(app): State<Arc<App>>, Labels(arn): Labels<String>) -> ApiResult {
    let image = find_image(&app, "GetMicrovmImage", &arn)?;
    Ok(Json(wire::image(&image)))
}

/// GET /2025-09-09/microvm-images/{img}/versions
pub(crate) async fn list_versions(State(app): State<Arc<App>>, Labels(arn): Labels<String>, RawQuery(raw): RawQuery) -> ApiResult {
    let query = Query::parse(raw.as_deref());
    let page = PageRequest::from_query(Listing::ImageVersions, &query, &app.cfg.guesses)?;
    let image = find_image(&app, "ListMicrovmImageVersions", &arn)?;
    let (versions, next) = page.page(&image.versions);
    let items = versions.iter().map(|v| wire::image_version(&image, v)).collect();
    Ok(Json(wire::page(items, next)))
}

/// GET /2025-09-09/microvm-images/{img}/versions/{ver}
pub(crate) async fn get_version(State(app): State<Arc<App>>, Labels((arn, version)): Labels<(String, String)>) -> ApiResult {
    check_image_label("GetMicrovmImageVersion", &arn, &app.cfg.account)?;
    let missing = || ApiError::not_found(format!("MicroVMImage not found for MicroVMImage: {arn}, Version: {version}"));
    let image = app.images.get(&arn).ok_or_else(missing)?;
    let found = image.versions.iter().find(|v| v.version == version).ok_or_else(missing)?;
    Ok(Json(wire::image_version(&image, found)))
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

fn find_image(app: &App, operation: &str, arn: &str) -> Result<Image, ApiError> {
    check_image_label(operation, arn, &app.cfg.account)?;
    app.images.get(arn).ok_or_else(|| ApiError::not_found(format!("MicroVMImage not found for MicroVMImageID: {arn}")))
}
