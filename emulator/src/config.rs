//! Emulator configuration, including a knob for every behaviour the reference could not settle.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::sandbox::SandboxConfig;

/// How the emulator answers a lifecycle call on a VM in a state no recording covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnrecordedTransition {
    /// 200 `{}` and nothing changes (what the m80 emulator does).
    Accept,
    /// 400 ValidationException naming the state.
    Refuse,
}

/// Behaviour the live service was never observed doing (reference §H and §E.2 gaps).
/// Every field is a guess; the defaults are the best-supported reading, not recorded truth.
#[derive(Debug, Clone)]
pub struct Guesses {
    /// GUESS (§H 23): SuspendMicrovm on a PENDING, SUSPENDING or SUSPENDED VM. m80 accepts.
    pub suspend_when_not_running: UnrecordedTransition,
    /// GUESS (§H 23): ResumeMicrovm on a PENDING or RUNNING VM.
    pub resume_when_not_suspended: UnrecordedTransition,
    /// GUESS (§H 23): minting a token for a TERMINATED VM is refused (400, terminated message).
    pub refuse_tokens_for_terminated: bool,
    /// GUESS (§H 23): `stateReason` when `maximumDurationInSeconds` ends a VM (m80 reuses `Success.`).
    pub max_duration_state_reason: String,
    /// GUESS (§H 23): `stateReason` when the idle policy's suspended window ends a VM.
    pub idle_termination_state_reason: String,
    /// GUESS (§H 9): whether `suspendedDurationSeconds` also ends explicitly suspended VMs
    /// (two samples say no; the docs say yes).
    pub suspended_window_applies_to_explicit_suspend: bool,
    /// GUESS (§H 5, §H 20): an open shell WebSocket counts as inbound activity for the idle timer.
    pub shell_session_counts_as_activity: bool,
    /// GUESS (§E.2, body unrecorded): the plain-text body of the 403 for an expired token.
    pub expired_token_body: String,
    /// GUESS (§H 19): accept the token in the `X-aws-proxy-auth` header of a WebSocket upgrade.
    pub accept_header_auth_on_upgrade: bool,
    /// GUESS (§H 13): an app token only opens the ports in its `allowedPorts` (403
    /// `Access to port denied` otherwise); m80 saw no gating, a peer measured it.
    pub enforce_allowed_ports: bool,
    /// GUESS (§H 18): page size when `maxResults` is absent.
    pub default_page_size: usize,
    /// GUESS (§H 18): largest accepted `maxResults` (the model's range is 1..50).
    pub max_page_size: usize,
    /// GUESS (§A.2, type unrecorded): refuse a `nextToken` whose `=` padding arrived unencoded
    /// with 400 and `{"message":null}`, as the service did (the error type is a guess).
    pub refuse_unencoded_cursor_padding: bool,
    /// GUESS (§H 23): how long a terminated VM stays visible to Get/List (`None` = forever).
    pub terminated_retention: Option<Duration>,
    /// GUESS: how long an endpoint request waits for a PENDING VM to become RUNNING before 502.
    pub endpoint_pending_wait: Duration,
    /// Emulator timing (recorded 1–2.5 s on the service): how long a VM stays SUSPENDING.
    pub suspending_dwell: Duration,
    /// Emulator timing (never sampled on the service): how long a VM stays TERMINATING.
    pub terminating_dwell: Duration,
    /// GUESS (§B "Egress none"): an image whose egress list lacks INTERNET_EGRESS (an explicit
    /// `[]`) gets no network in its builds and VMs. The service was measured NOT to block
    /// outbound traffic then; the emulator does, so that "no egress" can be tested locally.
    pub enforce_egress_none: bool,
    /// Emulator timing (the service takes minutes): how long a deleted image stays DELETING.
    pub image_delete_dwell: Duration,
    /// Emulator timing: how long a deleted image version stays DELETING (zero: it is gone
    /// before DeleteMicrovmImageVersion answers, so an image delete right after never races it).
    pub version_delete_dwell: Duration,
}

impl Default for Guesses {
    fn default() -> Self {
        Self {
            suspend_when_not_running: UnrecordedTransition::Accept,
            resume_when_not_suspended: UnrecordedTransition::Accept,
            refuse_tokens_for_terminated: true,
            max_duration_state_reason: "Success.".into(),
            idle_termination_state_reason: "Success.".into(),
            suspended_window_applies_to_explicit_suspend: false,
            shell_session_counts_as_activity: true,
            expired_token_body: "Token authentication failed".into(),
            accept_header_auth_on_upgrade: true,
            enforce_allowed_ports: true,
            default_page_size: 50,
            max_page_size: 50,
            refuse_unencoded_cursor_padding: true,
            terminated_retention: None,
            endpoint_pending_wait: Duration::from_secs(30),
            suspending_dwell: Duration::from_millis(50),
            terminating_dwell: Duration::from_millis(0),
            enforce_egress_none: true,
            image_delete_dwell: Duration::from_millis(100),
            version_delete_dwell: Duration::ZERO,
        }
    }
}

/// Everything [`crate::Emulator::start`] needs.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Listen address; MUST be a loopback address (`127.0.0.1:0` picks a free port).
    pub addr: SocketAddr,
    /// The region the emulator pretends to be (ARNs, endpoint hosts).
    pub region: String,
    /// The account id of the caller (customer image ARNs).
    pub account: String,
    /// Least time a VM stays PENDING; it is also PENDING until its sandbox booted (a few ms).
    pub pending_delay: Duration,
    /// How VMs are sandboxed.
    pub sandbox: SandboxConfig,
    /// Length of one `expirationInMinutes` minute for endpoint tokens: 60 s, shrunk by tests
    /// that need a token to expire.
    pub token_minute: Duration,
    /// Answers to questions the recordings do not settle.
    pub guesses: Guesses,
    /// Where S3 objects (`s3/`) and built images (`images/<name>/<version>`) are kept.
    pub state_dir: PathBuf,
    /// Provide the `whim-default` image (the host root) at start (emulator-only convenience).
    pub seed_default_image: bool,
    /// Test fixture: extra images `(name, stateReason)` present at start whose VMs die while
    /// PENDING with that reason, as the service's VMs do when their run hook fails (§C.1).
    pub startup_failures: Vec<(String, String)>,
}

impl EmulatorConfig {
    /// Loopback on a free port, `us-east-1`, account `123456789012`, no PENDING delay beyond the
    /// sandbox boot, namespaces with this binary as the sandbox helper, state beside the
    /// sandboxes' scratch dirs, `whim-default` seeded.
    #[must_use]
    pub fn local_default() -> Self {
        let sandbox = SandboxConfig::default_for_host();
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            region: crate::LOCAL_REGION.into(),
            account: "123456789012".into(),
            pending_delay: Duration::ZERO,
            state_dir: sandbox.state_dir.clone(),
            seed_default_image: true,
            sandbox,
            token_minute: Duration::from_secs(60),
            guesses: Guesses::default(),
            startup_failures: Vec::new(),
        }
    }
}
