//! TagResource, UntagResource and ListTags on classic Lambda's `/2017-03-31/tags/{Resource}`
//! routes (reference §A.3 #22–24, §B): only image ARNs of this account are taggable; tags are
//! the image's own map (GetMicrovmImage echoes them).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use percent_encoding::percent_decode_str;
use serde_json::json;

use super::error::ApiError;
use super::images::image_not_found;
use super::input::{Body, Violations};
use super::labels::Labels;
use super::microvms::ApiResult;
use crate::state::App;

/// The model's TaggableResource pattern, quoted in the refusal of anything else.
const TAGGABLE: &str = r"arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:(capacity-provider|network-connector|microvm-image):[a-zA-Z0-9-_]+";

/// POST /2017-03-31/tags/{Resource} — body `{"Tags": {k: v}}`, 204.
pub(crate) async fn tag(State(app): State<Arc<App>>, Labels(arn): Labels<String>, body: Bytes) -> Result<StatusCode, ApiError> {
    check_resource(&app, &arn)?;
    let body = Body::parse(&body)?;
    let mut v = Violations::default();
    let Some(tags) = body.object("Tags")? else {
        v.null("tags");
        v.finish()?;
        return Ok(StatusCode::NO_CONTENT);
    };
    let mut new = BTreeMap::new();
    for (key, value) in tags {
        let value = value.as_str().ok_or_else(|| ApiError::serialization("'Tags' must map strings to strings"))?;
        v.too_long("tags", Some(key), key.len(), 128);
        v.too_long("tags", Some(value), value.len(), 256);
        new.insert(key.clone(), value.to_owned());
    }
    v.finish()?;
    app.images.with_image(&arn, |image| image.tags.extend(new)).ok_or_else(|| image_not_found(&arn))?;
    Ok(StatusCode::NO_CONTENT)
}

/// DELETE /2017-03-31/tags/{Resource}?tagKeys=a&tagKeys=b — 204.
pub(crate) async fn untag(
    State(app): State<Arc<App>>,
    Labels(arn): Labels<String>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode, ApiError> {
    check_resource(&app, &arn)?;
    let keys: Vec<String> = raw
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.strip_prefix("tagKeys="))
        .map(|k| percent_decode_str(k).decode_utf8_lossy().into_owned())
        .collect();
    if keys.is_empty() {
        let mut v = Violations::default();
        v.null("tagKeys");
        v.finish()?;
    }
    let removed = app.images.with_image(&arn, |image| {
        for key in &keys {
            image.tags.remove(key);
        }
    });
    removed.ok_or_else(|| image_not_found(&arn))?;
    Ok(StatusCode::NO_CONTENT)
}

/// GET /2017-03-31/tags/{Resource} — `{"Tags": {…}}`.
pub(crate) async fn list(State(app): State<Arc<App>>, Labels(arn): Labels<String>) -> ApiResult {
    check_resource(&app, &arn)?;
    let image = app.images.get(&arn).ok_or_else(|| image_not_found(&arn))?;
    Ok(Json(json!({"Tags": image.tags})))
}

/// Image ARNs of this account pass; anything else (a VM ARN, a bare name) is refused with the
/// model's pattern, as the live service refused a VM ARN.
fn check_resource(app: &App, arn: &str) -> Result<(), ApiError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let image_arn = parts.len() == 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "microvm-image";
    if image_arn && parts[4] == app.cfg.account {
        return Ok(());
    }
    let mut v = Violations::default();
    v.pattern("resource", arn, TAGGABLE);
    v.finish()
}
