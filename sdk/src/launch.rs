//! [`LaunchDriver`]: core's launch machine with its service calls made; the runtime
//! crate only connects the WebSocket and keeps the timer.

use std::time::{Duration, Instant};

use whim_core::endpoint::Secret;
use whim_core::lifecycle::{DEFAULT_PROVISION_TIMEOUT, Launch, LaunchCommand, LaunchError, LaunchSpec, VmSnapshot, VmState};
use whim_core::ttl::Ttl;

use crate::{Api, Error};

/// What a launch asks for.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// Time to live (default 25 min, at most 8 h).
    pub ttl: Ttl,
    /// A pinned image version.
    pub image_version: Option<String>,
    /// Give up after this long (default 3 min).
    pub provision_timeout: Option<Duration>,
}

/// Where a launch spent its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchTimings {
    /// RunMicrovm sent to RUNNING observed.
    pub to_running: Duration,
    /// RUNNING observed to the shell WebSocket open.
    pub running_to_attached: Duration,
}

/// What a sandbox handle knows about its VM, whatever the runtime (each runtime's `Sandbox`
/// dereferences to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmInfo {
    id: String,
    endpoint: String,
    timings: Option<LaunchTimings>,
}

impl VmInfo {
    /// A VM known by id and endpoint; `timings` when this handle launched it.
    #[must_use]
    pub fn new(id: String, endpoint: String, timings: Option<LaunchTimings>) -> VmInfo {
        VmInfo { id, endpoint, timings }
    }

    /// The VM id (`microvm-…`).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The VM's endpoint host.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Where the launch spent its time (for VMs this handle launched).
    #[must_use]
    pub fn launch_timings(&self) -> Option<LaunchTimings> {
        self.timings
    }
}

/// What the runtime crate must do next.
#[derive(Debug)]
pub enum LaunchStep {
    /// Open the shell WebSocket, then call [`LaunchDriver::connected`].
    Connect {
        /// The URL.
        url: String,
        /// Headers for the upgrade request (the token).
        headers: Vec<(String, Secret)>,
    },
    /// Sleep until this instant (then [`LaunchDriver::timeout`]), or until cancelled
    /// (then [`LaunchDriver::abort`]).
    Wait(Instant),
    /// The launch ended.
    Done(Result<VmInfo, Error>),
}

/// Drives one launch. Loop: `step().await`, act on it, repeat until `Done`.
#[derive(Debug)]
pub struct LaunchDriver {
    api: Api,
    machine: Launch,
    origin: Instant,
    running_at: Option<Instant>,
    run_error: Option<Error>,
}

impl LaunchDriver {
    /// Starts launching `image_arn` (resolve names with [`Api::resolve_image`] first).
    #[must_use]
    pub fn new(api: &Api, image_arn: String, opts: LaunchOptions) -> LaunchDriver {
        let spec = LaunchSpec {
            image_arn,
            image_version: opts.image_version,
            ttl: opts.ttl,
            region: api.region().to_owned(),
            provision_timeout: opts.provision_timeout.unwrap_or(DEFAULT_PROVISION_TIMEOUT),
        };
        let origin = Instant::now();
        LaunchDriver { api: api.clone(), machine: Launch::new(Duration::ZERO, spec), origin, running_at: None, run_error: None }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Makes every pending service call and says what the runtime must do next.
    pub async fn step(&mut self) -> LaunchStep {
        while let Some(cmd) = self.machine.poll_command() {
            if let Some(connect) = self.perform(cmd).await {
                return connect;
            }
        }
        if let Some(outcome) = self.machine.poll_outcome() {
            return LaunchStep::Done(self.finish(outcome));
        }
        match self.machine.poll_timeout() {
            Some(t) => LaunchStep::Wait(self.origin + t),
            None => LaunchStep::Done(Err(Error::Timeout("launch stalled".into()))),
        }
    }

    async fn perform(&mut self, cmd: LaunchCommand) -> Option<LaunchStep> {
        match cmd {
            LaunchCommand::RunMicrovm { image_arn, image_version, ingress, max_duration_secs } => {
                let r = self.api.run(&image_arn, image_version, ingress, max_duration_secs).await;
                let r = self.note(r);
                self.machine.handle_run(self.now(), r);
            }
            LaunchCommand::GetMicrovm { id } => {
                let r = self.api.get(&id).await;
                let r = self.note(r);
                self.machine.handle_get(self.now(), r);
            }
            LaunchCommand::MintShellToken { id, .. } => {
                let r = self.api.mint(&id).await.map_err(|e| e.to_string());
                self.machine.handle_token(self.now(), r);
            }
            LaunchCommand::Connect { url, headers } => return Some(LaunchStep::Connect { url, headers }),
            LaunchCommand::Terminate { id } => {
                if let Err(e) = self.api.terminate(&id).await {
                    tracing::warn!(vm = %id, "could not terminate after a failed launch: {e}");
                }
            }
        }
        None
    }

    /// Remembers when RUNNING was first seen and the typed RunMicrovm error.
    fn note(&mut self, r: Result<VmSnapshot, Error>) -> Result<VmSnapshot, String> {
        match r {
            Ok(vm) => {
                if vm.state == VmState::Running && self.running_at.is_none() {
                    self.running_at = Some(Instant::now());
                }
                Ok(vm)
            }
            Err(e) => {
                let msg = e.to_string();
                self.run_error.get_or_insert(e);
                Err(msg)
            }
        }
    }

    /// Call after: the WebSocket handshake succeeded or failed (`Err` with why).
    pub fn connected(&mut self, result: Result<(), String>) {
        self.machine.handle_connect(self.now(), result);
    }

    /// Call after: the instant of [`LaunchStep::Wait`] passed.
    pub fn timeout(&mut self) {
        self.machine.handle_timeout(self.now());
    }

    /// Call after: the caller cancelled; the next steps terminate any VM started.
    pub fn abort(&mut self) {
        self.machine.abort("interrupted");
    }

    fn finish(&mut self, outcome: Result<whim_core::lifecycle::Launched, LaunchError>) -> Result<VmInfo, Error> {
        match outcome {
            Ok(l) => {
                let now = Instant::now();
                let running = self.running_at.unwrap_or(now);
                let timings = LaunchTimings { to_running: running - self.origin, running_to_attached: now - running };
                tracing::debug!(vm = %l.id, ?timings, "attached");
                Ok(VmInfo::new(l.id, l.endpoint, Some(timings)))
            }
            Err(LaunchError::Api { operation: "launch", .. }) => Err(Error::Interrupted),
            Err(e) => Err(self.run_error.take().unwrap_or_else(|| e.into())),
        }
    }
}
