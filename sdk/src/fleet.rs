//! The caller's VMs: listing (`ps`), reaping (`gc`), suspend and resume, as
//! executor-agnostic futures around core's [`whim_core::fleet`] and [`whim_core::power`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_smithy_async::rt::sleep::{AsyncSleep, SharedAsyncSleep};
use whim_core::fleet::{GcFilter, Listing, VmEntry, gc_plan};
use whim_core::lifecycle::VmState;
use whim_core::power::{DEFAULT_TRANSITION_TIMEOUT, PowerAction, PowerCommand, Transition};

use crate::error::api;
use crate::{Api, Error};

/// What [`Api::gc`] did.
#[derive(Debug, Default)]
pub struct GcReport {
    /// The VMs it terminated.
    pub terminated: Vec<VmEntry>,
    /// The VMs it could not terminate, with why.
    pub failed: Vec<(VmEntry, Error)>,
}

/// Now, as core's fleet functions take it: time since the Unix epoch.
#[must_use]
pub fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// The first error, kept typed for the caller; core gets its message.
fn keep<T>(first: &mut Option<Error>, r: Result<T, Error>) -> Result<T, String> {
    r.map_err(|e| first.get_or_insert(e).to_string())
}

fn since_epoch(t: &aws_sdk_lambdamicrovms::primitives::DateTime) -> Duration {
    u64::try_from(t.secs()).map_or(Duration::ZERO, |s| Duration::new(s, t.subsec_nanos()))
}

impl Api {
    /// The caller's account id (STS GetCallerIdentity).
    pub async fn account(&self) -> Result<String, Error> {
        let out = self.sts.get_caller_identity().send().await.map_err(|e| api("GetCallerIdentity", e))?;
        out.account().map(str::to_owned).ok_or_else(|| Error::Api {
            operation: "GetCallerIdentity",
            code: None,
            message: "the answer named no account".into(),
        })
    }

    /// The caller's VMs (launched from images of the caller's own account), newest first;
    /// with `all`, terminated ones too. Reads every ListMicrovms page, drops duplicates,
    /// and asks GetMicrovm for each live VM's TTL.
    pub async fn list(&self, all: bool) -> Result<Vec<VmEntry>, Error> {
        let account = self.account().await?;
        self.owned(&account, all).await
    }

    async fn owned(&self, account: &str, all: bool) -> Result<Vec<VmEntry>, Error> {
        let mut vms = self.listing().await?.owned(account, all);
        let live: Vec<usize> = (0..vms.len()).filter(|&i| !vms[i].state.is_final()).collect();
        let details = futures_util::future::join_all(live.iter().map(|&i| self.client.get_microvm().microvm_identifier(&vms[i].id).send()));
        for (i, r) in live.into_iter().zip(details.await) {
            match r {
                Ok(o) => {
                    vms[i].state = VmState::from_wire(o.state().as_str());
                    vms[i].max_duration = u64::try_from(o.maximum_duration_in_seconds()).ok().map(Duration::from_secs);
                }
                Err(e) => tracing::debug!(vm = %vms[i].id, "GetMicrovm while listing: {}", api("GetMicrovm", e)),
            }
        }
        vms.retain(|v| all || !v.state.is_final());
        Ok(vms)
    }

    async fn listing(&self) -> Result<Listing, Error> {
        let mut listing = Listing::default();
        let mut pages = self.client.list_microvms().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api("ListMicrovms", e))?;
            listing.handle_page(page.items().iter().map(|i| VmEntry {
                id: i.microvm_id().to_owned(),
                state: VmState::from_wire(i.state().as_str()),
                image_arn: i.image_arn().to_owned(),
                image_version: i.image_version().to_owned(),
                started_at: since_epoch(i.started_at()),
                max_duration: None,
            }));
        }
        Ok(listing)
    }

    /// The VMs [`Api::gc`] would terminate now (core's [`gc_plan`] over [`Api::list`]).
    pub async fn gc_plan(&self, filter: GcFilter) -> Result<Vec<VmEntry>, Error> {
        let account = self.account().await?;
        let vms = self.owned(&account, false).await?;
        Ok(gc_plan(&vms, &account, filter, unix_now()))
    }

    /// Terminates every VM of `vms`, reporting each.
    pub async fn terminate_all(&self, vms: Vec<VmEntry>) -> GcReport {
        let mut report = GcReport::default();
        for vm in vms {
            match self.terminate(&vm.id).await {
                Ok(()) => report.terminated.push(vm),
                Err(e) => report.failed.push((vm, e)),
            }
        }
        report
    }

    /// Terminates the caller's live VMs that `filter` selects.
    pub async fn gc(&self, filter: GcFilter) -> Result<GcReport, Error> {
        let plan = self.gc_plan(filter).await?;
        Ok(self.terminate_all(plan).await)
    }

    /// SuspendMicrovm, then waits until the VM is SUSPENDED.
    pub async fn suspend(&self, id: &str) -> Result<(), Error> {
        self.power(id, PowerAction::Suspend).await
    }

    /// ResumeMicrovm, then waits until the VM is RUNNING.
    pub async fn resume(&self, id: &str) -> Result<(), Error> {
        self.power(id, PowerAction::Resume).await
    }

    async fn power(&self, id: &str, action: PowerAction) -> Result<(), Error> {
        let sleep = self.sleeper()?;
        let origin = Instant::now();
        let mut t = Transition::new(Duration::ZERO, action, id, DEFAULT_TRANSITION_TIMEOUT);
        let mut first_error = None;
        loop {
            while let Some(cmd) = t.poll_command() {
                match cmd {
                    PowerCommand::Call { action, id } => {
                        let r = self.call(action, &id).await;
                        t.handle_call(origin.elapsed(), keep(&mut first_error, r));
                    }
                    PowerCommand::GetMicrovm { id } => {
                        let r = self.get(&id).await.map(|vm| vm.state);
                        t.handle_get(origin.elapsed(), keep(&mut first_error, r));
                    }
                }
            }
            if let Some(outcome) = t.poll_outcome() {
                return outcome.map_err(|e| first_error.take().unwrap_or_else(|| e.into()));
            }
            let Some(at) = t.poll_timeout() else { return Err(Error::Timeout(format!("{} stalled", action.operation()))) };
            sleep.sleep(at.saturating_sub(origin.elapsed())).await;
            t.handle_timeout(origin.elapsed());
        }
    }

    async fn call(&self, action: PowerAction, id: &str) -> Result<(), Error> {
        let r = match action {
            PowerAction::Suspend => {
                self.client.suspend_microvm().microvm_identifier(id).send().await.map(drop).map_err(|e| api("SuspendMicrovm", e))
            }
            PowerAction::Resume => {
                self.client.resume_microvm().microvm_identifier(id).send().await.map(drop).map_err(|e| api("ResumeMicrovm", e))
            }
        };
        r.map_err(|e| e.vm_not_found(id))
    }

    /// The sleep of the client's runtime (the SDK's default one when the client has none).
    pub(crate) fn sleeper(&self) -> Result<SharedAsyncSleep, Error> {
        let sleep = self.client.config().sleep_impl().or_else(aws_smithy_async::rt::sleep::default_async_sleep);
        sleep.ok_or_else(|| Error::InvalidOption("the AWS SDK client has no sleep implementation for this runtime".into()))
    }
}
