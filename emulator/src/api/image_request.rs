//! Create/UpdateMicrovmImage input (reference §A.4.4): model constraints in the service's
//! wording (one 400 listing every violation), then the managed base, then defaults.

use std::collections::BTreeMap;

use serde_json::Value;

use super::arn;
use super::error::ApiError;
use super::input::{Body, Violations, int_member};
use super::run_request::check_role;
use crate::state::images::{ImageSpec, ManagedImage, managed_connector_arn};

const NAME_PATTERN: &str = "[a-zA-Z0-9-_]+";
/// Default `resources[0].minimumMemoryInMiB` (recorded).
const DEFAULT_MEMORY_MIB: i64 = 2048;

/// A Create or Update request that passed validation.
#[derive(Debug, Clone)]
pub(crate) struct ImageRequest {
    /// `name` (Create only).
    pub name: Option<String>,
    /// What the new version is asked to be, after defaults.
    pub spec: ImageSpec,
    /// `tags` (Create only).
    pub tags: Option<BTreeMap<String, String>>,
    /// `clientToken`.
    pub client_token: Option<String>,
    /// The operation and its parameters minus the token (idempotency).
    pub fingerprint: String,
}

impl ImageRequest {
    /// Validates a Create (`create`) or Update body against the managed images of `region`.
    pub(crate) fn parse(body: &Body, create: bool, region: &str, managed: &[ManagedImage]) -> Result<Self, ApiError> {
        let mut v = Violations::default();
        let name = if create { body.string("name")? } else { None };
        if create {
            match &name {
                None => v.null("name"),
                Some(n) => check_name(n, &mut v),
            }
        }
        let base_image_arn = required_string(body, "baseImageArn", &mut v)?;
        let code_artifact_uri = code_artifact(body, &mut v)?;
        let build_role_arn = required_string(body, "buildRoleArn", &mut v)?;
        if let Some(role) = &build_role_arn {
            check_role("buildRoleArn", role, &mut v);
        }
        let egress = body.strings("egressNetworkConnectors")?;
        if let Some(items) = &egress {
            v.too_long("egressNetworkConnectors", Some(&format!("[{}]", items.join(", "))), items.len(), 1);
        }
        let memory_mib = memory(body, &mut v)?;
        let capabilities = body.strings("additionalOsCapabilities")?;
        if let Some(caps) = &capabilities {
            v.enum_list("additionalOsCapabilities", caps, &["ALL"]);
        }
        check_architectures(body, &mut v)?;
        let client_token = body.string("clientToken")?;
        if let Some(t) = &client_token {
            v.too_long("clientToken", Some(t), t.len(), 128);
        }
        let tags = if create { string_map(body, "tags")? } else { None };
        v.finish()?;
        egress.iter().flatten().try_for_each(|c| arn::check_connector(c))?;
        let base_image_arn = base_image_arn.unwrap_or_default();
        let base_image_version = base_version(&base_image_arn, body.string("baseImageVersion")?, managed)?;
        let spec = ImageSpec {
            base_image_arn,
            base_image_version,
            build_role_arn: build_role_arn.unwrap_or_default(),
            code_artifact_uri: code_artifact_uri.unwrap_or_default(),
            description: body.string("description")?,
            egress: egress.unwrap_or_else(|| vec![managed_connector_arn(region, "INTERNET_EGRESS")]),
            memory_mib,
            capabilities: body.get("additionalOsCapabilities").cloned(),
            cpu_configurations: body.get("cpuConfigurations").cloned(),
            logging: body.object("logging")?.map(|m| Value::Object(m.clone())),
            hooks: body.object("hooks")?.map(|m| Value::Object(m.clone())),
            environment_variables: body.object("environmentVariables")?.map(|m| Value::Object(m.clone())),
        };
        let operation = if create { "CreateMicrovmImage" } else { "UpdateMicrovmImage" };
        let fingerprint = format!("{operation} {}", body.fingerprint_without("clientToken"));
        Ok(Self { name, spec, tags, client_token, fingerprint })
    }
}

fn check_name(name: &str, v: &mut Violations) {
    v.too_long("name", Some(name), name.len(), 64);
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || !name.chars().all(ok_char) {
        v.pattern("name", name, NAME_PATTERN);
    }
}

fn required_string(body: &Body, key: &str, v: &mut Violations) -> Result<Option<String>, ApiError> {
    let value = body.string(key)?;
    match &value {
        None => v.null(key),
        Some(s) => v.too_long(key, Some(s), s.len(), 2048),
    }
    Ok(value)
}

/// `codeArtifact` is a union whose only member is `uri`.
fn code_artifact(body: &Body, v: &mut Violations) -> Result<Option<String>, ApiError> {
    let Some(obj) = body.object("codeArtifact")? else {
        v.null("codeArtifact");
        return Ok(None);
    };
    match obj.get("uri") {
        Some(Value::String(uri)) => Ok(Some(uri.clone())),
        None | Some(Value::Null) => {
            v.null("codeArtifact.uri");
            Ok(None)
        }
        Some(_) => Err(ApiError::serialization("'codeArtifact.uri' must be a string")),
    }
}

/// `resources`: at most one entry, whose `minimumMemoryInMiB` is required; default 2048.
fn memory(body: &Body, v: &mut Violations) -> Result<i64, ApiError> {
    let Some(resources) = body.get("resources") else { return Ok(DEFAULT_MEMORY_MIB) };
    let items = resources.as_array().ok_or_else(|| ApiError::serialization("'resources' must be a list"))?;
    v.too_long("resources", None, items.len(), 1);
    let Some(first) = items.first() else { return Ok(DEFAULT_MEMORY_MIB) };
    let member = first.as_object().and_then(|o| o.get("minimumMemoryInMiB"));
    match int_member(member, "resources.1.member.minimumMemoryInMiB")? {
        Some(mib) => Ok(mib),
        None => {
            v.null("resources.1.member.minimumMemoryInMiB");
            Ok(DEFAULT_MEMORY_MIB)
        }
    }
}

/// `cpuConfigurations[*].architecture` is required and only `ARM_64` exists.
fn check_architectures(body: &Body, v: &mut Violations) -> Result<(), ApiError> {
    let Some(configs) = body.get("cpuConfigurations") else { return Ok(()) };
    let items = configs.as_array().ok_or_else(|| ApiError::serialization("'cpuConfigurations' must be a list"))?;
    for (i, item) in items.iter().enumerate() {
        let path = format!("cpuConfigurations.{}.member.architecture", i + 1);
        match item.as_object().and_then(|o| o.get("architecture")).and_then(Value::as_str) {
            Some(arch) => v.enum_value(&path, arch, &["ARM_64"]),
            None => v.null(&path),
        }
    }
    Ok(())
}

fn string_map(body: &Body, key: &str) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    let Some(obj) = body.object(key)? else { return Ok(None) };
    let pairs = obj.iter().map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())));
    pairs
        .collect::<Option<BTreeMap<_, _>>>()
        .map(Some)
        .ok_or_else(|| ApiError::serialization(format!("'{key}' must map strings to strings")))
}

/// The managed base version, normalised as the service echoes it (`"1"` → `"1.0"`); the
/// newest when not given. Recorded refusal for a version that does not exist.
fn base_version(base: &str, asked: Option<String>, managed: &[ManagedImage]) -> Result<String, ApiError> {
    let image = managed.iter().find(|m| m.arn == base);
    let wanted = asked.clone().map(|a| a.strip_suffix(".0").map(str::to_owned).unwrap_or(a));
    let found = image.and_then(|m| match &wanted {
        Some(w) => m.versions.iter().find(|v| &v.version == w),
        None => m.versions.first(),
    });
    match found {
        Some(v) => Ok(format!("{}.0", v.version)),
        None => {
            let shown = asked.unwrap_or_else(|| "1".into());
            Err(ApiError::validation(format!("No managed MicroVM Image with arn {base} and version {shown} is available")))
        }
    }
}
