//! The on-disk config document: per account and region, the bootstrap bucket and build role
//! and the images built by name. A pure serde model; reading and writing the file (atomically)
//! is the CLI's job.
//!
//! Keys are `<account>/<region>`, so an image built in one account or region is never used in
//! another.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version; [`Config::VERSION`].
    #[serde(default = "version")]
    pub version: u32,
    /// Per `<account>/<region>` (see [`Config::scope_key`]).
    #[serde(default)]
    pub scopes: BTreeMap<String, Scope>,
}

fn version() -> u32 {
    Config::VERSION
}

/// What whim keeps for one account in one region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// The artifact bucket `whim init` (or the first build) made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The build role's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_role_arn: Option<String>,
    /// Images built by whim, by name.
    #[serde(default)]
    pub images: BTreeMap<String, CachedImage>,
}

/// One built image, as `whim build` recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachedImage {
    /// The image ARN.
    pub arn: String,
    /// The build source as given, redacted (no credentials, no query string).
    pub source: String,
    /// `public`, `none` or a connector ARN.
    pub egress: String,
    /// Built with all OS capabilities.
    #[serde(default)]
    pub privileged: bool,
    /// Seconds since the Unix epoch.
    pub built_at: u64,
}

/// Why a config document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not JSON of the expected shape.
    #[error("not a whim config document: {0}")]
    Malformed(String),
    /// Written by a newer whim.
    #[error("config format version {0} is newer than this whim understands ({max})", max = Config::VERSION)]
    TooNew(u32),
}

impl Config {
    /// The format this whim writes.
    pub const VERSION: u32 = 1;

    /// Parses a config document (an empty document is an empty config).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config { version: Config::VERSION, ..Config::default() });
        }
        if !text.trim_start().starts_with('{') {
            return Err(ConfigError::Malformed("expected a JSON object".into()));
        }
        let config: Config = serde_json::from_str(text).map_err(|e| ConfigError::Malformed(e.to_string()))?;
        if config.version > Config::VERSION {
            return Err(ConfigError::TooNew(config.version));
        }
        Ok(config)
    }

    /// The document as pretty JSON with a trailing newline.
    #[must_use]
    pub fn render(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The key of an account in a region.
    #[must_use]
    pub fn scope_key(account: &str, region: &str) -> String {
        format!("{account}/{region}")
    }

    /// The scope of `account` in `region`, if any.
    #[must_use]
    pub fn scope(&self, account: &str, region: &str) -> Option<&Scope> {
        self.scopes.get(&Config::scope_key(account, region))
    }

    /// The scope of `account` in `region`, created empty when missing.
    pub fn scope_mut(&mut self, account: &str, region: &str) -> &mut Scope {
        self.version = Config::VERSION;
        self.scopes.entry(Config::scope_key(account, region)).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keys_by_account_and_region() {
        let mut c = Config::parse("").unwrap();
        let s = c.scope_mut("123456789012", "us-east-1");
        s.bucket = Some("b".into());
        s.images.insert(
            "x".into(),
            CachedImage { arn: "arn:a".into(), source: "./d".into(), egress: "public".into(), privileged: false, built_at: 7 },
        );
        let back = Config::parse(&c.render()).unwrap();
        assert_eq!(back, c);
        assert!(back.scope("123456789012", "us-west-2").is_none());
        assert!(back.scope("210987654321", "us-east-1").is_none());
        assert_eq!(back.scope("123456789012", "us-east-1").unwrap().images["x"].built_at, 7);
    }

    #[test]
    fn refuses_garbage_and_newer_formats() {
        assert!(matches!(Config::parse("{not json"), Err(ConfigError::Malformed(_))));
        assert!(matches!(Config::parse("[]"), Err(ConfigError::Malformed(_))));
        assert!(matches!(Config::parse("[1, {}]"), Err(ConfigError::Malformed(_))));
        assert!(matches!(Config::parse(r#"{"version":1,"scopes":{},"extra":1}"#), Err(ConfigError::Malformed(_))));
        assert_eq!(Config::parse(r#"{"version":9}"#), Err(ConfigError::TooNew(9)));
    }
}
