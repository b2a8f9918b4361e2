//! STS on the awsQuery protocol (form-encoded POST, XML answers): only GetCallerIdentity,
//! which whim uses to learn the caller's account (ownership of VMs is by image account).
//! The caller is the emulator's account, as `user/whim-local`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::{Router, http::Method};

use super::query::{self, element, form_value};
use crate::state::App;

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The STS router (signing name `sts`): every action is a POST to `/`.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new().route("/", post(action)).fallback(wrong_request).with_state(app)
}

async fn action(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body);
    match form_value(&body, "Action").as_deref() {
        Some("GetCallerIdentity") => get_caller_identity(&app.cfg.account),
        Some(other) => error(StatusCode::BAD_REQUEST, "InvalidAction", &format!("Could not find operation {other} for version 2011-06-15")),
        None => error(StatusCode::BAD_REQUEST, "MissingAction", "Missing Action"),
    }
}

async fn wrong_request(method: Method) -> Response {
    error(StatusCode::BAD_REQUEST, "InvalidAction", &format!("STS answers POST / only, not {method}"))
}

fn get_caller_identity(account: &str) -> Response {
    let result = [
        element("Arn", &format!("arn:aws:iam::{account}:user/whim-local")),
        element("UserId", "AIDAWHIMLOCALEMULATOR"),
        element("Account", account),
    ]
    .concat();
    query::success(XMLNS, "GetCallerIdentity", &result)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    query::error(XMLNS, status, code, message)
}
