//! Building the AWS config and the [`Manager`]: ambient discovery for real AWS, fixed
//! local credentials for `--local`.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::Context;
use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_types::region::Region;
use whim_tokio::{Manager, ManagerOptions};

use crate::cli::Global;
use crate::local;

/// The image used when none is named.
pub const DEFAULT_IMAGE: &str = whim_core::image::DEFAULT_IMAGE;

/// A manager for the backend the flags select.
pub async fn manager(g: &Global) -> anyhow::Result<Manager> {
    let sdk = if g.local {
        let url = match &g.endpoint_url {
            Some(u) => u.clone(),
            None => local::ensure_running().await?,
        };
        local_config(&url).await
    } else {
        aws_config(g).await
    };
    let via = sdk.endpoint_url().and_then(loopback_via);
    Manager::new(&sdk, ManagerOptions { vm_endpoint_via: via }).context("cannot configure AWS")
}

async fn local_config(url: &str) -> aws_types::SdkConfig {
    let creds = Credentials::new(whim_emulator::LOCAL_ACCESS_KEY_ID, whim_emulator::LOCAL_SECRET_ACCESS_KEY, None, None, "whim-local");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(whim_emulator::LOCAL_REGION))
        .credentials_provider(creds)
        .endpoint_url(url)
        .load()
        .await
}

async fn aws_config(g: &Global) -> aws_types::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = &g.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(p) = &g.profile {
        loader = loader.profile_name(p);
    }
    if let Some(u) = &g.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    loader.load().await
}

/// When the endpoint is plain HTTP on a loopback address it is an emulator: reach VM
/// endpoints through the same address (it routes by Host).
pub fn loopback_via(url: &str) -> Option<SocketAddr> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    if !whim_core::endpoint::is_loopback_authority(authority) {
        return None;
    }
    let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    with_port.to_socket_addrs().ok()?.find(|a| a.ip().is_loopback())
}

/// One line saying which backend the flags select (for `whim version`).
pub fn describe_backend(g: &Global) -> String {
    if g.local {
        return match &g.endpoint_url {
            Some(u) => format!("local emulator at {u}"),
            None => format!("local emulator ({})", local::describe()),
        };
    }
    let region = g.region.clone().unwrap_or_else(|| "from the AWS config".into());
    match &g.endpoint_url {
        Some(u) => format!("Lambda MicroVMs at {u}, region {region}"),
        None => format!("AWS Lambda MicroVMs, region {region}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_loopback_is_routed_via() {
        assert_eq!(loopback_via("http://127.0.0.1:4566"), Some("127.0.0.1:4566".parse().unwrap()));
        assert_eq!(loopback_via("http://localhost:4566/").map(|a| a.port()), Some(4566));
        assert_eq!(loopback_via("https://127.0.0.1:4566"), None);
        assert_eq!(loopback_via("http://10.1.1.1:4566"), None);
        assert_eq!(loopback_via("http://lambda.us-east-1.amazonaws.com"), None);
    }
}
