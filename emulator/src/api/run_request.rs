//! RunMicrovm input: model constraints (reference §A.4.1) checked in the service's wording.

use serde_json::{Map, Value};

use super::arn;
use super::error::ApiError;
use super::input::{Body, Violations, int_member};
use crate::state::vm::IdlePolicy;

/// Longest `runHookPayload` in UTF-8 bytes (model shape and measurement; the prose's 16 KB is wrong).
const MAX_RUN_HOOK_PAYLOAD: usize = 4096;
/// Largest `maximumDurationInSeconds` (8 h), also the default.
pub(crate) const MAX_DURATION_SECS: i64 = 28_800;
/// Most connectors per direction.
const MAX_CONNECTORS: usize = 10;
const ROLE_PATTERN: &str = r"arn:aws[a-z\-]*:iam::[0-9]{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+";

/// A RunMicrovm request that passed validation.
#[derive(Debug, Clone)]
pub(crate) struct RunRequest {
    /// `imageIdentifier` (an image ARN).
    pub image: String,
    /// `imageVersion`, if pinned.
    pub version: Option<String>,
    /// `executionRoleArn`.
    pub execution_role_arn: Option<String>,
    /// `idlePolicy`.
    pub idle_policy: Option<IdlePolicy>,
    /// `ingressNetworkConnectors` as given.
    pub ingress: Option<Vec<String>>,
    /// `egressNetworkConnectors` as given.
    pub egress: Option<Vec<String>>,
    /// `maximumDurationInSeconds` after the default.
    pub max_duration_secs: u32,
    /// `clientToken`.
    pub client_token: Option<String>,
}

impl RunRequest {
    /// Validates a RunMicrovm body: model constraints first (one 400 listing all), then ARNs.
    pub(crate) fn parse(body: &Body) -> Result<Self, ApiError> {
        let mut v = Violations::default();
        let image = body.string("imageIdentifier")?;
        match &image {
            None => v.null("imageIdentifier"),
            Some(i) => v.too_long("imageIdentifier", Some(i), i.len(), 256),
        }
        if let Some(payload) = body.string("runHookPayload")? {
            v.too_long("runHookPayload", None, payload.len(), MAX_RUN_HOOK_PAYLOAD);
        }
        let duration = body.int("maximumDurationInSeconds")?.unwrap_or(MAX_DURATION_SECS);
        v.at_least("maximumDurationInSeconds", duration, 1);
        v.at_most("maximumDurationInSeconds", duration, MAX_DURATION_SECS);
        let execution_role_arn = body.string("executionRoleArn")?;
        if let Some(role) = &execution_role_arn {
            check_role("executionRoleArn", role, &mut v);
        }
        let client_token = body.string("clientToken")?;
        if let Some(t) = &client_token {
            v.too_long("clientToken", Some(t), t.len(), 128);
        }
        let idle_policy = parse_idle_policy(body.object("idlePolicy")?, &mut v)?;
        let ingress = connectors(body, "ingressNetworkConnectors", &mut v)?;
        let egress = connectors(body, "egressNetworkConnectors", &mut v)?;
        body.object("logging")?;
        v.finish()?;
        ingress.iter().chain(egress.iter()).flatten().try_for_each(|c| arn::check_connector(c))?;
        let image = image.unwrap_or_default();
        arn::check_run_image(&image)?;
        let max_duration_secs = u32::try_from(duration).unwrap_or(u32::MAX);
        let version = body.string("imageVersion")?;
        Ok(Self { image, version, execution_role_arn, idle_policy, ingress, egress, max_duration_secs, client_token })
    }
}

fn connectors(body: &Body, key: &str, v: &mut Violations) -> Result<Option<Vec<String>>, ApiError> {
    let list = body.strings(key)?;
    if let Some(items) = &list {
        let shown = format!("[{}]", items.join(", "));
        v.too_long(key, Some(&shown), items.len(), MAX_CONNECTORS);
    }
    Ok(list)
}

fn parse_idle_policy(obj: Option<&Map<String, Value>>, v: &mut Violations) -> Result<Option<IdlePolicy>, ApiError> {
    let Some(obj) = obj else { return Ok(None) };
    let max_idle = int_member(obj.get("maxIdleDurationSeconds"), "idlePolicy.maxIdleDurationSeconds")?;
    let suspended = int_member(obj.get("suspendedDurationSeconds"), "idlePolicy.suspendedDurationSeconds")?;
    let auto_resume = match obj.get("autoResumeEnabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(ApiError::serialization("'idlePolicy.autoResumeEnabled' must be a boolean")),
    };
    match max_idle {
        None => v.null("idlePolicy.maxIdleDurationSeconds"),
        Some(n) => v.at_least("idlePolicy.maxIdleDurationSeconds", n, 60),
    }
    match suspended {
        None => v.null("idlePolicy.suspendedDurationSeconds"),
        Some(n) => v.at_least("idlePolicy.suspendedDurationSeconds", n, 0),
    }
    if auto_resume.is_none() {
        v.null("idlePolicy.autoResumeEnabled");
    }
    Ok(match (max_idle, suspended, auto_resume) {
        (Some(max_idle_duration_seconds), Some(suspended_duration_seconds), Some(auto_resume_enabled)) => {
            Some(IdlePolicy { max_idle_duration_seconds, suspended_duration_seconds, auto_resume_enabled })
        }
        _ => None,
    })
}

/// A role ARN member (`executionRoleArn`, `buildRoleArn`): 20..2048 and the model's pattern.
pub(crate) fn check_role(path: &str, role: &str, v: &mut Violations) {
    v.too_long(path, Some(role), role.len(), 2048);
    if role.len() < 20 || !is_role_arn(role) {
        v.pattern(path, role, ROLE_PATTERN);
    }
}

/// Hand-written [`ROLE_PATTERN`] match.
fn is_role_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:aws") else { return false };
    let Some((partition, rest)) = rest.split_once(':') else { return false };
    let Some(rest) = rest.strip_prefix("iam::") else { return false };
    let Some((account, rest)) = rest.split_once(':') else { return false };
    let Some(rest) = rest.strip_prefix("role") else { return false };
    let name = rest.strip_prefix('/').unwrap_or(rest);
    let name_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@-_/".contains(c);
    partition.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && !name.is_empty()
        && name.chars().all(name_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<RunRequest, ApiError> {
        RunRequest::parse(&Body::parse(json.as_bytes()).expect("json"))
    }

    #[test]
    fn defaults_and_refusals() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:microvm-image:x";
        let ok = parse(&format!(r#"{{"imageIdentifier":"{arn}"}}"#)).expect("valid");
        assert_eq!(ok.max_duration_secs, 28_800);
        let long = "x".repeat(4097);
        let e = parse(&format!(r#"{{"imageIdentifier":"{arn}","runHookPayload":"{long}"}}"#)).expect_err("4097");
        assert!(format!("{e:?}").contains("Value at 'runHookPayload'"));
        assert!(parse(&format!(r#"{{"imageIdentifier":"{arn}","maximumDurationInSeconds":0}}"#)).is_err());
        assert!(parse(&format!(r#"{{"imageIdentifier":"{arn}","maximumDurationInSeconds":28801}}"#)).is_err());
        let idle =
            parse(&format!(r#"{{"imageIdentifier":"{arn}","idlePolicy":{{"maxIdleDurationSeconds":60,"suspendedDurationSeconds":0}}}}"#));
        assert!(format!("{:?}", idle.expect_err("no autoResume")).contains("idlePolicy.autoResumeEnabled"));
        assert!(parse(r#"{"imageIdentifier":"whim-default"}"#).is_err());
        assert!(parse(&format!(r#"{{"imageIdentifier":"{arn}","ingressNetworkConnectors":["ALL_INGRESS"]}}"#)).is_err());
        assert!(is_role_arn("arn:aws:iam::123456789012:role/whim-exec"));
        assert!(!is_role_arn("whim-exec"));
    }
}
