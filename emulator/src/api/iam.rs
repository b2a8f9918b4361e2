//! IAM on the awsQuery protocol (signing name `iam`): the role calls a build setup needs —
//! CreateRole, GetRole, DeleteRole, PutRolePolicy, GetRolePolicy, DeleteRolePolicy. Policy
//! documents come back percent-encoded, as IAM returns them; errors use IAM's XML shape.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::post;

use super::query::{self, element, form_value, url_encode};
use crate::state::App;
use crate::state::clock::iso8601;
use crate::state::iam::{Role, RoleError};

const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// The IAM router: every action is a POST to `/`.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new().route("/", post(action)).fallback(wrong_request).with_state(app)
}

/// The parsed form of one call.
struct Form(String);

impl Form {
    fn opt(&self, key: &str) -> Option<String> {
        form_value(&self.0, key).map(|v| v.into_owned())
    }

    fn req(&self, key: &str, member: &str) -> Result<String, IamError> {
        self.opt(key).ok_or_else(|| {
            let msg =
                format!("1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null");
            IamError::new(StatusCode::BAD_REQUEST, "ValidationError", msg)
        })
    }
}

/// One IAM error answer (`<ErrorResponse>`).
#[derive(Debug)]
struct IamError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IamError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    fn into_response(self) -> Response {
        error(self.status, self.code, &self.message)
    }
}

async fn action(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let form = Form(String::from_utf8_lossy(&body).into_owned());
    let answer = match form.opt("Action").as_deref() {
        Some("CreateRole") => create_role(&app, &form),
        Some("GetRole") => get_role(&app, &form),
        Some("DeleteRole") => delete_role(&app, &form),
        Some("PutRolePolicy") => put_role_policy(&app, &form),
        Some("GetRolePolicy") => get_role_policy(&app, &form),
        Some("DeleteRolePolicy") => delete_role_policy(&app, &form),
        Some(other) => {
            Err(IamError::new(StatusCode::BAD_REQUEST, "InvalidAction", format!("Could not find operation {other} for version 2010-05-08")))
        }
        None => Err(IamError::new(StatusCode::BAD_REQUEST, "MissingAction", "Missing Action")),
    };
    answer.unwrap_or_else(IamError::into_response)
}

async fn wrong_request(method: Method) -> Response {
    error(StatusCode::BAD_REQUEST, "InvalidAction", &format!("IAM answers POST / only, not {method}"))
}

type Answer = Result<Response, IamError>;

fn create_role(app: &App, form: &Form) -> Answer {
    let name = form.req("RoleName", "roleName")?;
    let policy = form.req("AssumeRolePolicyDocument", "assumeRolePolicyDocument")?;
    let path = form.opt("Path").unwrap_or_else(|| "/".into());
    let role = app.roles.create(&name, &path, &policy, form.opt("Description")).map_err(|e| role_error(e, &name, ""))?;
    Ok(query::success(XMLNS, "CreateRole", &role_xml(&role, &app.cfg.account)))
}

fn get_role(app: &App, form: &Form) -> Answer {
    let name = form.req("RoleName", "roleName")?;
    let role = app.roles.get(&name).map_err(|e| role_error(e, &name, ""))?;
    Ok(query::success(XMLNS, "GetRole", &role_xml(&role, &app.cfg.account)))
}

fn delete_role(app: &App, form: &Form) -> Answer {
    let name = form.req("RoleName", "roleName")?;
    app.roles.delete(&name).map_err(|e| role_error(e, &name, ""))?;
    Ok(query::success(XMLNS, "DeleteRole", ""))
}

fn put_role_policy(app: &App, form: &Form) -> Answer {
    let role = form.req("RoleName", "roleName")?;
    let policy = form.req("PolicyName", "policyName")?;
    let document = form.req("PolicyDocument", "policyDocument")?;
    app.roles.put_policy(&role, &policy, &document).map_err(|e| role_error(e, &role, &policy))?;
    Ok(query::success(XMLNS, "PutRolePolicy", ""))
}

fn get_role_policy(app: &App, form: &Form) -> Answer {
    let role = form.req("RoleName", "roleName")?;
    let policy = form.req("PolicyName", "policyName")?;
    let document = app.roles.get_policy(&role, &policy).map_err(|e| role_error(e, &role, &policy))?;
    let result = [element("RoleName", &role), element("PolicyName", &policy), element("PolicyDocument", &url_encode(&document))].concat();
    Ok(query::success(XMLNS, "GetRolePolicy", &result))
}

fn delete_role_policy(app: &App, form: &Form) -> Answer {
    let role = form.req("RoleName", "roleName")?;
    let policy = form.req("PolicyName", "policyName")?;
    app.roles.delete_policy(&role, &policy).map_err(|e| role_error(e, &role, &policy))?;
    Ok(query::success(XMLNS, "DeleteRolePolicy", ""))
}

/// `<Role>…</Role>` as CreateRole and GetRole return it (trust policy percent-encoded).
fn role_xml(role: &Role, account: &str) -> String {
    let arn = format!("arn:aws:iam::{account}:role{}{}", role.path, role.name);
    let mut out = String::from("    <Role>\n");
    out.push_str(&element("Path", &role.path));
    out.push_str(&element("AssumeRolePolicyDocument", &url_encode(&role.assume_role_policy)));
    out.push_str(&element("MaxSessionDuration", &role.max_session_secs.to_string()));
    out.push_str(&element("RoleId", &role.id));
    out.push_str(&element("RoleName", &role.name));
    if let Some(d) = &role.description {
        out.push_str(&element("Description", d));
    }
    out.push_str(&element("Arn", &arn));
    out.push_str(&element("CreateDate", &iso8601(role.created_at)));
    out.push_str("    </Role>\n");
    out
}

fn role_error(e: RoleError, role: &str, policy: &str) -> IamError {
    match e {
        RoleError::NoSuchRole => {
            IamError::new(StatusCode::NOT_FOUND, "NoSuchEntity", format!("The role with name {role} cannot be found."))
        }
        RoleError::NoSuchPolicy => {
            IamError::new(StatusCode::NOT_FOUND, "NoSuchEntity", format!("The role policy with name {policy} cannot be found."))
        }
        RoleError::Exists => IamError::new(StatusCode::CONFLICT, "EntityAlreadyExists", format!("Role with name {role} already exists.")),
        RoleError::HasPolicies => {
            IamError::new(StatusCode::CONFLICT, "DeleteConflict", "Cannot delete entity, must delete policies first.")
        }
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    query::error(XMLNS, status, code, message)
}
