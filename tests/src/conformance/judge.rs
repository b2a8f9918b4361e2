//! Judging one answer: error type extraction, expectations, fixture comparison.

use serde_json::Value;

use super::case::Expect;
use super::http::Answer;
use super::normalise;

/// `x-amzn-ErrorType`, else the body's `__type`, reduced to the bare name.
pub(super) fn error_type(answer: &Answer, body: Option<&Value>) -> Option<String> {
    let raw = answer.error_type_header.clone().or_else(|| body?.get("__type")?.as_str().map(str::to_owned))?;
    let after_hash = raw.rsplit('#').next().unwrap_or(&raw);
    Some(after_hash.split(':').next().unwrap_or(after_hash).to_owned())
}

pub(super) fn check_expect(expect: &Expect, answer: &Answer, error_type: Option<&str>, body: Option<&Value>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(status) = expect.status
        && answer.status != status
    {
        problems.push(format!("status {} (want {status})", answer.status));
    }
    if let Some(want) = &expect.error_type
        && error_type != Some(want.as_str())
    {
        problems.push(format!("error type {error_type:?} (want {want})"));
    }
    if let Some(any) = &expect.error_type_one_of
        && !error_type.is_some_and(|t| any.iter().any(|w| w == t))
    {
        problems.push(format!("error type {error_type:?} (want one of {any:?})"));
    }
    if let Some(want) = &expect.body_match
        && !body.is_some_and(|b| normalise::contains(b, want))
    {
        problems.push(format!("body lacks {want}"));
    }
    if let Some(shape) = &expect.item_shape
        && let Err(e) = body.map_or(Err("no JSON body".into()), |b| normalise::check_shape(b, shape))
    {
        problems.push(e);
    }
    problems
}

/// `None` when equal after normalisation; else a short description.
pub(super) fn compare_bodies(recorded: &[u8], got: &[u8]) -> Option<String> {
    match (serde_json::from_slice::<Value>(recorded), serde_json::from_slice::<Value>(got)) {
        (Ok(want), Ok(have)) => {
            let (want, have) = (normalise::normalise(&want), normalise::normalise(&have));
            (want != have).then(|| format!("recorded {want} vs emulator {have}"))
        }
        _ => {
            let want = normalise::normalise_text(String::from_utf8_lossy(recorded).trim_end());
            let have = normalise::normalise_text(String::from_utf8_lossy(got).trim_end());
            (want != have).then(|| format!("recorded {want:?} vs emulator {have:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_comparison_normalises_and_catches_missing_nulls() {
        let recorded = br#"{"a":null,"imageArn":"arn:aws:lambda:us-east-2:123456789012:microvm-image:m80-x","startedAt":1.0,"s":{"diskSnapshotSizeInBytes":25600000}}"#;
        let same = br#"{"a":null,"imageArn":"arn:aws:lambda:us-east-1:123456789012:microvm-image:m80-x","startedAt":2.5,"s":{"diskSnapshotSizeInBytes":7}}"#;
        assert_eq!(compare_bodies(recorded, same), None);
        let missing = br#"{"imageArn":"arn:aws:lambda:us-east-1:123456789012:microvm-image:m80-x","startedAt":2.5,"s":{"diskSnapshotSizeInBytes":7}}"#;
        assert!(compare_bodies(recorded, missing).is_some());
        let other = br#"{"a":null,"imageArn":"arn:aws:lambda:us-east-1:123456789012:microvm-image:whim-default","startedAt":2.5,"s":{"diskSnapshotSizeInBytes":7}}"#;
        assert!(compare_bodies(recorded, other).is_some());
        assert_eq!(compare_bodies(b"Request missing authentication", b"Request missing authentication"), None);
    }

    #[test]
    fn error_type_is_reduced_to_the_bare_name() {
        let answer = Answer { status: 400, error_type_header: Some("ThrottlingException:http://internal".into()), body: vec![] };
        assert_eq!(error_type(&answer, None).as_deref(), Some("ThrottlingException"));
        let answer = Answer { status: 400, error_type_header: None, body: vec![] };
        let body = serde_json::json!({"__type": "com.amazon#ValidationException"});
        assert_eq!(error_type(&answer, Some(&body)).as_deref(), Some("ValidationException"));
    }
}
