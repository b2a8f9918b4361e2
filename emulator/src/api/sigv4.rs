//! SigV4 on the control plane: which service a request was signed for.
//!
//! Requests are routed by the credential scope's service (`lambda` today; `s3`, `iam`, `sts`
//! later). UNVERIFIED by design: the signature value itself is never checked, so any
//! well-formed `Authorization: AWS4-HMAC-SHA256 Credential=…` header is accepted.

use axum::http::{HeaderMap, Uri, header};
use percent_encoding::percent_decode_str;

/// The credential scope of a signed request: `<key>/<date>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CredentialScope {
    /// The access key id.
    pub access_key_id: String,
    /// The signing region.
    pub region: String,
    /// The signing service name (`lambda` for Lambda MicroVMs).
    pub service: String,
}

/// The scope from the `Authorization` header, else from a presigned URL's `X-Amz-Credential`.
pub(crate) fn credential_scope(headers: &HeaderMap, uri: &Uri) -> Option<CredentialScope> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("AWS4-HMAC-SHA256 "))
        .and_then(|rest| rest.split(',').find_map(|p| p.trim().strip_prefix("Credential=")))
        .map(str::to_owned);
    let from_query = || {
        uri.query()?
            .split('&')
            .find_map(|p| p.strip_prefix("X-Amz-Credential="))
            .map(|v| percent_decode_str(v).decode_utf8_lossy().into_owned())
    };
    parse_scope(&from_header.or_else(from_query)?)
}

fn parse_scope(credential: &str) -> Option<CredentialScope> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = parts.as_slice() else { return None };
    let ok = !key.is_empty() && date.len() == 8 && !region.is_empty() && !service.is_empty() && *terminator == "aws4_request";
    ok.then(|| CredentialScope { access_key_id: (*key).into(), region: (*region).into(), service: (*service).into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_scope_from_header_or_query() {
        let mut h = HeaderMap::new();
        let auth = "AWS4-HMAC-SHA256 Credential=AKID/20261203/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=ab";
        h.insert(header::AUTHORIZATION, auth.parse().expect("header"));
        let uri: Uri = "/x".parse().expect("uri");
        let scope = credential_scope(&h, &uri).expect("scope");
        assert_eq!((scope.region.as_str(), scope.service.as_str()), ("us-east-1", "lambda"));
        let presigned: Uri = "/b/k?X-Amz-Credential=AKID%2F20261203%2Fus-east-1%2Fs3%2Faws4_request".parse().expect("uri");
        assert_eq!(credential_scope(&HeaderMap::new(), &presigned).map(|s| s.service), Some("s3".into()));
        assert_eq!(credential_scope(&HeaderMap::new(), &uri), None);
        h.insert(header::AUTHORIZATION, "Bearer x".parse().expect("header"));
        assert_eq!(credential_scope(&h, &uri), None);
    }
}
