//! STS on the awsQuery protocol (form-encoded POST, XML answers): only GetCallerIdentity,
//! which whim uses to learn the caller's account (ownership of VMs is by image account).
//! The caller is the emulator's account, as `user/whim-local`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Router, http::Method};
use percent_encoding::percent_decode_str;

use crate::state::App;

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The STS router (signing name `sts`): every action is a POST to `/`.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new().route("/", post(action)).fallback(wrong_request).with_state(app)
}

/// The form's `Action`.
fn form_value<'a>(body: &'a str, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode_str(v).decode_utf8_lossy())
    })
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
    let xml = format!(
        "<GetCallerIdentityResponse xmlns=\"{XMLNS}\">\n  <GetCallerIdentityResult>\n    \
         <Arn>arn:aws:iam::{account}:user/whim-local</Arn>\n    <UserId>AIDAWHIMLOCALEMULATOR</UserId>\n    \
         <Account>{account}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    \
         <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
        uuid::Uuid::new_v4()
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], xml).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let xml = format!(
        "<ErrorResponse xmlns=\"{XMLNS}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n    \
         <Message>{message}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        uuid::Uuid::new_v4()
    );
    (status, [(header::CONTENT_TYPE, "text/xml")], xml).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_action_from_the_form() {
        assert_eq!(form_value("Action=GetCallerIdentity&Version=2011-06-15", "Action").as_deref(), Some("GetCallerIdentity"));
        assert_eq!(form_value("Version=2011-06-15&Action=A%42", "Action").as_deref(), Some("AB"));
        assert_eq!(form_value("Version=2011-06-15", "Action"), None);
    }
}
