//! [`Manager`]: launches and finds VMs with the AWS SDK and drives core's launch machine.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_lambdamicrovms::Client;
use tokio::time::Instant;
use whim_core::endpoint::Secret;
use whim_core::lifecycle::{DEFAULT_PROVISION_TIMEOUT, Launch, LaunchCommand, LaunchSpec, VmSnapshot, VmState};
use whim_core::ttl::Ttl;

use crate::error::api;
use crate::ws::{self, Ws};
use crate::{Error, Sandbox};

/// How a [`Manager`] reaches things, beyond the AWS config.
#[derive(Debug, Clone, Default)]
pub struct ManagerOptions {
    /// Reach every VM endpoint through this loopback address (a local emulator routes
    /// by the Host header). `None` for the real service: resolve the endpoint, use TLS.
    pub vm_endpoint_via: Option<SocketAddr>,
}

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

/// Launches, finds and terminates VMs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Manager {
    pub(crate) client: Client,
    region: String,
    pub(crate) opts: ManagerOptions,
}

impl Manager {
    /// A manager from caller-supplied AWS config (credentials are never discovered here).
    pub fn new(sdk: &aws_types::SdkConfig, opts: ManagerOptions) -> Result<Manager, Error> {
        let region = sdk.region().map(ToString::to_string).ok_or_else(|| Error::InvalidOption("no AWS region configured: set --region or AWS_REGION".into()))?;
        Ok(Manager { client: Client::new(sdk), region, opts })
    }

    /// The region VMs are launched in.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Resolves an image name to its ARN (an ARN is returned as given). Names are matched
    /// exactly over every page (the service's `nameFilter` is a substring match applied
    /// after paging).
    pub async fn resolve_image(&self, name_or_arn: &str) -> Result<String, Error> {
        if name_or_arn.starts_with("arn:") {
            return Ok(name_or_arn.to_owned());
        }
        let mut pages = self.client.list_microvm_images().name_filter(name_or_arn).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api("ListMicrovmImages", e))?;
            if let Some(img) = page.items().iter().find(|i| i.name() == name_or_arn) {
                return Ok(img.image_arn().to_owned());
            }
        }
        Err(Error::ImageNotFound(name_or_arn.to_owned()))
    }

    /// Launches a VM from `image` (name or ARN) and attaches a shell session to it.
    pub async fn launch(&self, image: &str, opts: LaunchOptions) -> Result<Sandbox, Error> {
        self.launch_until(image, opts, std::future::pending::<()>()).await
    }

    /// Like [`Manager::launch`], but gives up when `cancel` completes, terminating any VM
    /// it already started.
    pub async fn launch_until(&self, image: &str, opts: LaunchOptions, cancel: impl Future<Output = ()>) -> Result<Sandbox, Error> {
        let image_arn = self.resolve_image(image).await?;
        let spec = LaunchSpec {
            image_arn,
            image_version: opts.image_version,
            ttl: opts.ttl,
            region: self.region.clone(),
            provision_timeout: opts.provision_timeout.unwrap_or(DEFAULT_PROVISION_TIMEOUT),
        };
        tokio::pin!(cancel);
        let origin = Instant::now();
        let mut m = Launch::new(Duration::ZERO, spec);
        let mut driver = LaunchDriver { mgr: self, ws: None, run_error: None, started: origin, running_at: None };
        loop {
            while let Some(cmd) = m.poll_command() {
                driver.perform(&mut m, origin, cmd).await;
            }
            if let Some(outcome) = m.poll_outcome() {
                return driver.finish(outcome, image);
            }
            let Some(wake) = m.poll_timeout() else { return Err(Error::Timeout("launch stalled".into())) };
            tokio::select! {
                () = tokio::time::sleep_until(origin + wake) => m.handle_timeout(origin.elapsed()),
                () = &mut cancel => m.abort("interrupted"),
            }
        }
    }

    /// A handle on an existing VM (no connection is made until it is used).
    pub async fn attach(&self, id: &str) -> Result<Sandbox, Error> {
        let vm = self.get(id).await?;
        match vm.state {
            VmState::Terminated | VmState::Terminating => Err(Error::Terminated(id.to_owned())),
            _ => Ok(Sandbox::new(self.clone(), vm.id, vm.endpoint, None)),
        }
    }

    /// GetMicrovm as core's snapshot; an unknown id is [`Error::VmNotFound`].
    pub async fn get(&self, id: &str) -> Result<VmSnapshot, Error> {
        let out = self.client.get_microvm().microvm_identifier(id).send().await.map_err(|e| not_found(id, api("GetMicrovm", e)))?;
        Ok(VmSnapshot {
            id: out.microvm_id().to_owned(),
            state: VmState::from_wire(out.state().as_str()),
            endpoint: out.endpoint().to_owned(),
            state_reason: out.state_reason().map(str::to_owned),
        })
    }

    /// Terminates a VM; an already terminated VM is not an error.
    pub async fn terminate(&self, id: &str) -> Result<(), Error> {
        match self.client.terminate_microvm().microvm_identifier(id).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(not_found(id, api("TerminateMicrovm", e))),
        }
    }

    /// Mints a shell token and opens a new shell WebSocket to a VM.
    pub(crate) async fn open_shell(&self, id: &str, endpoint: &str) -> Result<Ws, Error> {
        let headers = self.mint(id).await.map_err(|e| not_found(id, e))?;
        let url = whim_core::endpoint::shell_url(endpoint)?;
        ws::connect(&url, &headers, self.opts.vm_endpoint_via).await
    }

    async fn mint(&self, id: &str) -> Result<Vec<(String, Secret)>, Error> {
        let out = self
            .client
            .create_microvm_shell_auth_token()
            .microvm_identifier(id)
            .expiration_in_minutes(whim_core::lifecycle::SHELL_TOKEN_MINUTES)
            .send()
            .await
            .map_err(|e| api("CreateMicrovmShellAuthToken", e))?;
        Ok(out.auth_token().iter().map(|(k, v)| (k.clone(), Secret::new(v.clone()))).collect())
    }
}

fn not_found(id: &str, e: Error) -> Error {
    match &e {
        Error::Api { code: Some(c), .. } if c == "ResourceNotFoundException" => Error::VmNotFound(id.to_owned()),
        _ => e,
    }
}

/// Performs the launch machine's commands.
struct LaunchDriver<'a> {
    mgr: &'a Manager,
    ws: Option<Ws>,
    run_error: Option<Error>,
    started: Instant,
    running_at: Option<Instant>,
}

/// Where a launch spent its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchTimings {
    /// RunMicrovm sent to RUNNING observed.
    pub to_running: Duration,
    /// RUNNING observed to the shell WebSocket open.
    pub running_to_attached: Duration,
}

impl LaunchDriver<'_> {
    async fn perform(&mut self, m: &mut Launch, origin: Instant, cmd: LaunchCommand) {
        match cmd {
            LaunchCommand::RunMicrovm { image_arn, image_version, ingress, max_duration_secs } => {
                let r = self.run(image_arn, image_version, ingress, max_duration_secs).await;
                self.note_running(r.as_ref().ok());
                m.handle_run(origin.elapsed(), r);
            }
            LaunchCommand::GetMicrovm { id } => {
                let r = self.mgr.get(&id).await.map_err(|e| e.to_string());
                self.note_running(r.as_ref().ok());
                m.handle_get(origin.elapsed(), r);
            }
            LaunchCommand::MintShellToken { id, .. } => {
                let r = self.mgr.mint(&id).await.map_err(|e| e.to_string());
                m.handle_token(origin.elapsed(), r);
            }
            LaunchCommand::Connect { url, headers } => {
                let r = ws::connect(&url, &headers, self.mgr.opts.vm_endpoint_via).await;
                m.handle_connect(origin.elapsed(), r.map(|w| self.ws = Some(w)).map_err(|e| e.to_string()));
            }
            LaunchCommand::Terminate { id } => {
                if let Err(e) = self.mgr.terminate(&id).await {
                    tracing::warn!(vm = %id, "could not terminate after a failed launch: {e}");
                }
            }
        }
    }

    fn note_running(&mut self, vm: Option<&VmSnapshot>) {
        if vm.is_some_and(|v| v.state == VmState::Running) && self.running_at.is_none() {
            self.running_at = Some(Instant::now());
        }
    }

    async fn run(&mut self, image: String, version: Option<String>, ingress: Vec<String>, secs: i32) -> Result<VmSnapshot, String> {
        let r = self
            .mgr
            .client
            .run_microvm()
            .image_identifier(&image)
            .set_image_version(version)
            .set_ingress_network_connectors(Some(ingress))
            .maximum_duration_in_seconds(secs)
            .send()
            .await;
        match r {
            Ok(out) => {
                tracing::debug!(vm = out.microvm_id(), "RunMicrovm accepted");
                Ok(VmSnapshot {
                    id: out.microvm_id().to_owned(),
                    state: VmState::from_wire(out.state().as_str()),
                    endpoint: out.endpoint().to_owned(),
                    state_reason: out.state_reason().map(str::to_owned),
                })
            }
            Err(e) => {
                let err = match api("RunMicrovm", e) {
                    Error::Api { code: Some(c), .. } if c == "ResourceNotFoundException" => Error::ImageNotFound(image),
                    other => other,
                };
                let msg = err.to_string();
                self.run_error = Some(err);
                Err(msg)
            }
        }
    }

    fn finish(&mut self, outcome: Result<whim_core::lifecycle::Launched, whim_core::lifecycle::LaunchError>, image: &str) -> Result<Sandbox, Error> {
        match outcome {
            Ok(l) => {
                let now = Instant::now();
                let running = self.running_at.unwrap_or(now);
                let timings = LaunchTimings { to_running: running - self.started, running_to_attached: now - running };
                tracing::debug!(vm = %l.id, ?timings, "attached");
                Ok(Sandbox::new(self.mgr.clone(), l.id, l.endpoint, self.ws.take()).with_timings(timings))
            }
            Err(whim_core::lifecycle::LaunchError::Api { operation: "launch", .. }) => Err(Error::Interrupted),
            Err(e) => {
                tracing::debug!(image, "launch failed: {e}");
                Err(self.run_error.take().unwrap_or_else(|| e.into()))
            }
        }
    }
}
