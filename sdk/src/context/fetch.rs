//! HTTPS downloads: redirects followed by hand (https only, at most 5, headers dropped for
//! good once the host changes), the compressed cap enforced while reading, extra CA roots
//! trusted next to Mozilla's. Errors name a URL's host and path only, never a header value.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use ureq::Agent;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use whim_core::source::Source;

use super::ContextOptions;
use crate::{Error, Secret};

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Downloads `url` (already validated as an https source URL) with `headers`.
pub(super) fn download(url: &str, headers: &[(String, Secret)], opts: &ContextOptions) -> Result<Vec<u8>, Error> {
    check_headers(headers)?;
    let agent = agent(opts)?;
    let mut url = url.to_owned();
    let mut send_headers = true;
    for _ in 0..=MAX_REDIRECTS {
        let mut request = agent.get(&url);
        if send_headers {
            for (name, value) in headers {
                request = request.header(name.as_str(), value.expose());
            }
        }
        let response = request.call().map_err(|e| network_error(&url, &e))?;
        let status = response.status().as_u16();
        if matches!(status, 301 | 302 | 303 | 307 | 308) {
            let next = redirect_target(&url, response.headers().get("location").and_then(|v| v.to_str().ok()))?;
            if authority(&next) != authority(&url) {
                send_headers = false;
            }
            tracing::debug!(from = %shown(&url), to = %shown(&next), "following a redirect");
            url = next;
            continue;
        }
        if !(200..300).contains(&status) {
            return Err(Error::InvalidSource(format!("downloading {} failed with HTTP {status}{}", shown(&url), hint(status))));
        }
        return read_body(response, &url, opts.limits.max_compressed_bytes);
    }
    Err(Error::InvalidSource(format!("downloading {} took more than {MAX_REDIRECTS} redirects", shown(&url))))
}

fn hint(status: u16) -> &'static str {
    match status {
        401 | 403 | 404 => ": check the URL; a private resource needs a header (or a GitHub token) with access",
        _ => "",
    }
}

/// The agent: https only, no automatic redirects, statuses as values, the extra roots.
fn agent(opts: &ContextOptions) -> Result<Agent, Error> {
    let mut config = Agent::config_builder()
        .https_only(true)
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .user_agent("whim");
    if !opts.extra_root_certs_pem.is_empty() {
        let mut roots: Vec<Certificate<'static>> =
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().map(|c| Certificate::from_der(c.as_ref())).collect();
        for pem in &opts.extra_root_certs_pem {
            roots.extend(pem_certificates(pem)?);
        }
        config = config.tls_config(TlsConfig::builder().root_certs(RootCerts::Specific(Arc::new(roots))).build());
    }
    Ok(config.build().into())
}

/// The certificates of one PEM file (at least one).
fn pem_certificates(pem: &[u8]) -> Result<Vec<Certificate<'static>>, Error> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(_) => return Err(Error::InvalidOption("an extra root certificate file is not valid PEM".into())),
        }
    }
    if certs.is_empty() {
        return Err(Error::InvalidOption("an extra root certificate file holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// Header names must be tokens and values single-line; errors name the header, never its value.
fn check_headers(headers: &[(String, Secret)]) -> Result<(), Error> {
    for (name, value) in headers {
        let token = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(Error::InvalidOption(format!("header name {name:?} is not a valid HTTP header name")));
        }
        if value.expose().bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(Error::InvalidOption(format!("the value of header {name:?} contains a line break")));
        }
    }
    Ok(())
}

/// Reads the body, refusing more than `limit` bytes (announced or actual).
fn read_body(response: ureq::http::Response<ureq::Body>, url: &str, limit: u64) -> Result<Vec<u8>, Error> {
    let too_large = || Error::SourceTooLarge(format!("{} is larger than the compressed size limit of {limit} bytes", shown(url)));
    if response.body().content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    response.into_body().into_reader().take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| network_error(url, &e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Resolves a `Location` against `base`; the result MUST be an acceptable https source URL.
fn redirect_target(base: &str, location: Option<&str>) -> Result<String, Error> {
    let location = location.ok_or_else(|| Error::InvalidSource(format!("{} redirected without a Location", shown(base))))?;
    let (scheme_host, path) = split_origin(base);
    let next = if location.contains("://") {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("https://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme_host}{location}")
    } else {
        let dir = path.split(['?', '#']).next().unwrap_or("/").rsplit_once('/').map_or("", |(d, _)| d);
        format!("{scheme_host}{dir}/{location}")
    };
    match Source::parse(&next) {
        Ok(Source::Https { url }) => Ok(url),
        Ok(_) => Err(Error::InvalidSource(format!("{} redirected to something other than an https:// URL", shown(base)))),
        Err(e) => Err(Error::InvalidSource(format!("{} redirected to a URL whim refuses: {e}", shown(base)))),
    }
}

/// `https://host[:port]` and the rest (starting with '/', or empty).
fn split_origin(url: &str) -> (&str, &str) {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find(['/', '?', '#']).map_or(url.len(), |i| after + i);
    url.split_at(end)
}

/// The host and port, lowercased: headers go to one authority only.
fn authority(url: &str) -> String {
    let (origin, _) = split_origin(url);
    origin.to_ascii_lowercase()
}

/// A URL for messages: host and path, no query string or fragment.
fn shown(url: &str) -> &str {
    whim_core::source::without_query(url)
}

fn network_error(url: &str, e: &dyn std::fmt::Display) -> Error {
    let e = e.to_string();
    let hint = if e.contains("CaUsedAsEndEntity") {
        " (the CA bundle holds the server's own certificate: pass the certificate of the CA that issued it)"
    } else if e.contains("UnknownIssuer") {
        " (the server's certificate is not trusted: pass its CA with --ca-bundle or WHIM_CA_BUNDLE)"
    } else {
        ""
    };
    Error::InvalidSource(format!("downloading {} failed: {e}{hint}", shown(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_against_the_current_url() {
        let base = "https://a.example/x/y.zip?sig=1";
        assert_eq!(redirect_target(base, Some("https://b.example/z")).unwrap(), "https://b.example/z");
        assert_eq!(redirect_target(base, Some("//c.example/z")).unwrap(), "https://c.example/z");
        assert_eq!(redirect_target(base, Some("/abs")).unwrap(), "https://a.example/abs");
        assert_eq!(redirect_target(base, Some("rel.zip")).unwrap(), "https://a.example/x/rel.zip");
        for bad in ["http://b.example/z", "https://user:pw@b.example/z", "ftp://b.example/z", "s3://b/k"] {
            let err = redirect_target(base, Some(bad)).unwrap_err().to_string();
            assert!(!err.contains("pw@") && !err.contains("sig=1"), "{err}");
        }
        assert!(redirect_target(base, None).is_err());
        assert_eq!(authority("https://A.example:1/x"), "https://a.example:1");
        assert_eq!(shown(base), "https://a.example/x/y.zip");
    }

    #[test]
    fn header_errors_name_the_header_not_the_value() {
        let bad = [("X-Token".to_owned(), Secret::new("s3cr3t\r\nInjected: 1".into()))];
        let err = check_headers(&bad).unwrap_err().to_string();
        assert!(err.contains("X-Token") && !err.contains("s3cr3t"), "{err}");
        let bad = [("Bad Name".to_owned(), Secret::new("s3cr3t".into()))];
        assert!(!check_headers(&bad).unwrap_err().to_string().contains("s3cr3t"));
    }
}
