//! What `whim init` makes (the artifact bucket and the build role, reference §G.2) and the
//! checks `whim preflight-check` applies to what it finds (§G.3): pure functions on names and
//! policy documents.

use serde_json::{Value, json};

/// The build role's name.
pub const BUILD_ROLE: &str = "whim-build";
/// The build role's inline policy name.
pub const BUILD_POLICY: &str = "whim-build";
/// The log group prefix builds write to (the exact prefix matters, reference §D.3).
pub const LOG_PREFIX: &str = "/aws/lambda-microvms/";

/// The artifact bucket of an account in a region (S3 names: ≤ 63 lowercase characters).
#[must_use]
pub fn bucket_name(account: &str, region: &str) -> String {
    let mut name = format!("whim-artifacts-{account}-{region}").to_ascii_lowercase();
    name.truncate(63);
    name
}

/// The build role's trust policy: `lambda.amazonaws.com` may `sts:AssumeRole` and
/// `sts:TagSession`, only on behalf of `account` (confused-deputy guard).
#[must_use]
pub fn trust_policy(account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"StringEquals": {"aws:SourceAccount": account}}
        }]
    })
    .to_string()
}

/// The build role's permissions: read the artifacts, write the build logs.
#[must_use]
pub fn build_policy(bucket: &str, account: &str, region: &str) -> String {
    let group = format!("arn:aws:logs:{region}:{account}:log-group:{LOG_PREFIX}*");
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")},
            {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": [group.clone(), format!("{group}:log-stream:*")]}
        ]
    })
    .to_string()
}

fn statements(doc: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(doc).unwrap_or(Value::Null);
    match v.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

fn allows(stmt: &Value) -> bool {
    stmt.get("Effect").and_then(Value::as_str) == Some("Allow")
}

fn action_covers(actions: &[String], wanted: &str) -> bool {
    actions.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(wanted) || a.strip_suffix('*').is_some_and(|p| wanted.starts_with(p)))
}

/// The trust actions `lambda.amazonaws.com` lacks in `doc` (empty: the role is usable).
#[must_use]
pub fn missing_trust(doc: &str) -> Vec<&'static str> {
    let granted: Vec<String> = statements(doc)
        .iter()
        .filter(|s| allows(s) && strings(s.get("Principal").and_then(|p| p.get("Service"))).iter().any(|p| p == "lambda.amazonaws.com"))
        .flat_map(|s| strings(s.get("Action")))
        .collect();
    ["sts:AssumeRole", "sts:TagSession"].into_iter().filter(|w| !action_covers(&granted, w)).collect()
}

/// Whether `doc` grants the build logs on [`LOG_PREFIX`] (`/aws/lambda/microvms/*`, as some
/// documents write it, yields builds without logs).
#[must_use]
pub fn grants_build_logs(doc: &str) -> bool {
    statements(doc).iter().filter(|s| allows(s)).any(|s| {
        let actions = strings(s.get("Action"));
        action_covers(&actions, "logs:PutLogEvents")
            && strings(s.get("Resource")).iter().any(|r| r == "*" || r.contains(&format!("log-group:{LOG_PREFIX}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whims_own_documents_pass_its_checks() {
        assert!(missing_trust(&trust_policy("123456789012")).is_empty());
        assert!(grants_build_logs(&build_policy("b", "123456789012", "us-east-1")));
        assert_eq!(bucket_name("123456789012", "us-east-1"), "whim-artifacts-123456789012-us-east-1");
    }

    #[test]
    fn incomplete_documents_are_found_out() {
        let only_assume = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
        assert_eq!(missing_trust(only_assume), vec!["sts:TagSession"]);
        let ec2 = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:*"}]}"#;
        assert_eq!(missing_trust(ec2).len(), 2);
        assert_eq!(missing_trust("not json").len(), 2);
        let wrong_prefix =
            r#"{"Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"arn:aws:logs:*:1:log-group:/aws/lambda/microvms/*"}]}"#;
        assert!(!grants_build_logs(wrong_prefix));
    }
}
