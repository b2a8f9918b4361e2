//! Request input: typed access to a JSON body, the query string, and model-constraint checks
//! that produce the service's "N validation errors detected: …" messages.

use std::collections::HashMap;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::error::ApiError;

/// A JSON request body (an absent or empty body reads as `{}`).
#[derive(Debug, Default)]
pub(crate) struct Body(Map<String, Value>);

impl Body {
    /// Parses `bytes`; anything but a JSON object is a SerializationException.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::serialization("The request body must be a JSON object")),
            Err(e) => Err(ApiError::serialization(format!("The request body is not valid JSON: {e}"))),
        }
    }

    /// A member, `None` when absent or `null`.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// An optional string member.
    pub(crate) fn string(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong_type(key, "a string")),
        }
    }

    /// An optional integer member.
    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        int_member(self.get(key), key)
    }

    /// An optional list-of-strings member.
    pub(crate) fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        let Some(value) = self.get(key) else { return Ok(None) };
        let items = value.as_array().ok_or_else(|| wrong_type(key, "a list of strings"))?;
        let strings = items.iter().map(|v| v.as_str().map(str::to_owned));
        strings.collect::<Option<Vec<_>>>().map(Some).ok_or_else(|| wrong_type(key, "a list of strings"))
    }

    /// The body without `skip`, canonically serialised (sorted keys): a request's parameters
    /// for idempotency checks.
    pub(crate) fn fingerprint_without(&self, skip: &str) -> String {
        let rest: Map<String, Value> = self.0.iter().filter(|(k, _)| k.as_str() != skip).map(|(k, v)| (k.clone(), v.clone())).collect();
        Value::Object(rest).to_string()
    }

    /// An optional object member.
    pub(crate) fn object(&self, key: &str) -> Result<Option<&Map<String, Value>>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(wrong_type(key, "an object")),
        }
    }
}

/// An optional integer from a JSON value.
pub(crate) fn int_member(value: Option<&Value>, key: &str) -> Result<Option<i64>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| wrong_type(key, "an integer")),
    }
}

fn wrong_type(key: &str, what: &str) -> ApiError {
    ApiError::serialization(format!("'{key}' must be {what}"))
}

/// The query string, decoded, plus which values arrived with a raw (unencoded) `=`.
#[derive(Debug, Default)]
pub(crate) struct Query {
    values: HashMap<String, String>,
    raw_equals: Vec<String>,
}

impl Query {
    /// Parses a raw query string (`None` = no query).
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let mut q = Self::default();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key);
            if value.contains('=') {
                q.raw_equals.push(key.clone());
            }
            q.values.insert(key, decode(value));
        }
        q
    }

    /// A decoded value.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// True when `key`'s value contained an unencoded `=`.
    pub(crate) fn has_raw_equals(&self, key: &str) -> bool {
        self.raw_equals.iter().any(|k| k == key)
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Collects model-constraint violations in the service's wording.
#[derive(Debug, Default)]
pub(crate) struct Violations(Vec<String>);

impl Violations {
    /// A required member is missing.
    pub(crate) fn null(&mut self, path: &str) {
        self.0.push(format!("Value null at '{path}' failed to satisfy constraint: Member must not be null"));
    }

    /// A number below its minimum.
    pub(crate) fn at_least(&mut self, path: &str, value: i64, min: i64) {
        if value < min {
            self.0.push(format!(
                "Value '{value}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
            ));
        }
    }

    /// A number above its maximum.
    pub(crate) fn at_most(&mut self, path: &str, value: i64, max: i64) {
        if value > max {
            self.0.push(format!(
                "Value '{value}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}"
            ));
        }
    }

    /// A string or list longer than allowed; `shown` is the value to quote (`None` hides it,
    /// as the service does for `runHookPayload`).
    pub(crate) fn too_long(&mut self, path: &str, shown: Option<&str>, len: usize, max: usize) {
        if len > max {
            let value = shown.map(|s| format!(" '{s}'")).unwrap_or_default();
            self.0.push(format!(
                "Value{value} at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}"
            ));
        }
    }

    /// A string that does not match its pattern.
    pub(crate) fn pattern(&mut self, path: &str, value: &str, pattern: &str) {
        self.0.push(format!(
            "Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
        ));
    }

    /// A value outside its enum (`Member must satisfy enum value set: [A, B]`).
    pub(crate) fn enum_value(&mut self, path: &str, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.0.push(format!(
                "Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ));
        }
    }

    /// A list with a value outside its members' enum (the service's nested-constraint wording).
    pub(crate) fn enum_list(&mut self, path: &str, values: &[String], allowed: &[&str]) {
        if values.iter().any(|v| !allowed.contains(&v.as_str())) {
            self.0.push(format!(
                "Value '[{}]' at '{path}' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                values.join(", "),
                allowed.join(", ")
            ));
        }
    }

    /// `Ok` when nothing was violated, else one ValidationException listing everything.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(ApiError::validation(format!("1 validation error detected: {}", self.0[0]))),
            n => Err(ApiError::validation(format!("{n} validation errors detected: {}", self.0.join("; ")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_the_recordings() {
        let mut v = Violations::default();
        v.too_long("runHookPayload", None, 4097, 4096);
        let e = v.finish().expect_err("too long");
        let want = ApiError::validation(
            "1 validation error detected: Value at 'runHookPayload' failed to satisfy constraint: Member must have length less than or equal to 4096",
        );
        assert_eq!(e, want);
        let mut v = Violations::default();
        v.null("a");
        v.null("b");
        let msg = format!("{:?}", v.finish());
        assert!(msg.contains("2 validation errors detected: Value null at 'a'"), "{msg}");
    }

    #[test]
    fn query_tracks_raw_equals() {
        let q = Query::parse(Some("maxResults=1&nextToken=ab%3D%3D&x=c=="));
        assert_eq!(q.get("nextToken"), Some("ab=="));
        assert!(!q.has_raw_equals("nextToken"));
        assert!(q.has_raw_equals("x"));
        assert_eq!(q.get("x"), Some("c=="));
    }
}
