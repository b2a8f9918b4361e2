//! [`Api`]: the Lambda MicroVMs calls whim makes, as executor-agnostic futures.

use std::net::SocketAddr;

use aws_sdk_lambdamicrovms::Client;
use whim_core::endpoint::Secret;
use whim_core::image::ImageProgress;
use whim_core::lifecycle::{SHELL_TOKEN_MINUTES, VmSnapshot, VmState};

use crate::error::{Error, api};

/// How a manager reaches things, beyond the AWS config.
#[derive(Debug, Clone, Default)]
pub struct ManagerOptions {
    /// Reach every VM endpoint through this loopback address (a local emulator routes
    /// by the Host header). `None` for the real service: resolve the endpoint, use TLS.
    pub vm_endpoint_via: Option<SocketAddr>,
}

/// The service calls, on a client the runtime crate built. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Api {
    pub(crate) client: Client,
    pub(crate) sts: aws_sdk_sts::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    region: String,
    /// How VM endpoints are reached.
    pub opts: ManagerOptions,
}

fn snapshot(id: &str, state: &str, endpoint: &str, reason: Option<&str>) -> VmSnapshot {
    VmSnapshot {
        id: id.to_owned(),
        state: VmState::from_wire(state),
        endpoint: endpoint.to_owned(),
        state_reason: reason.map(str::to_owned),
    }
}

impl Api {
    /// Wraps a client built from `sdk`; the region is the one VMs are launched in
    /// (connector ARNs name it). The STS client (the caller's account, for ownership) is
    /// built from `sdk` too, on `client`'s HTTP client and sleep when it has its own.
    pub fn new(client: Client, sdk: &aws_types::SdkConfig, opts: ManagerOptions) -> Result<Api, Error> {
        let region = client.config().region().map(ToString::to_string);
        let region = region.ok_or_else(|| Error::InvalidOption("no AWS region configured: set --region or AWS_REGION".into()))?;
        let http = client.config().http_client();
        let sleep = client.config().sleep_impl().or_else(|| sdk.sleep_impl());
        let mut sts = aws_sdk_sts::config::Builder::from(sdk);
        sts.set_http_client(http.clone().or_else(|| sdk.http_client()));
        sts.set_sleep_impl(sleep.clone());
        let mut s3 = aws_sdk_s3::config::Builder::from(sdk);
        s3.set_http_client(http.clone().or_else(|| sdk.http_client()));
        s3.set_sleep_impl(sleep.clone());
        // An overridden endpoint (an emulator, a LocalStack) serves buckets by path, not by host.
        s3.set_force_path_style(Some(sdk.endpoint_url().is_some()));
        let mut iam = aws_sdk_iam::config::Builder::from(sdk);
        iam.set_http_client(http.or_else(|| sdk.http_client()));
        iam.set_sleep_impl(sleep);
        Ok(Api {
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            client,
            region,
            opts,
        })
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
        let img = self.find_image(name_or_arn).await?.ok_or_else(|| Error::ImageNotFound(name_or_arn.to_owned()))?;
        match ImageProgress::from_wire(&img.state) {
            ImageProgress::Ready => Ok(img.arn),
            _ => Err(self.unlaunchable(name_or_arn, &img.arn, &img.state, img.latest_failed_version.as_deref()).await),
        }
    }

    /// Why an image that exists cannot be launched: still building, failed (with the builds'
    /// reason) or being deleted.
    async fn unlaunchable(&self, name: &str, arn: &str, state: &str, failed: Option<&str>) -> Error {
        match ImageProgress::from_wire(state) {
            ImageProgress::Failed => match self.build_failure(name, arn, failed).await {
                Error::BuildFailed { name, reason } => {
                    Error::BuildFailed { name, reason: format!("{reason} (rebuild it with `whim build --force`)") }
                }
                other => other,
            },
            ImageProgress::Building => Error::ImageNotReady { name: name.to_owned(), state: state.to_owned() },
            ImageProgress::Deleting | ImageProgress::Ready => Error::ImageNotFound(name.to_owned()),
        }
    }

    /// RunMicrovm; an unknown image is [`Error::ImageNotFound`].
    pub async fn run(&self, image: &str, version: Option<String>, ingress: Vec<String>, secs: i32) -> Result<VmSnapshot, Error> {
        let r = self
            .client
            .run_microvm()
            .image_identifier(image)
            .set_image_version(version)
            .set_ingress_network_connectors(Some(ingress))
            .maximum_duration_in_seconds(secs)
            .send()
            .await;
        match r {
            Ok(o) => Ok(snapshot(o.microvm_id(), o.state().as_str(), o.endpoint(), o.state_reason())),
            Err(e) => match api("RunMicrovm", e) {
                Error::Api { code: Some(c), .. } if c == "ResourceNotFoundException" => Err(match self.image_state(image).await {
                    Ok(Some((state, _, failed))) => self.unlaunchable(image, image, &state, failed.as_deref()).await,
                    _ => Error::ImageNotFound(image.to_owned()),
                }),
                other => Err(other),
            },
        }
    }

    /// GetMicrovm as core's snapshot; an unknown id is [`Error::VmNotFound`].
    pub async fn get(&self, id: &str) -> Result<VmSnapshot, Error> {
        let o = self.client.get_microvm().microvm_identifier(id).send().await.map_err(|e| api("GetMicrovm", e).vm_not_found(id))?;
        Ok(snapshot(o.microvm_id(), o.state().as_str(), o.endpoint(), o.state_reason()))
    }

    /// Terminates a VM; an already terminated VM is not an error.
    pub async fn terminate(&self, id: &str) -> Result<(), Error> {
        let r = self.client.terminate_microvm().microvm_identifier(id).send().await;
        r.map(drop).map_err(|e| api("TerminateMicrovm", e).vm_not_found(id))
    }

    /// Mints a shell token: the header map to send on the WebSocket upgrade.
    pub async fn mint(&self, id: &str) -> Result<Vec<(String, Secret)>, Error> {
        let out = self
            .client
            .create_microvm_shell_auth_token()
            .microvm_identifier(id)
            .expiration_in_minutes(SHELL_TOKEN_MINUTES)
            .send()
            .await
            .map_err(|e| api("CreateMicrovmShellAuthToken", e).vm_not_found(id))?;
        Ok(out.auth_token().iter().map(|(k, v)| (k.clone(), Secret::new(v.clone()))).collect())
    }

    /// What a new shell on VM `id` connects to: the URL and the token headers.
    pub async fn shell_target(&self, id: &str, endpoint: &str) -> Result<(String, Vec<(String, Secret)>), Error> {
        let headers = self.mint(id).await?;
        Ok((whim_core::endpoint::shell_url(endpoint)?, headers))
    }

    /// What `attach` needs: the VM, unless it is gone.
    pub async fn attach(&self, id: &str) -> Result<crate::VmInfo, Error> {
        let vm = self.get(id).await?;
        match &vm.state {
            s if s.is_final() => Err(Error::Terminated(id.to_owned())),
            VmState::Suspending | VmState::Suspended => Err(Error::Suspended(id.to_owned())),
            _ => Ok(crate::VmInfo::new(vm.id, vm.endpoint, None)),
        }
    }
}
