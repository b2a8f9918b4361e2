//! Where and how to connect: connector ARNs, shell URLs, and the transport rule
//! (TLS always, plaintext only to a loopback address), plus [`Secret`].

use std::net::{IpAddr, SocketAddr};

/// A value that must never be printed: shell tokens, credentials.
/// `Debug` and `Display` show `<redacted>`; only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    /// The value, for the one place that sends it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Errors about endpoints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The service gave no endpoint.
    #[error("the VM has no endpoint yet")]
    Missing,
    /// A scheme other than wss/ws/https/http.
    #[error("endpoint `{0}` has a scheme whim cannot use: expected a host name or wss://")]
    BadScheme(String),
    /// Plaintext to something that is not this machine.
    #[error("refusing an unencrypted connection to {0}: plain ws:// or http:// is only allowed to a loopback address")]
    PlaintextNotLoopback(String),
}

/// The AWS partition of a region.
#[must_use]
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The ARN of a managed network connector (`HTTP_INGRESS`, `SHELL_INGRESS`, …).
#[must_use]
pub fn managed_connector_arn(region: &str, name: &str) -> String {
    format!("arn:{}:lambda:{region}:aws:network-connector:aws-network-connector:{name}", partition(region))
}

/// The ingress connectors the shell needs: HTTP_INGRESS and SHELL_INGRESS (never ALL_INGRESS).
#[must_use]
pub fn shell_ingress_connectors(region: &str) -> Vec<String> {
    vec![managed_connector_arn(region, "HTTP_INGRESS"), managed_connector_arn(region, "SHELL_INGRESS")]
}

/// The shell WebSocket URL for an endpoint: a bare host becomes `wss://host/`.
pub fn shell_url(endpoint: &str) -> Result<String, EndpointError> {
    let e = endpoint.trim();
    if e.is_empty() {
        return Err(EndpointError::Missing);
    }
    let (scheme, rest) = match e.split_once("://") {
        None => ("wss", e),
        Some(("wss" | "https", r)) => ("wss", r),
        Some(("ws" | "http", r)) => ("ws", r),
        Some(_) => return Err(EndpointError::BadScheme(e.to_owned())),
    };
    let host = rest.split('/').next().unwrap_or_default();
    Ok(format!("{scheme}://{host}/"))
}

/// How to reach a URL's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// Use TLS.
    pub tls: bool,
    /// Connect the TCP socket here instead of resolving the URL's host
    /// (the emulator routes by the Host header on one port).
    pub via: Option<SocketAddr>,
}

/// Decides the transport for `url`. `via` is where the caller reaches VM endpoints
/// when it talks to a local emulator. Plaintext is allowed only when the TCP peer is
/// a loopback address; TLS is used everywhere else.
pub fn transport(url: &str, via: Option<SocketAddr>) -> Result<Transport, EndpointError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| EndpointError::BadScheme(url.to_owned()))?;
    let authority = rest.split('/').next().unwrap_or_default();
    match (scheme, via) {
        ("wss" | "https", _) if via.is_none() => Ok(Transport { tls: true, via: None }),
        (_, Some(addr)) if addr.ip().is_loopback() => Ok(Transport { tls: false, via: Some(addr) }),
        (_, Some(addr)) => Err(EndpointError::PlaintextNotLoopback(addr.to_string())),
        ("ws" | "http", None) if is_loopback_authority(authority) => Ok(Transport { tls: false, via: None }),
        ("ws" | "http", None) => Err(EndpointError::PlaintextNotLoopback(authority.to_owned())),
        _ => Err(EndpointError::BadScheme(url.to_owned())),
    }
}

/// True when `host[:port]` names a loopback IP literal or `localhost`.
#[must_use]
pub fn is_loopback_authority(authority: &str) -> bool {
    if let Ok(sa) = authority.parse::<SocketAddr>() {
        return sa.ip().is_loopback();
    }
    let host = authority.rsplit_once(':').map_or(authority, |(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h } else { authority });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connectors_and_urls() {
        assert_eq!(
            shell_ingress_connectors("us-east-1")[1],
            "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:SHELL_INGRESS"
        );
        assert!(managed_connector_arn("cn-north-1", "X").starts_with("arn:aws-cn:"));
        assert_eq!(shell_url("abc.lambda-microvm.us-east-1.on.aws").unwrap(), "wss://abc.lambda-microvm.us-east-1.on.aws/");
        assert_eq!(shell_url("http://127.0.0.1:9/x").unwrap(), "ws://127.0.0.1:9/");
        assert!(shell_url("ftp://x").is_err());
        assert_eq!(shell_url(""), Err(EndpointError::Missing));
    }

    #[test]
    fn plaintext_only_to_loopback() {
        let lo: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let far: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        assert_eq!(transport("wss://h.on.aws/", None).unwrap(), Transport { tls: true, via: None });
        assert_eq!(transport("wss://h.on.aws/", Some(lo)).unwrap(), Transport { tls: false, via: Some(lo) });
        assert!(transport("wss://h.on.aws/", Some(far)).is_err());
        assert!(transport("ws://h.on.aws/", None).is_err());
        assert!(transport("ws://127.0.0.1:5/", None).is_ok());
        assert!(transport("ws://[::1]:5/", None).is_ok());
        assert!(transport("ws://localhost:5/", None).is_ok());
        assert!(transport("ws://localhost.evil.com/", None).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("tok".into());
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
    }
}
