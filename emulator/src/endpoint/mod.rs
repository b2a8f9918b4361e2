//! The per-VM endpoint (data plane), on the control plane's listener, routed by `Host`.
//!
//! A request whose `Host` is `<uuid>.lambda-microvm.<region>.on.aws` (any port) is for a VM.
//! Refusals follow the recorded answer table of reference §E.2: plain-text bodies, not JSON.
//! Token values are never logged (only [`crate::state::tokens::fingerprint`]s).
//!
//! Unrecorded choices (reference §H), lenient where the sources disagree:
//! - §H 3: any path opens the shell (`/` and `/shell`); a port subprotocol is ignored for it.
//! - §H 5: sessions per VM are unlimited; no reattach by `session_id`; a VM that dies under a
//!   session ends it like a shell exit (close 1000 `shell exited`).
//! - §H 6: a token gates only the handshake (an open session outlives its expiry), and tokens
//!   stay valid across suspend/resume.
//! - §H 15/16: app tokens are minted and honoured whatever the VM's ingress connectors are.

mod shell;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use whim_core::shell::{AUTH_HEADER, SUBPROTOCOL_AUTH_PREFIX, SUBPROTOCOL_MARKER};

use crate::state::App;
use crate::state::tokens::{TokenGrant, TokenKind, fingerprint, looks_like_jwe};
use crate::state::vm::{Microvm, VmState};

/// Recorded body: no token, or one that does not parse.
const MISSING_AUTH: &str = "Request missing authentication";
/// Recorded body: a token of another VM, or an unknown endpoint host.
const AUTH_FAILED: &str = "Token authentication failed";
/// Recorded body (peer measurement): the token does not grant the target port.
const PORT_DENIED: &str = "Access to port denied";
/// Port an app request goes to without `X-aws-proxy-port` or a port subprotocol.
const DEFAULT_PORT: u16 = 8080;

/// The VM endpoint host a request is addressed to (lower-case, port stripped), if any.
pub(crate) fn endpoint_host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    let raw = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.host())?;
    let host = match raw.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => raw,
    };
    let host = host.to_ascii_lowercase();
    (host.ends_with(".on.aws") && host.contains(".lambda-microvm.")).then_some(host)
}

/// What the client presented.
#[derive(Debug, Default)]
struct Presented {
    token: Option<String>,
    via_subprotocol: bool,
    marker: bool,
    port: Option<u16>,
}

/// Answers one request to a VM endpoint.
pub(crate) async fn handle(app: Arc<App>, host: String, req: Request) -> Response {
    let (mut parts, _body) = req.into_parts();
    let upgrade = is_websocket_upgrade(&parts.headers);
    let presented = presented(&parts.headers, upgrade && !app.cfg.guesses.accept_header_auth_on_upgrade);
    let token = match &presented.token {
        Some(t) if looks_like_jwe(t) && (presented.marker || !presented.via_subprotocol) => t.clone(),
        _ => return text(StatusCode::FORBIDDEN, MISSING_AUTH),
    };
    let vm = app.fleet.by_host(&host);
    let (vm, grant) = match (vm, app.tokens.lookup(&token)) {
        (Some(vm), Some(grant)) if grant.vm_id == vm.id => (vm, grant),
        _ => {
            tracing::debug!(host, token = %fingerprint(&token), "endpoint token refused");
            return text(StatusCode::FORBIDDEN, AUTH_FAILED);
        }
    };
    if grant.is_expired(std::time::Instant::now()) {
        return text(StatusCode::FORBIDDEN, &app.cfg.guesses.expired_token_body);
    }
    vm.touch();
    if !ensure_running(&app, &vm).await {
        return empty(StatusCode::BAD_GATEWAY);
    }
    match (&grant.kind, upgrade) {
        (TokenKind::Shell, true) => match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(ws) => open_shell(&app, vm, ws).await,
            Err(rejection) => rejection.into_response(),
        },
        // Recorded: a shell token used for plain HTTPS gets an empty 502.
        (TokenKind::Shell, false) => empty(StatusCode::BAD_GATEWAY),
        (TokenKind::App(_), _) => app_request(&app, &grant, presented.port),
    }
}

/// App traffic: the emulator's guests serve nothing, which the service answers with 502.
fn app_request(app: &App, grant: &TokenGrant, port: Option<u16>) -> Response {
    let port = port.unwrap_or(DEFAULT_PORT);
    match &grant.kind {
        TokenKind::App(ports) if app.cfg.guesses.enforce_allowed_ports && !ports.allows(port) => text(StatusCode::FORBIDDEN, PORT_DENIED),
        _ => empty(StatusCode::BAD_GATEWAY),
    }
}

/// RUNNING now, or after waiting out PENDING, or after an auto-resume.
async fn ensure_running(app: &App, vm: &Arc<Microvm>) -> bool {
    let mut state = vm.state();
    if state == VmState::Pending {
        state = vm.wait_for(app.cfg.guesses.endpoint_pending_wait, |s| s != VmState::Pending).await;
    }
    let auto_resume = vm.spec.idle_policy.is_some_and(|p| p.auto_resume_enabled);
    match state {
        VmState::Running => true,
        VmState::Suspending | VmState::Suspended if auto_resume => {
            tracing::info!(vm = %vm.id, "endpoint request: auto-resuming");
            app.fleet.resume(vm).await.is_ok() && vm.state() == VmState::Running
        }
        _ => false,
    }
}

async fn open_shell(app: &App, vm: Arc<Microvm>, ws: WebSocketUpgrade) -> Response {
    let spawned = {
        let slot = vm.sandbox.lock().await;
        match slot.as_ref() {
            Some(sandbox) => sandbox.spawn_shell().await,
            None => return empty(StatusCode::BAD_GATEWAY),
        }
    };
    let shell = match spawned {
        Ok(shell) => shell,
        Err(e) => {
            tracing::warn!(vm = %vm.id, "cannot spawn a shell: {e}");
            return empty(StatusCode::BAD_GATEWAY);
        }
    };
    let activity = app.cfg.guesses.shell_session_counts_as_activity.then(|| vm.clone());
    let cut = vm.cut.subscribe();
    ws.protocols([SUBPROTOCOL_MARKER]).on_upgrade(move |socket| shell::serve(socket, shell, activity, cut))
}

fn presented(headers: &HeaderMap, subprotocol_only: bool) -> Presented {
    let protocols: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .collect();
    let sub_token = protocols.iter().find_map(|p| p.strip_prefix(SUBPROTOCOL_AUTH_PREFIX)).map(str::to_owned);
    let sub_port = protocols.iter().find_map(|p| p.strip_prefix("lambda-microvms.port.")?.parse().ok());
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let header_token = header_str(AUTH_HEADER).filter(|_| !subprotocol_only);
    let header_port = header_str("x-aws-proxy-port").and_then(|p| p.trim().parse().ok());
    let via_subprotocol = header_token.is_none() && sub_token.is_some();
    Presented {
        token: header_token.or(sub_token),
        via_subprotocol,
        marker: protocols.iter().any(|p| p == SUBPROTOCOL_MARKER),
        port: header_port.or(sub_port),
    }
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, word: &str| {
        headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(word)))
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body.to_owned()).into_response()
}

fn empty(status: StatusCode) -> Response {
    status.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_only_vm_hosts() {
        let uri: Uri = "/".parse().expect("uri");
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "ABC.lambda-microvm.us-east-1.on.aws:4567".parse().expect("host"));
        assert_eq!(endpoint_host(&h, &uri).as_deref(), Some("abc.lambda-microvm.us-east-1.on.aws"));
        h.insert(header::HOST, "127.0.0.1:4567".parse().expect("host"));
        assert_eq!(endpoint_host(&h, &uri), None);
    }

    #[test]
    fn reads_subprotocol_auth() {
        let mut h = HeaderMap::new();
        let offer = "lambda-microvms, lambda-microvms.authentication.a.b, lambda-microvms.port.9000";
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, offer.parse().expect("protocols"));
        let p = presented(&h, false);
        assert_eq!((p.token.as_deref(), p.marker, p.via_subprotocol, p.port), (Some("a.b"), true, true, Some(9000)));
    }
}
