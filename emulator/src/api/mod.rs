//! The control plane: the Lambda MicroVMs restJson1 API at the real paths (reference §A),
//! behind a router keyed by the SigV4 service so other AWS services can join the listener.

mod arn;
pub(crate) mod error;
mod iam;
mod image_request;
mod image_wire;
mod image_write;
mod images;
mod input;
mod labels;
mod microvms;
mod paging;
mod query;
mod run_request;
mod s3;
pub(crate) mod sigv4;
mod sts;
mod tags;
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
#[derive(Clone)]
pub(crate) struct Services {
    lambda: Router,
    sts: Router,
    iam: Router,
    s3: s3s::service::S3Service,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

impl Services {
    /// The services of this emulator over `app`.
    pub(crate) fn new(app: Arc<App>) -> Self {
        Self {
            lambda: lambda_router(app.clone()),
            sts: sts::router(app.clone()),
            iam: iam::router(app.clone()),
            s3: s3::service(app.objects.clone()),
        }
    }

    /// Answers a control-plane request: unsigned → refused; otherwise by signing service.
    pub(crate) async fn handle(&self, req: Request) -> Response {
        let Some(scope) = sigv4::credential_scope(req.headers(), req.uri()) else {
            return ApiError::missing_authentication().into_response();
        };
        let router = match scope.service.as_str() {
            "lambda" => self.lambda.clone(),
            "sts" => self.sts.clone(),
            "iam" => self.iam.clone(),
            "s3" => return s3::handle(&self.s3, req).await,
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
        .route(&format!("{V}/microvm-images"), get(images::list).post(image_write::create))
        .route(&format!("{V}/microvm-images/{{img}}"), image_routes())
        .route(&format!("{V}/microvm-images/{{img}}/versions"), get(images::list_versions))
        .route(&format!("{V}/microvm-images/{{img}}/versions/{{ver}}"), version_routes())
        .route(&format!("{V}/microvm-images/{{img}}/versions/{{ver}}/builds"), get(images::list_builds))
        .route(&format!("{V}/microvm-images/{{img}}/versions/{{ver}}/builds/{{b}}"), get(images::get_build))
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
    get(images::get).put(image_write::update).delete(image_write::delete)
}

fn version_routes() -> MethodRouter<Arc<App>> {
    get(images::get_version).patch(image_write::update_version).delete(image_write::delete_version)
}

fn tag_routes() -> MethodRouter<Arc<App>> {
    get(tags::list).post(tags::tag).delete(tags::untag)
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
