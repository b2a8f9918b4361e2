//! [`Manager`]: launches and finds VMs.

use std::future::Future;

use whim_sdk::{Api, LaunchDriver, LaunchOptions, LaunchStep, ManagerOptions};

use crate::{Error, Sandbox, ws};

/// Launches, finds and terminates VMs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Manager {
    pub(crate) api: Api,
}

impl Manager {
    /// A manager from caller-supplied AWS config (credentials are never discovered here).
    pub fn new(sdk: &aws_types::SdkConfig, opts: ManagerOptions) -> Result<Manager, Error> {
        Ok(Manager { api: Api::new(aws_sdk_lambdamicrovms::Client::new(sdk), sdk, opts)? })
    }

    /// The region VMs are launched in.
    #[must_use]
    pub fn region(&self) -> &str {
        self.api.region()
    }

    /// Launches a VM from `image` (name or ARN) and attaches a shell session to it.
    pub async fn launch(&self, image: &str, opts: LaunchOptions) -> Result<Sandbox, Error> {
        self.launch_until(image, opts, std::future::pending::<()>()).await
    }

    /// Like [`Manager::launch`], but gives up when `cancel` completes, terminating any VM
    /// it already started.
    pub async fn launch_until(&self, image: &str, opts: LaunchOptions, cancel: impl Future<Output = ()>) -> Result<Sandbox, Error> {
        let mut d = LaunchDriver::new(&self.api, self.api.resolve_image(image).await?, opts);
        let (mut socket, mut cancel) = (None, std::pin::pin!(cancel));
        loop {
            match d.step().await {
                LaunchStep::Connect { url, headers } => {
                    let r = ws::connect(&url, &headers, self.api.opts.vm_endpoint_via).await;
                    d.connected(r.map(|w| socket = Some(w)).map_err(|e| e.to_string()));
                }
                LaunchStep::Wait(t) => tokio::select! {
                    () = tokio::time::sleep_until(t.into()) => d.timeout(),
                    () = &mut cancel => d.abort(),
                },
                LaunchStep::Done(r) => return r.map(|vm| Sandbox::new(self.clone(), vm, socket.take())),
            }
        }
    }

    /// Launches, runs `argv` with `stdin` streaming its output to `out`, and terminates the
    /// VM whatever happened.
    pub async fn run<A: AsRef<[u8]>>(
        &self,
        image: &str,
        opts: LaunchOptions,
        argv: &[A],
        stdin: Option<impl tokio::io::AsyncRead + Unpin>,
        out: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<whim_sdk::ExitStatus, Error> {
        let mut vm = self.launch(image, opts).await?;
        let r = vm.exec_streaming(argv, stdin, out).await;
        let t = vm.terminate().await;
        r.and_then(|s| t.map(|()| s))
    }

    /// A handle on an existing VM (no connection is made until it is used).
    pub async fn attach(&self, id: &str) -> Result<Sandbox, Error> {
        Ok(Sandbox::new(self.clone(), self.api.attach(id).await?, None))
    }

    /// GetMicrovm as core's snapshot; an unknown id is [`Error::VmNotFound`].
    pub async fn get(&self, id: &str) -> Result<whim_core::lifecycle::VmSnapshot, Error> {
        self.api.get(id).await
    }

    /// Terminates a VM; an already terminated VM is not an error.
    pub async fn terminate(&self, id: &str) -> Result<(), Error> {
        self.api.terminate(id).await
    }

    /// The caller's VMs (launched from images of the caller's own account: VMs cannot be
    /// tagged), newest first, with state, age and TTL; `all` adds terminated ones.
    pub async fn list(&self, all: bool) -> Result<Vec<whim_sdk::VmEntry>, Error> {
        self.api.list(all).await
    }

    /// The VMs [`Manager::gc`] would terminate now.
    pub async fn gc_plan(&self, filter: whim_sdk::GcFilter) -> Result<Vec<whim_sdk::VmEntry>, Error> {
        self.api.gc_plan(filter).await
    }

    /// Terminates the caller's live VMs that `filter` selects, reporting each.
    pub async fn gc(&self, filter: whim_sdk::GcFilter) -> Result<whim_sdk::GcReport, Error> {
        self.api.gc(filter).await
    }

    /// Suspends VM `id` and waits until it is SUSPENDED (memory and disk are kept).
    pub async fn suspend(&self, id: &str) -> Result<(), Error> {
        self.api.suspend(id).await
    }

    /// Resumes VM `id` and waits until it is RUNNING.
    pub async fn resume(&self, id: &str) -> Result<(), Error> {
        self.api.resume(id).await
    }

    /// Builds image `opts.name` from `source` (local path, `s3://`, `https://`, GitHub
    /// shorthand): the source is validated and packaged before anything is uploaded; an
    /// existing image of that name is reused unless `opts.force`. See
    /// [`whim_sdk::Api::build_from_source`].
    pub async fn build_from_source(&self, source: &str, opts: &whim_sdk::BuildOptions) -> Result<whim_sdk::BuiltImage, Error> {
        self.api
            .build_from_source(source, opts, |job| async {
                tokio::task::spawn_blocking(job).await.map_err(|e| Error::Local(format!("packaging the build source failed: {e}")))?
            })
            .await
    }

    /// Every image of the caller's account, by name.
    pub async fn list_images(&self) -> Result<Vec<whim_sdk::ImageEntry>, Error> {
        self.api.list_images().await
    }

    /// Deletes an image (name or ARN) and waits until it is gone.
    pub async fn remove_image(&self, name_or_arn: &str) -> Result<(), Error> {
        self.api.remove_image(name_or_arn).await
    }

    /// Makes (or finds) the artifact bucket and the build role builds need. Idempotent.
    pub async fn bootstrap(&self) -> Result<whim_sdk::Bootstrap, Error> {
        self.api.bootstrap().await
    }

    /// The caller's account id (STS GetCallerIdentity).
    pub async fn account(&self) -> Result<String, Error> {
        self.api.account().await
    }

    /// The service calls underneath, for checks this API does not wrap (`preflight-check`).
    #[must_use]
    pub fn api(&self) -> &Api {
        &self.api
    }
}
