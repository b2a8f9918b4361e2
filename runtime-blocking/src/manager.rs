//! [`Manager`]: launches and finds VMs.

use std::io::{Read, Write};
use std::time::Instant;

use whim_sdk::{Api, ExitStatus, LaunchDriver, LaunchOptions, LaunchStep, ManagerOptions};

use crate::{Error, Sandbox, block_on, ws};

/// Launches, finds and terminates VMs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Manager {
    pub(crate) api: Api,
}

impl Manager {
    /// A manager from caller-supplied AWS config (credentials are never discovered here).
    pub fn new(sdk: &aws_types::SdkConfig, opts: ManagerOptions) -> Result<Manager, Error> {
        Ok(Manager { api: Api::new(crate::sdk_client(sdk), sdk, opts)? })
    }

    /// The region VMs are launched in.
    #[must_use]
    pub fn region(&self) -> &str {
        self.api.region()
    }

    /// Launches a VM from `image` (name or ARN) and attaches a shell session to it.
    pub fn launch(&self, image: &str, opts: LaunchOptions) -> Result<Sandbox, Error> {
        let mut d = LaunchDriver::new(&self.api, block_on(self.api.resolve_image(image))?, opts);
        let mut socket = None;
        loop {
            match block_on(d.step()) {
                LaunchStep::Connect { url, headers } => {
                    let r = ws::connect(&url, &headers, self.api.opts.vm_endpoint_via);
                    d.connected(r.map(|w| socket = Some(w)).map_err(|e| e.to_string()));
                }
                LaunchStep::Wait(t) => {
                    std::thread::sleep(t.saturating_duration_since(Instant::now()));
                    d.timeout();
                }
                LaunchStep::Done(r) => return r.map(|vm| Sandbox::new(self.clone(), vm, socket.take())),
            }
        }
    }

    /// Launches, runs `argv` with `stdin` streaming its output to `out`, and terminates the
    /// VM whatever happened.
    pub fn run<A: AsRef<[u8]>>(
        &self,
        image: &str,
        opts: LaunchOptions,
        argv: &[A],
        stdin: Option<impl Read>,
        out: &mut impl Write,
    ) -> Result<ExitStatus, Error> {
        let mut vm = self.launch(image, opts)?;
        let r = vm.exec_streaming(argv, stdin, out);
        let t = vm.terminate();
        r.and_then(|s| t.map(|()| s))
    }

    /// A handle on an existing VM (no connection is made until it is used).
    pub fn attach(&self, id: &str) -> Result<Sandbox, Error> {
        Ok(Sandbox::new(self.clone(), block_on(self.api.attach(id))?, None))
    }

    /// GetMicrovm as core's snapshot; an unknown id is [`Error::VmNotFound`].
    pub fn get(&self, id: &str) -> Result<whim_core::lifecycle::VmSnapshot, Error> {
        block_on(self.api.get(id))
    }

    /// Terminates a VM; an already terminated VM is not an error.
    pub fn terminate(&self, id: &str) -> Result<(), Error> {
        block_on(self.api.terminate(id))
    }

    /// The caller's VMs (launched from images of the caller's own account: VMs cannot be
    /// tagged), newest first, with state, age and TTL; `all` adds terminated ones.
    pub fn list(&self, all: bool) -> Result<Vec<whim_sdk::VmEntry>, Error> {
        block_on(self.api.list(all))
    }

    /// The VMs [`Manager::gc`] would terminate now.
    pub fn gc_plan(&self, filter: whim_sdk::GcFilter) -> Result<Vec<whim_sdk::VmEntry>, Error> {
        block_on(self.api.gc_plan(filter))
    }

    /// Terminates the caller's live VMs that `filter` selects, reporting each.
    pub fn gc(&self, filter: whim_sdk::GcFilter) -> Result<whim_sdk::GcReport, Error> {
        block_on(self.api.gc(filter))
    }

    /// Suspends VM `id` and waits until it is SUSPENDED (memory and disk are kept).
    pub fn suspend(&self, id: &str) -> Result<(), Error> {
        block_on(self.api.suspend(id))
    }

    /// Resumes VM `id` and waits until it is RUNNING.
    pub fn resume(&self, id: &str) -> Result<(), Error> {
        block_on(self.api.resume(id))
    }

    /// Builds image `opts.name` from `source` (local path, `s3://`, `https://`, GitHub
    /// shorthand): the source is validated and packaged before anything is uploaded; an
    /// existing image of that name is reused unless `opts.force`. See
    /// [`whim_sdk::Api::build_from_source`].
    pub fn build_from_source(&self, source: &str, opts: &whim_sdk::BuildOptions) -> Result<whim_sdk::BuiltImage, Error> {
        block_on(self.api.build_from_source(source, opts, |job| std::future::ready(job())))
    }

    /// Every image of the caller's account, by name.
    pub fn list_images(&self) -> Result<Vec<whim_sdk::ImageEntry>, Error> {
        block_on(self.api.list_images())
    }

    /// Deletes an image (name or ARN) and waits until it is gone.
    pub fn remove_image(&self, name_or_arn: &str) -> Result<(), Error> {
        block_on(self.api.remove_image(name_or_arn))
    }

    /// Makes (or finds) the artifact bucket and the build role builds need. Idempotent.
    pub fn bootstrap(&self) -> Result<whim_sdk::Bootstrap, Error> {
        block_on(self.api.bootstrap())
    }

    /// The caller's account id (STS GetCallerIdentity).
    pub fn account(&self) -> Result<String, Error> {
        block_on(self.api.account())
    }

    /// The service calls underneath, for checks this API does not wrap (`preflight-check`).
    #[must_use]
    pub fn api(&self) -> &Api {
        &self.api
    }
}
