//! The control plane: the Lambda MicroVMs restJson1 API at the real paths (reference §A),
//! behind a router keyed by the SigV4 service so other AWS services can join the listener.

mod arn;
pub(crate) mod error;
mod images;
mod input;
mod labels;
mod microvms;
mod paging;
mod run_request;
pub(crate) mod sigv4;
mod sts;
mod tokens;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use tower::ServiceExt as _;

use self::error::ApiError;
use crate::state::App;

const V: &str = "/2025-09-09";

/// One router per SigV4 service name served on the listener.
#[derive(Debug, Clone)]
pub(crate) struct Services {
    lambda: Router,
    sts: Router,
}

impl Services {
    /// The services of this emulator over `app`.
    pub(crate) fn new(app: Arc<App>) -> Self {
        Self { lambda: lambda_router(app.clone()), sts: sts::router(app) }
    }

    /// Answers a control-plane request: unsigned → refused; otherwise by signing service.
    pub(crate) async fn handle(&self, req: Request) -> Response {
        let Some(scope) = sigv4::credential_scope(req.headers(), req.uri()) else {
            return ApiError::missing_authentication().into_response();
        };
        let router = match scope.service.as_str() {
            "lambda" => self.lambda.clone(),
            "sts" => self.sts.clone(),
            other => return ApiError::service_not_implemented(other).into_response(),
        };
        match router.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Lambda MicroVMs (signing name `lambda`) plus the operations that share its host.
fn lambda_router(app: Arc<App>) -> Router {
    Router::new()
        .route(&format!("{V}/microvms"), post(microvms::run).get(microvms::list))
        .route(&format!("{V}/microvms/{{id}}"), get(microvms::get).delete(microvms::terminate))
        .route(&format!("{V}/microvms/{{id}}/suspend"), post(microvms::suspend))
        .route(&format!("{V}/microvms/{{id}}/resume"), post(microvms::resume))
        .route(&format!("{V}/microvms/{{id}}/auth-token"), post(tokens::app_token))
        .route(&format!("{V}/microvms/{{id}}/shell-auth-token"), post(tokens::shell_token))
        .route(&format!("{V}/microvm-images"), get(images::list).post(todo_op("CreateMicrovmImage")))
        .route(&format!("{V}/microvm-images/{{img}}"), image_routes())
        .route(&format!("{V}/microvm-images/{{img}}/versions"), get(images::list_versions))
        .route(&format!("{V}/microvm-images/{{img}}/versions/{{ver}}"), version_routes())
        .route(&format!("{V}/microvm-images/{{img}}/versions/{{ver}}/builds"), get(todo_op("ListMicrovmImageBuilds")))
        .route(&format!("{V}/microvm-images/{{img}}/versions/{{ver}}/builds/{{b}}"), get(todo_op("GetMicrovmImageBuild")))
        .route(&format!("{V}/managed-microvm-images"), get(images::list_managed))
        .route(&format!("{V}/managed-microvm-images/{{img}}/versions"), get(images::list_managed_versions))
        .route("/2017-03-31/tags/{resource}", tag_routes())
        .route("/2026-04-04/network-connectors", connector_collection_routes())
        .route("/2026-04-04/network-connectors/{id}", connector_routes())
        .fallback(unknown_operation)
        .method_not_allowed_fallback(unknown_operation)
        .with_state(app)
}

fn image_routes() -> MethodRouter<Arc<App>> {
    get(images::get).put(todo_op("UpdateMicrovmImage")).delete(todo_op("DeleteMicrovmImage"))
}

fn version_routes() -> MethodRouter<Arc<App>> {
    get(images::get_version).patch(todo_op("UpdateMicrovmImageVersion")).delete(todo_op("DeleteMicrovmImageVersion"))
}

fn tag_routes() -> MethodRouter<Arc<App>> {
    get(todo_op("ListTags")).post(todo_op("TagResource")).delete(todo_op("UntagResource"))
}

fn connector_collection_routes() -> MethodRouter<Arc<App>> {
    get(todo_op("ListNetworkConnectors")).post(todo_op("CreateNetworkConnector"))
}

fn connector_routes() -> MethodRouter<Arc<App>> {
    get(todo_op("GetNetworkConnector")).put(todo_op("UpdateNetworkConnector")).delete(todo_op("DeleteNetworkConnector"))
}

/// A handler answering 501 for an operation the service has and the emulator lacks.
fn todo_op(operation: &'static str) -> impl Fn() -> std::future::Ready<ApiError> + Clone + Send + Sync + 'static {
    move || std::future::ready(ApiError::not_implemented(operation))
}

async fn unknown_operation(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::unknown_operation(method.as_str(), uri.path())
}
