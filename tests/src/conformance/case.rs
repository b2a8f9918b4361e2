//! The recorded scenario format (`shared/reference/recorded/cases/*.json`) and its templating.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// One scenario: steps run in order against one emulator.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    /// Scenario id; also the fixture directory name.
    pub id: String,
    /// Template defaults (may themselves hold `${region}` / `${account}`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The steps.
    pub steps: Vec<Step>,
}

/// One request of a scenario.
#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    /// Step name; also the fixture file name.
    pub name: String,
    /// Service operation (`VmEndpoint` for a request to a VM's own endpoint).
    pub operation: String,
    /// HTTP method.
    pub method: String,
    /// Path (and query), with placeholders.
    pub path: String,
    /// JSON body, with placeholders in its strings.
    #[serde(default)]
    pub body: Option<Value>,
    /// What the answer must look like.
    #[serde(default)]
    pub expect: Expect,
    /// Captured name -> dotted JSON path in the answer.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// An unimplemented (501) answer does not stop the scenario.
    #[serde(default)]
    pub optional: bool,
    /// Base URL of a VM endpoint step (not signed).
    #[serde(default, rename = "baseURL")]
    pub base_url: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Poll the step until a member has a value.
    #[serde(default)]
    pub until: Option<Until>,
}

/// Expectations of a step.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expect {
    /// Exact HTTP status.
    pub status: Option<u16>,
    /// Exact error type.
    pub error_type: Option<String>,
    /// One of these error types.
    pub error_type_one_of: Option<Vec<String>>,
    /// A subset the body must contain.
    pub body_match: Option<Value>,
    /// Shape of list items.
    pub item_shape: Option<ItemShape>,
}

/// `itemShape`: the members every list item must (exactly) have.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemShape {
    /// Dotted path of the list.
    pub path: String,
    /// Members each item must have.
    pub required: Vec<String>,
    /// No other members allowed.
    #[serde(default)]
    pub exact: bool,
    /// Least number of items.
    #[serde(default)]
    pub min_items: usize,
}

/// `until`: poll until `path` equals `equals`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Until {
    /// Dotted path of the member.
    pub path: String,
    /// The value to wait for.
    pub equals: Value,
    /// Give up after this long.
    pub timeout_sec: f64,
    /// Poll interval.
    pub interval_sec: f64,
}

/// Placeholder values: built-ins, params and captures.
#[derive(Debug, Clone, Default)]
pub struct Vars(BTreeMap<String, String>);

impl Vars {
    /// Built-ins `region` and `account`, then `params` (expanded against the built-ins).
    pub fn new(region: &str, account: &str, params: &BTreeMap<String, String>) -> Self {
        let mut vars = Vars(BTreeMap::from([("region".into(), region.into()), ("account".into(), account.into())]));
        for (k, v) in params {
            let expanded = vars.expand(v).unwrap_or_else(|_| v.clone());
            vars.0.insert(k.clone(), expanded);
        }
        vars
    }

    /// Sets a captured value.
    pub fn set(&mut self, name: &str, value: String) {
        self.0.insert(name.to_owned(), value);
    }

    /// Replaces every `${name}`; `Err(name)` for the first unknown one.
    pub fn expand(&self, template: &str) -> Result<String, String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| after.to_owned())?;
            let name = &after[..end];
            out.push_str(self.0.get(name).ok_or_else(|| name.to_owned())?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// [`Vars::expand`] applied to every string inside a JSON value.
    pub fn expand_json(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => Value::String(self.expand(s)?),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.expand_json(v)).collect::<Result<_, _>>()?),
            Value::Object(map) => {
                let pairs = map.iter().map(|(k, v)| Ok((k.clone(), self.expand_json(v)?)));
                Value::Object(pairs.collect::<Result<_, String>>()?)
            }
            other => other.clone(),
        })
    }
}

/// The member at a dotted path (`items.0.imageArn`, `authToken.X-aws-proxy-auth`).
pub fn at_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, part| match v {
        Value::Array(items) => items.get(part.parse::<usize>().ok()?),
        Value::Object(map) => map.get(part),
        _ => None,
    })
}

/// A JSON value as a placeholder string (strings unquoted).
pub fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_params_and_paths() {
        let params = BTreeMap::from([("arn".to_owned(), "arn:aws:lambda:${region}:${account}:x".to_owned())]);
        let vars = Vars::new("us-east-1", "123", &params);
        assert_eq!(vars.expand("/p/${arn}/v").as_deref(), Ok("/p/arn:aws:lambda:us-east-1:123:x/v"));
        assert_eq!(vars.expand("${nope}"), Err("nope".to_owned()));
        let v = serde_json::json!({"items": [{"a": "b"}], "authToken": {"X-aws-proxy-auth": "t"}});
        assert_eq!(at_path(&v, "items.0.a"), Some(&Value::from("b")));
        assert_eq!(at_path(&v, "authToken.X-aws-proxy-auth"), Some(&Value::from("t")));
    }
}
