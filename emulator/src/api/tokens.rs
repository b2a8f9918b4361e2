//! CreateMicrovmAuthToken and CreateMicrovmShellAuthToken (reference §A.4.10, §E.2).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::input::{Body, Violations, int_member};
use super::labels::Labels;
use super::microvms::{ApiResult, find};
use crate::state::App;
use crate::state::tokens::{PortGrant, TokenKind};
use crate::state::vm::Microvm;

/// Recorded: minting a shell token for a VM launched without SHELL_INGRESS.
const NEEDS_SHELL_INGRESS: &str = "Shell access requires SHELL_INGRESS network connector to be configured on the MicroVM.";
/// Recorded: minting a shell token for a VM with ALL_INGRESS and another ingress connector.
const ALL_INGRESS_COMBINED: &str =
    "ALL_INGRESS cannot be combined with other ingress network connectors; use HTTP_INGRESS and/or SHELL_INGRESS instead";

/// POST /2025-09-09/microvms/{id}/shell-auth-token
pub(crate) async fn shell_token(State(app): State<Arc<App>>, Labels(id): Labels<String>, body: Bytes) -> ApiResult {
    let body = Body::parse(&body)?;
    let mut v = Violations::default();
    let minutes = expiration(&body, &mut v)?;
    v.finish()?;
    let ttl = app.cfg.token_minute * minutes;
    let vm = mintable(&app, &id)?;
    if !vm.spec.has_ingress("SHELL_INGRESS") {
        return Err(ApiError::validation(NEEDS_SHELL_INGRESS));
    }
    if vm.spec.has_ingress("ALL_INGRESS") {
        return Err(ApiError::validation(ALL_INGRESS_COMBINED));
    }
    Ok(answer(app.tokens.mint(&vm.id, TokenKind::Shell, ttl)))
}

/// POST /2025-09-09/microvms/{id}/auth-token
pub(crate) async fn app_token(State(app): State<Arc<App>>, Labels(id): Labels<String>, body: Bytes) -> ApiResult {
    let body = Body::parse(&body)?;
    let mut v = Violations::default();
    let minutes = expiration(&body, &mut v)?;
    let ports = match body.get("allowedPorts") {
        None => {
            v.null("allowedPorts");
            None
        }
        Some(value) => Some(port_grant(value, &mut v)?),
    };
    v.finish()?;
    let ttl = app.cfg.token_minute * minutes;
    let vm = mintable(&app, &id)?;
    let grant = ports.unwrap_or(PortGrant::Ranges(Vec::new()));
    Ok(answer(app.tokens.mint(&vm.id, TokenKind::App(grant), ttl)))
}

/// The VM, unless it is gone and the guess says terminated VMs get no tokens.
fn mintable(app: &App, id: &str) -> Result<Arc<Microvm>, ApiError> {
    let vm = find(app, id)?;
    // GUESS (§H 23): token mint on a TERMINATED VM was never recorded.
    if app.cfg.guesses.refuse_tokens_for_terminated && vm.state().is_ending() {
        return Err(ApiError::validation(format!("The MicroVM {id} has been terminated and its state cannot be changed.")));
    }
    Ok(vm)
}

/// `expirationInMinutes`: required, 1..60.
fn expiration(body: &Body, v: &mut Violations) -> Result<u32, ApiError> {
    let Some(minutes) = body.int("expirationInMinutes")? else {
        v.null("expirationInMinutes");
        return Ok(0);
    };
    v.at_least("expirationInMinutes", minutes, 1);
    v.at_most("expirationInMinutes", minutes, 60);
    Ok(u32::try_from(minutes.clamp(0, 60)).unwrap_or(0))
}

/// `allowedPorts`: at least one PortSpecification union (one key per element).
fn port_grant(value: &Value, v: &mut Violations) -> Result<PortGrant, ApiError> {
    let items = value.as_array().ok_or_else(|| ApiError::serialization("'allowedPorts' must be a list"))?;
    if items.is_empty() {
        v.null("allowedPorts");
    }
    let mut ranges = Vec::new();
    for item in items {
        let obj = item.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
            ApiError::serialization("each allowedPorts element must be an object with exactly one of port, range, allPorts")
        })?;
        match port_spec(obj, v)? {
            None => return Ok(PortGrant::All),
            Some(range) => ranges.push(range),
        }
    }
    Ok(PortGrant::Ranges(ranges))
}

/// One PortSpecification: `None` for `allPorts`, else an inclusive range.
fn port_spec(obj: &Map<String, Value>, v: &mut Violations) -> Result<Option<(u16, u16)>, ApiError> {
    let port = |value: Option<&Value>, path: &str, v: &mut Violations| -> Result<u16, ApiError> {
        let Some(n) = int_member(value, path)? else {
            v.null(path);
            return Ok(0);
        };
        v.at_least(path, n, 1);
        v.at_most(path, n, 65_535);
        Ok(u16::try_from(n).unwrap_or(0))
    };
    if let Some(all) = obj.get("allPorts") {
        return match all {
            Value::Object(m) if m.is_empty() => Ok(None),
            _ => Err(ApiError::serialization("allPorts must be the empty object {}")),
        };
    }
    if let Some(p) = obj.get("port") {
        let p = port(Some(p), "allowedPorts.member.port", v)?;
        return Ok(Some((p, p)));
    }
    let Some(Value::Object(range)) = obj.get("range") else {
        return Err(ApiError::serialization("unknown PortSpecification member; use port, range or allPorts"));
    };
    let start = port(range.get("startPort"), "allowedPorts.member.range.startPort", v)?;
    let end = port(range.get("endPort"), "allowedPorts.member.range.endPort", v)?;
    Ok(Some((start, end)))
}

fn answer(token: String) -> Json<Value> {
    Json(json!({"authToken": {whim_core::shell::AUTH_HEADER: token}}))
}
