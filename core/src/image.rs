//! Custom images (reference §D): name rules, egress choices, what a build's states mean, the
//! poll schedule while one runs, and the Dockerfiles of the images whim makes itself.

use std::time::Duration;

/// Name of the image `whim init` builds and VMs use by default.
pub const DEFAULT_IMAGE: &str = "whim-default";
/// Name of the image `--privileged` builds on first use.
pub const PRIVILEGED_IMAGE: &str = "whim-privileged";
/// The managed base every whim image is built on (reference §A.4.9).
pub const MANAGED_BASE: &str = "al2023-1";

/// The platform fact every egress choice is explained with (reference §B, measured three times).
pub const EGRESS_FACT: &str = "On AWS, leaving INTERNET_EGRESS out was measured NOT to block outbound traffic: \
    `--egress none` removes the connector but VMs still reach the internet. For real isolation pass \
    `--egress-connector ARN` (a VPC network connector in a VPC without an internet gateway or NAT). \
    The local emulator does enforce `--egress none` (loopback only).";

/// The default image: Amazon Linux 2023 with what exec and transfers need (bash, tar, gzip,
/// coreutils' `dd`, `timeout`, `sha256sum`). The install runs only when a tool is missing.
pub const DEFAULT_DOCKERFILE: &str = "\
FROM public.ecr.aws/amazonlinux/amazonlinux:2023-minimal
RUN missing=; for t in bash tar gzip dd timeout sha256sum mkfifo; do command -v \"$t\" >/dev/null || missing=1; done; \\
    if [ -n \"$missing\" ]; then dnf install -y bash tar gzip coreutils-single findutils && dnf clean all; fi
";

/// The privileged image: the default image's tools plus util-linux, iproute and e2fsprogs.
pub const PRIVILEGED_DOCKERFILE: &str = "\
FROM public.ecr.aws/amazonlinux/amazonlinux:2023-minimal
RUN missing=; for t in bash tar gzip dd timeout sha256sum mkfifo mount unshare ip mkfs.ext4; do command -v \"$t\" >/dev/null || missing=1; done; \\
    if [ -n \"$missing\" ]; then dnf install -y bash tar gzip coreutils-single findutils util-linux iproute e2fsprogs && dnf clean all; fi
";

/// A refused image option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The name breaks the service's rule.
    #[error("image name {0:?} is invalid: use 1 to 64 letters, digits, '-' or '_'")]
    BadName(String),
    /// The egress option is neither `public` nor `none`.
    #[error("--egress {0:?} is invalid: use `public` or `none` (or --egress-connector ARN)")]
    BadEgress(String),
    /// The connector ARN is not a network connector ARN.
    #[error("{0:?} is not a network connector ARN (arn:aws:lambda:REGION:ACCOUNT:network-connector:ID)")]
    BadConnector(String),
}

/// Checks an image name against the service's rule (1..64 of `[a-zA-Z0-9-_]`).
pub fn validate_name(name: &str) -> Result<(), ImageError> {
    let ok = (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(ImageError::BadName(name.to_owned())) }
}

/// Where an image's VMs may connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Egress {
    /// The service default (INTERNET_EGRESS).
    Public,
    /// No egress connector at all (see [`EGRESS_FACT`]).
    None,
    /// A customer VPC network connector.
    Connector(String),
}

impl Egress {
    /// From `--egress` and `--egress-connector`.
    pub fn from_options(egress: Option<&str>, connector: Option<&str>) -> Result<Egress, ImageError> {
        match (egress, connector) {
            (_, Some(arn)) => {
                let parts: Vec<&str> = arn.split(':').collect();
                let ok = parts.len() >= 7
                    && parts[0] == "arn"
                    && parts[2] == "lambda"
                    && parts[5] == "network-connector"
                    && !parts[6].is_empty();
                if ok { Ok(Egress::Connector(arn.to_owned())) } else { Err(ImageError::BadConnector(arn.to_owned())) }
            }
            (None | Some("public"), None) => Ok(Egress::Public),
            (Some("none"), None) => Ok(Egress::None),
            (Some(other), None) => Err(ImageError::BadEgress(other.to_owned())),
        }
    }

    /// The `egressNetworkConnectors` member: absent for the default, explicitly empty for none.
    #[must_use]
    pub fn connectors(&self) -> Option<Vec<String>> {
        match self {
            Egress::Public => None,
            Egress::None => Some(Vec::new()),
            Egress::Connector(arn) => Some(vec![arn.clone()]),
        }
    }

    /// What an image version's `egressNetworkConnectors` mean: empty is none, a customer
    /// connector is that connector, otherwise (the managed `INTERNET_EGRESS`) public.
    #[must_use]
    pub fn from_connectors(connectors: &[String]) -> Egress {
        if connectors.is_empty() {
            return Egress::None;
        }
        match connectors.iter().find(|c| c.rsplit(':').next() != Some("INTERNET_EGRESS")) {
            Some(arn) => Egress::Connector(arn.clone()),
            None => Egress::Public,
        }
    }

    /// `public`, `none` or the connector ARN (what `--json` and the config record).
    #[must_use]
    pub fn label(&self) -> &str {
        match self {
            Egress::Public => "public",
            Egress::None => "none",
            Egress::Connector(arn) => arn,
        }
    }
}

/// What a GetMicrovmImage `state` means to a client waiting on a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageProgress {
    /// CREATING / UPDATING (or an unknown state): keep polling.
    Building,
    /// CREATED / UPDATED: launchable.
    Ready,
    /// CREATE_FAILED / UPDATE_FAILED: read the builds' reasons.
    Failed,
    /// DELETING / DELETED / DELETE_FAILED.
    Deleting,
}

impl ImageProgress {
    /// Classifies a wire state (open: unknown states keep the client waiting).
    #[must_use]
    pub fn from_wire(state: &str) -> ImageProgress {
        match state {
            "CREATED" | "UPDATED" | "ACTIVE" | "AVAILABLE" => ImageProgress::Ready,
            "CREATE_FAILED" | "UPDATE_FAILED" => ImageProgress::Failed,
            "DELETING" | "DELETED" | "DELETE_FAILED" => ImageProgress::Deleting,
            _ => ImageProgress::Building,
        }
    }
}

/// The wait before poll number `n` (0-based) of a build: quick at first (the emulator builds in
/// seconds), then every 5 s (a real build takes about two minutes).
#[must_use]
pub fn poll_interval(n: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << n.min(5))).min(Duration::from_secs(5))
}

/// How long a build may take before the client gives up (the service's window is ~3 min; a
/// stuck build with a replayed token never ends).
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// One message from the builds' `stateReason`s: distinct reasons, in order, joined.
#[must_use]
pub fn failure_reason<'a>(reasons: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for r in reasons.into_iter().flatten().map(str::trim).filter(|r| !r.is_empty()) {
        if !seen.contains(&r) {
            seen.push(r);
        }
    }
    if seen.is_empty() {
        "the service gave no reason (see the build logs in CloudWatch /aws/lambda-microvms/<name>)".into()
    } else {
        seen.join("; ")
    }
}

/// The S3 key a context zip is uploaded under: one per image and content, never overwritten
/// with other content (the service does not rebuild when a key's object changes). The first
/// 128 bits of the hash name the content (the key stays short enough for any image name).
#[must_use]
pub fn artifact_key(name: &str, sha256_hex: &str) -> String {
    format!("whim/{name}/{}.zip", sha256_hex.get(..32).unwrap_or(sha256_hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_service_rule() {
        for ok in ["a", "whim-default", "A_b-9", &"x".repeat(64)] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "bad name!", "a/b", "é", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn egress_options() {
        assert_eq!(Egress::from_options(None, None), Ok(Egress::Public));
        assert_eq!(Egress::from_options(Some("none"), None).unwrap().connectors(), Some(vec![]));
        assert_eq!(Egress::from_options(Some("public"), None).unwrap().connectors(), None);
        assert!(Egress::from_options(Some("private"), None).is_err());
        let arn = "arn:aws:lambda:us-east-1:123456789012:network-connector:nc-1";
        assert_eq!(Egress::from_options(None, Some(arn)).unwrap().connectors(), Some(vec![arn.to_owned()]));
        assert!(Egress::from_options(None, Some("nc-1")).is_err());
    }

    #[test]
    fn egress_read_back_from_a_version() {
        let internet = "arn:aws:lambda:us-east-1:aws:network-connector:INTERNET_EGRESS".to_owned();
        let vpc = "arn:aws:lambda:us-east-1:123456789012:network-connector:nc-1".to_owned();
        assert_eq!(Egress::from_connectors(&[]), Egress::None);
        assert_eq!(Egress::from_connectors(std::slice::from_ref(&internet)), Egress::Public);
        assert_eq!(Egress::from_connectors(&[internet, vpc.clone()]), Egress::Connector(vpc));
    }

    #[test]
    fn states_and_reasons() {
        assert_eq!(ImageProgress::from_wire("CREATING"), ImageProgress::Building);
        assert_eq!(ImageProgress::from_wire("SOMETHING_NEW"), ImageProgress::Building);
        assert_eq!(ImageProgress::from_wire("UPDATED"), ImageProgress::Ready);
        assert_eq!(ImageProgress::from_wire("CREATE_FAILED"), ImageProgress::Failed);
        assert_eq!(failure_reason([Some("x failed."), Some("x failed."), None, Some("y")]), "x failed.; y");
        assert!(failure_reason([None]).contains("no reason"));
        assert_eq!(poll_interval(0), Duration::from_millis(200));
        assert_eq!(poll_interval(40), Duration::from_secs(5));
    }
}
