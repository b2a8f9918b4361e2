//! The listener: one loopback socket for the control plane, every VM endpoint (by `Host`)
//! and the emulator's own `/__whim/*` routes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::Services;
use crate::api::error::ApiError;
use crate::config::EmulatorConfig;
use crate::endpoint;
use crate::sandbox::{self, Isolation};
use crate::state::App;

/// How long [`Emulator::shutdown`] waits for open connections before dropping them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The emulator serves root shells without authentication beyond tokens: loopback only.
    #[error("refusing to listen on {0}: whim-emulator only binds loopback addresses; use 127.0.0.1:<port>")]
    NotLoopback(SocketAddr),
    /// The host cannot run namespace sandboxes.
    #[error("this host cannot run the namespace sandbox: {0}")]
    SandboxUnavailable(String),
    /// Binding the socket failed.
    #[error("cannot listen on {addr}: {source}; pick another port or free this one")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug)]
struct Signals {
    /// Someone asked the emulator to stop (POST /__whim/shutdown).
    requested: watch::Sender<bool>,
    /// The listener must stop serving.
    stop: watch::Sender<bool>,
}

#[derive(Debug, Clone)]
struct Shared {
    app: Arc<App>,
    services: Services,
    signals: Arc<Signals>,
}

/// A running emulator: control plane, VM endpoints and sandboxes.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    app: Arc<App>,
    signals: Arc<Signals>,
    server: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Checks the address (loopback only) and the host (sandbox probe unless unisolated), binds,
    /// and serves in the background.
    pub async fn start(cfg: EmulatorConfig) -> anyhow::Result<Emulator> {
        if !cfg.addr.ip().is_loopback() {
            return Err(StartError::NotLoopback(cfg.addr).into());
        }
        if cfg.sandbox.isolation != Isolation::Unisolated {
            let probed = tokio::task::spawn_blocking(sandbox::probe).await?;
            probed.map_err(|why| StartError::SandboxUnavailable(mention_unisolated(why)))?;
        }
        let listener = TcpListener::bind(cfg.addr).await.map_err(|source| StartError::Bind { addr: cfg.addr, source })?;
        let addr = listener.local_addr()?;
        let app = App::new(cfg).map_err(|e| anyhow::anyhow!("cannot create the emulator state directory: {e}"))?;
        let signals = Arc::new(Signals { requested: watch::Sender::new(false), stop: watch::Sender::new(false) });
        let shared = Shared { services: Services::new(app.clone()), app: app.clone(), signals: signals.clone() };
        let router = Router::new().fallback(dispatch).with_state(shared).layer(axum::middleware::map_response(add_request_id));
        let mut stop = signals.stop.subscribe();
        // Shell frames are small and interactive: never let Nagle hold them back.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
        let serving =
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
        let server = tokio::spawn(async move {
            if let Err(e) = serving.await {
                tracing::error!("emulator listener failed: {e}");
            }
        });
        tracing::info!(%addr, "whim-emulator listening");
        Ok(Emulator { addr, app, signals, server: Some(server) })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the `endpoint_url` for the SDK.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every endpoint token minted so far (for tests proving tokens never reach logs or output).
    /// The values are secrets: never print them.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.app.tokens.all()
    }

    /// Drops every open shell connection of VM `id` without a close frame, as a network
    /// failure would (the VM keeps running). False when there is no such VM.
    pub fn cut_shell_connections(&self, id: &str) -> bool {
        self.app.fleet.get(id).map(|vm| vm.cut.send_modify(|n| *n += 1)).is_some()
    }

    /// Resolves once a shutdown was requested (POST /__whim/shutdown from loopback).
    pub async fn wait(&self) {
        let mut rx = self.signals.requested.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Terminates every VM (no sandbox process is left), stops serving, and removes the S3
    /// objects and built images under the state directory (they live as long as the emulator).
    pub async fn shutdown(mut self) {
        self.signals.requested.send_replace(true);
        self.app.fleet.shutdown().await;
        let state_dir = self.app.cfg.state_dir.clone();
        let _ = tokio::task::spawn_blocking(move || remove_state(&state_dir)).await;
        self.signals.stop.send_replace(true);
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await.is_err()
        {
            server.abort();
        }
    }
}

impl Drop for Emulator {
    /// Stops serving; an emulator dropped without [`Emulator::shutdown`] (a test) still takes
    /// its S3 objects and built images with it.
    fn drop(&mut self) {
        self.signals.stop.send_replace(true);
        if let Some(server) = self.server.take() {
            server.abort();
            remove_state(&self.app.cfg.state_dir);
        }
    }
}

/// Removes the S3 objects and built images under `state_dir`, then the directory itself if
/// nothing else (sandbox scratch) is left in it. Best effort: failures are logged.
fn remove_state(state_dir: &std::path::Path) {
    for dir in ["s3", "images"] {
        let path = state_dir.join(dir);
        if let Err(e) = std::fs::remove_dir_all(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove {}: {e}", path.display());
        }
    }
    let _ = std::fs::remove_dir(state_dir);
}

fn mention_unisolated(why: String) -> String {
    if why.contains("--unisolated") {
        why
    } else {
        format!("{why}; pass --unisolated (Isolation::Unisolated) to run unsafe, unisolated shells instead")
    }
}

/// Routes by `Host` (VM endpoint), then `/__whim/*`, then the control plane.
async fn dispatch(State(shared): State<Shared>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    if let Some(host) = endpoint::endpoint_host(req.headers(), req.uri()) {
        return endpoint::handle(shared.app.clone(), host, req).await;
    }
    if req.uri().path().starts_with("/__whim/") {
        return internal(&shared, peer, req.method(), req.uri().path());
    }
    shared.services.handle(req).await
}

/// The emulator's own routes: health (for the CLI to find a running emulator) and shutdown.
fn internal(shared: &Shared, peer: SocketAddr, method: &Method, path: &str) -> Response {
    match (method, path) {
        (&Method::GET, "/__whim/health") => {
            axum::Json(json!({"service": "whim-emulator", "version": env!("CARGO_PKG_VERSION")})).into_response()
        }
        (&Method::POST, "/__whim/shutdown") if peer.ip().is_loopback() => {
            tracing::info!(%peer, "shutdown requested");
            shared.signals.requested.send_replace(true);
            axum::Json(json!({})).into_response()
        }
        (&Method::POST, "/__whim/shutdown") => (StatusCode::FORBIDDEN, "shutdown is only accepted from loopback").into_response(),
        _ => ApiError::unknown_operation(method.as_str(), path).into_response(),
    }
}

/// Every answer carries `x-amzn-RequestId`, as the service's do.
async fn add_request_id(mut response: Response) -> Response {
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-amzn-RequestId", id);
    }
    response
}
