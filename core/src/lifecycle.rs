//! Launching a VM as a machine that emits service calls and consumes their results.
//!
//! [`Launch`] runs RunMicrovm with the shell ingress connectors and the TTL, polls
//! GetMicrovm on an adaptive schedule until RUNNING (a VM that reaches SUSPENDED,
//! TERMINATING or TERMINATED first failed to provision), mints a shell token and asks
//! the adapter to connect, retrying the connection until the deadline. Whatever fails
//! after the VM exists, the machine asks for it to be terminated before it reports.
//!
//! Time is `now: Duration` since an origin the adapter chooses (monotonic). Drive it:
//! after `new` and after every `handle_*`, drain [`Launch::poll_command`], then read
//! [`Launch::poll_timeout`] and call [`Launch::handle_timeout`] when it passes;
//! [`Launch::poll_outcome`] gives the result once.

use std::collections::VecDeque;
use std::time::Duration;

use crate::endpoint::{self, Secret};
use crate::ttl::Ttl;

/// How long a launch may take, RunMicrovm to attached shell, unless told otherwise.
pub const DEFAULT_PROVISION_TIMEOUT: Duration = Duration::from_secs(180);
/// Shell tokens are only needed for the handshake; ask for the shortest sensible life.
pub const SHELL_TOKEN_MINUTES: i32 = 5;

/// A VM state as the service names it (open: unknown names are kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmState {
    /// Booting.
    Pending,
    /// Up.
    Running,
    /// Being suspended.
    Suspending,
    /// Frozen.
    Suspended,
    /// Being stopped.
    Terminating,
    /// Gone.
    Terminated,
    /// A state this version does not know.
    Unknown(String),
}

impl VmState {
    /// Parses the wire name.
    #[must_use]
    pub fn from_wire(s: &str) -> VmState {
        match s {
            "PENDING" => VmState::Pending,
            "RUNNING" => VmState::Running,
            "SUSPENDING" => VmState::Suspending,
            "SUSPENDED" => VmState::Suspended,
            "TERMINATING" => VmState::Terminating,
            "TERMINATED" => VmState::Terminated,
            other => VmState::Unknown(other.to_owned()),
        }
    }

    /// The wire name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            VmState::Pending => "PENDING",
            VmState::Running => "RUNNING",
            VmState::Suspending => "SUSPENDING",
            VmState::Suspended => "SUSPENDED",
            VmState::Terminating => "TERMINATING",
            VmState::Terminated => "TERMINATED",
            VmState::Unknown(s) => s,
        }
    }

    /// True for states from which a VM never comes back.
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(self, VmState::Terminating | VmState::Terminated)
    }
}

/// What the service says about a VM (the parts launch needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSnapshot {
    /// `microvm-<uuid>`.
    pub id: String,
    /// Current state.
    pub state: VmState,
    /// The bare endpoint host.
    pub endpoint: String,
    /// Why it is in this state, when the service says.
    pub state_reason: Option<String>,
}

/// What to launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The image ARN.
    pub image_arn: String,
    /// A pinned image version, or the latest active one.
    pub image_version: Option<String>,
    /// The VM's time to live.
    pub ttl: Ttl,
    /// The region (for connector ARNs).
    pub region: String,
    /// Give up after this long.
    pub provision_timeout: Duration,
}

/// A service call or action for the adapter to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchCommand {
    /// Call RunMicrovm with these members.
    RunMicrovm {
        /// `imageIdentifier`.
        image_arn: String,
        /// `imageVersion`.
        image_version: Option<String>,
        /// `ingressNetworkConnectors`.
        ingress: Vec<String>,
        /// `maximumDurationInSeconds`.
        max_duration_secs: i32,
    },
    /// Call GetMicrovm.
    GetMicrovm {
        /// The VM.
        id: String,
    },
    /// Call CreateMicrovmShellAuthToken.
    MintShellToken {
        /// The VM.
        id: String,
        /// `expirationInMinutes`.
        expiration_minutes: i32,
    },
    /// Open the shell WebSocket: `url`, sending every header of `headers` on the upgrade.
    Connect {
        /// `wss://<endpoint>/` (or ws:// for a loopback emulator).
        url: String,
        /// The token map, header name to value.
        headers: Vec<(String, Secret)>,
    },
    /// Call TerminateMicrovm (cleanup after a failure).
    Terminate {
        /// The VM.
        id: String,
    },
}

/// Why a launch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// A service call failed.
    #[error("{operation} failed: {message}")]
    Api {
        /// The operation.
        operation: &'static str,
        /// The service's message.
        message: String,
    },
    /// The VM ended before it ran.
    #[error("VM {id} failed to provision: it went {state} before RUNNING{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    ProvisionFailed {
        /// The VM.
        id: String,
        /// The state it reached.
        state: String,
        /// The service's `stateReason`.
        reason: Option<String>,
    },
    /// It took too long; the VM was terminated.
    #[error("VM {id} was not ready after {}s (last state {state}); it was terminated", waited.as_secs())]
    Timeout {
        /// The VM (empty when RunMicrovm itself never answered).
        id: String,
        /// The last state seen.
        state: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The endpoint could not be used.
    #[error(transparent)]
    Endpoint(#[from] endpoint::EndpointError),
}

/// A launched, attached VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// The VM id.
    pub id: String,
    /// The bare endpoint host.
    pub endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Running,
    Polling,
    Minting,
    Connecting,
    Done,
}

/// The launch machine.
#[derive(Debug)]
pub struct Launch {
    step: Step,
    started: Duration,
    deadline: Duration,
    vm: Option<VmSnapshot>,
    polls: u32,
    timer: Option<Duration>,
    token: Vec<(String, Secret)>,
    commands: VecDeque<LaunchCommand>,
    outcome: Option<Result<Launched, LaunchError>>,
}

/// The n-th wait between polls: 5 ms doubling to at most 1 s (a local emulator boots in
/// milliseconds; the service in seconds, where the first fast polls cost a few requests).
#[must_use]
pub fn poll_delay(attempt: u32) -> Duration {
    Duration::from_millis(5u64.saturating_mul(1 << attempt.min(8)).min(1000))
}

impl Launch {
    /// Starts a launch at `now`; the first command is RunMicrovm.
    #[must_use]
    pub fn new(now: Duration, spec: LaunchSpec) -> Launch {
        let run = LaunchCommand::RunMicrovm {
            image_arn: spec.image_arn.clone(),
            image_version: spec.image_version.clone(),
            ingress: endpoint::shell_ingress_connectors(&spec.region),
            max_duration_secs: spec.ttl.as_secs_i32(),
        };
        Launch {
            deadline: now + spec.provision_timeout,
            step: Step::Running,
            started: now,
            vm: None,
            polls: 0,
            timer: None,
            token: Vec::new(),
            commands: VecDeque::from([run]),
            outcome: None,
        }
    }

    /// The VM id, once RunMicrovm answered.
    #[must_use]
    pub fn vm_id(&self) -> Option<&str> {
        self.vm.as_ref().map(|v| v.id.as_str())
    }

    /// Call after: RunMicrovm answered.
    pub fn handle_run(&mut self, now: Duration, result: Result<VmSnapshot, String>) {
        if self.step != Step::Running {
            return;
        }
        match result {
            Ok(vm) => self.observe(now, vm),
            Err(message) => self.fail(LaunchError::Api { operation: "RunMicrovm", message }),
        }
    }

    /// Call after: GetMicrovm answered.
    pub fn handle_get(&mut self, now: Duration, result: Result<VmSnapshot, String>) {
        if self.step != Step::Polling {
            return;
        }
        match result {
            Ok(vm) => self.observe(now, vm),
            Err(message) => self.fail(LaunchError::Api { operation: "GetMicrovm", message }),
        }
    }

    fn observe(&mut self, now: Duration, vm: VmSnapshot) {
        let state = vm.state.clone();
        self.vm = Some(vm);
        match state {
            VmState::Running => self.mint(),
            VmState::Suspending | VmState::Suspended | VmState::Terminating | VmState::Terminated => {
                let vm = self.vm.as_ref().cloned().unwrap_or_else(unreachable_vm);
                self.fail(LaunchError::ProvisionFailed { id: vm.id, state: state.as_str().to_owned(), reason: vm.state_reason });
            }
            VmState::Pending | VmState::Unknown(_) => self.wait(now),
        }
    }

    fn wait(&mut self, now: Duration) {
        self.step = Step::Polling;
        if now >= self.deadline {
            return self.time_out(now);
        }
        self.timer = Some((now + poll_delay(self.polls)).min(self.deadline));
        self.polls += 1;
    }

    fn mint(&mut self) {
        self.step = Step::Minting;
        let id = self.vm_id().unwrap_or_default().to_owned();
        self.commands.push_back(LaunchCommand::MintShellToken { id, expiration_minutes: SHELL_TOKEN_MINUTES });
    }

    /// Call after: CreateMicrovmShellAuthToken answered with its header map.
    pub fn handle_token(&mut self, now: Duration, result: Result<Vec<(String, Secret)>, String>) {
        if self.step != Step::Minting {
            return;
        }
        match result {
            Ok(headers) if headers.is_empty() => {
                self.fail(LaunchError::Api { operation: "CreateMicrovmShellAuthToken", message: "the answer held no token".into() })
            }
            Ok(headers) => {
                self.token = headers;
                self.polls = 0;
                self.connect(now);
            }
            Err(message) => self.fail(LaunchError::Api { operation: "CreateMicrovmShellAuthToken", message }),
        }
    }

    fn connect(&mut self, now: Duration) {
        let endpoint = self.vm.as_ref().map(|v| v.endpoint.clone()).unwrap_or_default();
        match endpoint::shell_url(&endpoint) {
            Ok(url) => {
                self.step = Step::Connecting;
                self.timer = None;
                self.commands.push_back(LaunchCommand::Connect { url, headers: self.token.clone() });
            }
            Err(e) => self.fail(e.into()),
        }
        let _ = now;
    }

    /// Call after: the WebSocket handshake succeeded (`Ok`) or failed (`Err`, retried
    /// with backoff until the deadline: a fresh VM's endpoint may lag its state).
    pub fn handle_connect(&mut self, now: Duration, result: Result<(), String>) {
        if self.step != Step::Connecting {
            return;
        }
        match result {
            Ok(()) => {
                let vm = self.vm.clone().unwrap_or_else(unreachable_vm);
                self.step = Step::Done;
                self.token.clear();
                self.outcome = Some(Ok(Launched { id: vm.id, endpoint: vm.endpoint }));
            }
            Err(message) if now + poll_delay(self.polls) >= self.deadline => {
                self.fail(LaunchError::Api { operation: "shell connect", message })
            }
            Err(_) => {
                self.timer = Some(now + poll_delay(self.polls));
                self.polls += 1;
            }
        }
    }

    /// Call after: the instant from `poll_timeout` passed.
    pub fn handle_timeout(&mut self, now: Duration) {
        match self.timer {
            Some(t) if now >= t => self.timer = None,
            _ => return,
        }
        match self.step {
            Step::Polling if now >= self.deadline => self.time_out(now),
            Step::Polling => {
                let id = self.vm_id().unwrap_or_default().to_owned();
                self.commands.push_back(LaunchCommand::GetMicrovm { id });
            }
            Step::Connecting => self.connect(now),
            _ => {}
        }
    }

    fn time_out(&mut self, now: Duration) {
        let vm = self.vm.clone().unwrap_or_else(unreachable_vm);
        let waited = now.saturating_sub(self.started);
        self.fail(LaunchError::Timeout { id: vm.id, state: vm.state.as_str().to_owned(), waited });
    }

    fn fail(&mut self, e: LaunchError) {
        if self.step == Step::Done {
            return;
        }
        self.step = Step::Done;
        self.timer = None;
        self.token.clear();
        if let Some(vm) = self.vm.as_ref().filter(|vm| !vm.state.is_final()) {
            self.commands.push_back(LaunchCommand::Terminate { id: vm.id.clone() });
        }
        self.outcome = Some(Err(e));
    }

    /// Gives up now (the caller was interrupted); terminates the VM if there is one.
    pub fn abort(&mut self, reason: &str) {
        self.fail(LaunchError::Api { operation: "launch", message: reason.to_owned() });
    }

    /// Next service call to make.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<LaunchCommand> {
        self.commands.pop_front()
    }

    /// When to call `handle_timeout` next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.timer
    }

    /// The result, once (after every pending command was drained).
    #[must_use]
    pub fn poll_outcome(&mut self) -> Option<Result<Launched, LaunchError>> {
        if self.commands.is_empty() { self.outcome.take() } else { None }
    }
}

fn unreachable_vm() -> VmSnapshot {
    VmSnapshot { id: String::new(), state: VmState::Unknown(String::new()), endpoint: String::new(), state_reason: None }
}

#[cfg(test)]
mod tests;
