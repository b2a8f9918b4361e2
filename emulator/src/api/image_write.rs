//! Image writes: Create, Update, Delete, UpdateMicrovmImageVersion, DeleteMicrovmImageVersion
//! (reference §A.3 #9, 12, 13, 16, 17; states §C.2; refusals §A.8). Builds run in the
//! background ([`crate::state::image_build`]); deletes are asynchronous (DELETING, then gone).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

use super::arn::check_image_label;
use super::error::ApiError;
use super::image_request::ImageRequest;
use super::image_wire;
use super::images::{image_not_found, version_not_found};
use super::input::{Body, Violations};
use super::labels::Labels;
use super::microvms::ApiResult;
use crate::state::App;
use crate::state::clock::epoch_now;
use crate::state::image_build::{self, out_dir, remove_dir};
use crate::state::images::{Image, ImageVersion, Replay, image_arn};
use crate::state::vm::VmState;

/// Recorded: DeleteMicrovmImage while VMs of the image are not terminated.
const LIVE_VMS: &str = "Cannot delete microvm image with running microvms.";

/// POST /2025-09-09/microvm-images — 201 with the image CREATING and version "1.0" queued.
pub(crate) async fn create(State(app): State<Arc<App>>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let req = ImageRequest::parse(&Body::parse(&body)?, true, &app.cfg.region, app.images.managed())?;
    if let Some(answer) = replayed(&app, &req)? {
        return Ok((StatusCode::CREATED, Json(answer)));
    }
    let name = req.name.clone().unwrap_or_default();
    let arn = image_arn(&app.cfg.region, &app.cfg.account, &name);
    let version = ImageVersion::pending("1.0".into(), req.spec.clone(), out_dir(&app.cfg.state_dir, &name, "1.0"));
    let now = epoch_now();
    let image = Image {
        name: name.clone(),
        arn: arn.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        state: "CREATING",
        created_at: now,
        updated_at: now,
        tags: req.tags.clone().unwrap_or_default(),
        versions: vec![version.clone()],
        startup_failure: None,
    };
    let answer = image_wire::image_reply(&image, &version, Some(req.tags.as_ref()));
    if !app.images.insert(image) {
        return Err(ApiError::validation(format!("A MicroVM image with the name '{name}' already exists in this account")));
    }
    remember(&app, &req, &answer);
    image_build::spawn(&app, arn, version.version);
    Ok((StatusCode::CREATED, Json(answer)))
}

/// PUT /2025-09-09/microvm-images/{img} — mints version "N+1.0"; the image goes UPDATING.
pub(crate) async fn update(State(app): State<Arc<App>>, Labels(arn): Labels<String>, body: Bytes) -> ApiResult {
    check_image_label("UpdateMicrovmImage", &arn, &app.cfg.account)?;
    let mut req = ImageRequest::parse(&Body::parse(&body)?, false, &app.cfg.region, app.images.managed())?;
    // The same token and body on another image is another request.
    req.fingerprint = format!("{arn} {}", req.fingerprint);
    if let Some(answer) = replayed(&app, &req)? {
        return Ok(Json(answer));
    }
    let state_dir = app.cfg.state_dir.clone();
    let updated = app.images.with_image(&arn, |image| {
        // GUESS: an update while a build or delete runs is refused like the recorded PATCH.
        if matches!(image.state, "CREATING" | "UPDATING" | "DELETING") || image.busy() {
            return Err(already_in_state(image.state));
        }
        let number = image.next_version();
        let version = ImageVersion::pending(number.clone(), req.spec.clone(), out_dir(&state_dir, &image.name, &number));
        image.versions.push(version.clone());
        image.set_state("UPDATING");
        Ok((image_wire::image_reply(image, &version, None), number))
    });
    let (answer, number) = updated.ok_or_else(|| image_not_found(&arn))??;
    remember(&app, &req, &answer);
    image_build::spawn(&app, arn, number);
    Ok(Json(answer))
}

/// DELETE /2025-09-09/microvm-images/{img} — DELETING, then gone (its build dirs removed).
pub(crate) async fn delete(State(app): State<Arc<App>>, Labels(arn): Labels<String>) -> ApiResult {
    check_image_label("DeleteMicrovmImage", &arn, &app.cfg.account)?;
    let live_vms = app.fleet.list().iter().any(|vm| vm.spec.image_arn == arn && vm.state() != VmState::Terminated);
    let started = app.images.with_image(&arn, |image| {
        if image.state == "DELETING" {
            return Ok(false);
        }
        if image.busy() {
            // Recorded prefix; GUESS: the unrecorded tail is the image's state.
            return Err(ApiError::validation(format!("Cannot delete MicroVM image in its current state: {}", image.state)));
        }
        if live_vms {
            return Err(ApiError::validation(LIVE_VMS));
        }
        image.set_state("DELETING");
        Ok(true)
    });
    if started.ok_or_else(|| image_not_found(&arn))?? {
        tokio::spawn(finish_image_delete(app.clone(), arn.clone()));
    }
    Ok(Json(image_wire::deleting(&arn, None)))
}

/// PATCH /2025-09-09/microvm-images/{img}/versions/{ver} — `status` ACTIVE or INACTIVE.
pub(crate) async fn update_version(
    State(app): State<Arc<App>>,
    Labels((arn, version)): Labels<(String, String)>,
    body: Bytes,
) -> ApiResult {
    check_image_label("UpdateMicrovmImageVersion", &arn, &app.cfg.account)?;
    let body = Body::parse(&body)?;
    let status = body.string("status")?;
    let mut v = Violations::default();
    match &status {
        None => v.null("status"),
        Some(s) => v.enum_value("status", s, &["ACTIVE", "INACTIVE"]),
    }
    v.finish()?;
    let status = if status.as_deref() == Some("ACTIVE") { "ACTIVE" } else { "INACTIVE" };
    let answer = app.images.with_image(&arn, |image| {
        if matches!(image.state, "CREATING" | "UPDATING" | "DELETING") {
            return Err(already_in_state(image.state));
        }
        let found = image.version_mut(&version).ok_or_else(|| version_not_found(&arn, &version))?;
        found.status = status;
        found.updated_at = epoch_now();
        let found = found.clone();
        Ok(image_wire::image_version(image, &found))
    });
    Ok(Json(answer.ok_or_else(|| version_not_found(&arn, &version))??))
}

/// DELETE /2025-09-09/microvm-images/{img}/versions/{ver} — DELETING, then gone; the last
/// remaining version can only go with the image (409).
pub(crate) async fn delete_version(State(app): State<Arc<App>>, Labels((arn, version)): Labels<(String, String)>) -> ApiResult {
    check_image_label("DeleteMicrovmImageVersion", &arn, &app.cfg.account)?;
    let dwell = app.cfg.guesses.version_delete_dwell;
    let started = app.images.with_image(&arn, |image| {
        let state = image.state;
        let others = image.versions.iter().filter(|v| v.version != version && v.state != "DELETING").count();
        let found = image.version_mut(&version).ok_or_else(|| version_not_found(&arn, &version))?;
        if found.state == "DELETING" {
            return Ok(Deletion::Nothing);
        }
        if matches!(state, "CREATING" | "UPDATING" | "DELETING") || found.building() {
            return Err(already_in_state(state));
        }
        if others == 0 {
            // Recorded 409; GUESS: its message was not recorded.
            return Err(ApiError::conflict(format!("Cannot delete the last version of MicroVM image {arn}; delete the image instead.")));
        }
        found.state = "DELETING";
        found.updated_at = epoch_now();
        if dwell.is_zero() {
            let at = image.versions.iter().position(|v| v.version == version);
            return Ok(at.map(|at| Deletion::Done(image.versions.remove(at).out_dir)).unwrap_or(Deletion::Nothing));
        }
        Ok(Deletion::Later)
    });
    match started.ok_or_else(|| version_not_found(&arn, &version))?? {
        Deletion::Later => drop(tokio::spawn(finish_version_delete(app.clone(), arn.clone(), version.clone()))),
        Deletion::Done(Some(dir)) => drop(tokio::spawn(async move { remove_dir(&dir).await })),
        Deletion::Done(None) | Deletion::Nothing => {}
    }
    Ok(Json(image_wire::deleting(&arn, Some(&version))))
}

/// What a version delete left to do.
enum Deletion {
    /// Already under way, or nothing to remove.
    Nothing,
    /// Removed from the image; its build directory (if any) is still on disk.
    Done(Option<std::path::PathBuf>),
    /// DELETING now, removed after the dwell.
    Later,
}

/// Recorded (PATCH while UPDATING): `MicroVM Image is already in state: UPDATING`.
fn already_in_state(state: &str) -> ApiError {
    ApiError::conflict(format!("MicroVM Image is already in state: {state}"))
}

/// The earlier answer to the same `clientToken` with the same parameters. The token is
/// permanent (recorded for images). GUESS (§H 27): the same token with other parameters is
/// a 400 ValidationException (the service's answer was never recorded).
fn replayed(app: &App, req: &ImageRequest) -> Result<Option<Value>, ApiError> {
    let Some(token) = &req.client_token else { return Ok(None) };
    match app.images.replay(token) {
        None => Ok(None),
        Some(r) if r.fingerprint == req.fingerprint => Ok(Some(r.answer)),
        Some(_) => Err(ApiError::validation(format!(
            "The clientToken '{token}' was already used with different parameters; use a new clientToken for a new request."
        ))),
    }
}

fn remember(app: &App, req: &ImageRequest, answer: &Value) {
    if let Some(token) = &req.client_token {
        app.images.remember(token.clone(), Replay { fingerprint: req.fingerprint.clone(), answer: answer.clone() });
    }
}

async fn finish_image_delete(app: Arc<App>, arn: String) {
    tokio::time::sleep(app.cfg.guesses.image_delete_dwell).await;
    if let Some(image) = app.images.remove(&arn) {
        for dir in image.versions.iter().filter_map(|v| v.out_dir.as_ref()) {
            remove_dir(dir).await;
        }
        let _ = tokio::fs::remove_dir(app.cfg.state_dir.join("images").join(&image.name)).await;
        tracing::info!(image = %image.name, "image deleted");
    }
}

async fn finish_version_delete(app: Arc<App>, arn: String, version: String) {
    tokio::time::sleep(app.cfg.guesses.version_delete_dwell).await;
    let removed = app.images.with_image(&arn, |image| {
        let at = image.versions.iter().position(|v| v.version == version)?;
        Some(image.versions.remove(at))
    });
    if let Some(Some(gone)) = removed
        && let Some(dir) = &gone.out_dir
    {
        remove_dir(dir).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EmulatorConfig;
    use crate::state::images::ImageSpec;

    fn app_with(state: &'static str, versions: &[(&str, &'static str)]) -> (Arc<App>, String) {
        let mut cfg = EmulatorConfig::local_default();
        cfg.state_dir = std::env::temp_dir().join(format!("whim-image-write-test-{}-{state}", std::process::id()));
        cfg.seed_default_image = false;
        let app = App::new(cfg).expect("app");
        let arn = image_arn("us-east-1", "123456789012", "img");
        let spec = |v: &str| ImageSpec {
            base_image_arn: "arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1".into(),
            base_image_version: "1.0".into(),
            build_role_arn: "arn:aws:iam::123456789012:role/b".into(),
            code_artifact_uri: format!("s3://b/{v}.zip"),
            description: None,
            egress: vec![],
            memory_mib: 2048,
            capabilities: None,
            cpu_configurations: None,
            logging: None,
            hooks: None,
            environment_variables: None,
        };
        let versions = versions
            .iter()
            .map(|(v, s)| {
                let mut version = ImageVersion::pending((*v).into(), spec(v), std::path::PathBuf::from("/nonexistent"));
                version.set_state(s);
                version
            })
            .collect();
        let image = Image {
            name: "img".into(),
            arn: arn.clone(),
            id: "id".into(),
            state,
            created_at: 0.0,
            updated_at: 0.0,
            tags: Default::default(),
            versions,
            startup_failure: None,
        };
        assert!(app.images.insert(image));
        (app, arn)
    }

    fn status(e: ApiError) -> u16 {
        axum::response::IntoResponse::into_response(e).status().as_u16()
    }

    #[tokio::test]
    async fn refusals_while_builds_run() {
        let (app, arn) = app_with("CREATING", &[("1.0", "IN_PROGRESS")]);
        let e = delete(State(app.clone()), Labels(arn.clone())).await.expect_err("first build runs");
        assert_eq!(e, ApiError::validation("Cannot delete MicroVM image in its current state: CREATING"));
        let _ = std::fs::remove_dir_all(&app.cfg.state_dir);

        let (app, arn) = app_with("UPDATING", &[("1.0", "SUCCESSFUL"), ("2.0", "IN_PROGRESS")]);
        let body = Bytes::from_static(br#"{"status":"INACTIVE"}"#);
        let e = update_version(State(app.clone()), Labels((arn.clone(), "1.0".into())), body).await.expect_err("UPDATING");
        assert_eq!(e, ApiError::conflict("MicroVM Image is already in state: UPDATING"));
        assert_eq!(status(e), 409);
        let _ = std::fs::remove_dir_all(&app.cfg.state_dir);
    }

    #[tokio::test]
    async fn the_last_version_goes_only_with_the_image() {
        let (app, arn) = app_with("UPDATED", &[("1.0", "SUCCESSFUL"), ("2.0", "SUCCESSFUL")]);
        let Json(gone) = delete_version(State(app.clone()), Labels((arn.clone(), "1.0".into()))).await.expect("1.0 goes");
        assert_eq!(gone["state"], "DELETING");
        assert_eq!(app.images.get(&arn).map(|i| i.versions.len()), Some(1), "gone at once (zero dwell)");
        let e = delete_version(State(app.clone()), Labels((arn.clone(), "2.0".into()))).await.expect_err("last");
        assert_eq!(status(e), 409);
        let bad = Bytes::from_static(br#"{"status":"SLEEPY"}"#);
        let e = update_version(State(app.clone()), Labels((arn.clone(), "2.0".into())), bad).await.expect_err("enum");
        let want = "1 validation error detected: Value 'SLEEPY' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [ACTIVE, INACTIVE]";
        assert_eq!(e, ApiError::validation(want));
        let Json(deleting) = delete(State(app.clone()), Labels(arn.clone())).await.expect("image delete");
        assert_eq!(deleting, serde_json::json!({"imageIdentifier": arn, "state": "DELETING"}));
        assert_eq!(app.images.get(&arn).map(|i| i.state), Some("DELETING"));
        let _ = std::fs::remove_dir_all(&app.cfg.state_dir);
    }
}
