//! `whim preflight-check`: credentials, region and permissions, without launching anything
//! billable (reference §G.3). One line per check, with the fix when it fails.

use whim_core::bootstrap::{BUILD_POLICY, BUILD_ROLE, bucket_name, grants_build_logs, missing_trust};
use whim_core::image::{DEFAULT_IMAGE, EGRESS_FACT, ImageProgress};
use whim_tokio::{Error, Manager};

use crate::cli::Global;
use crate::{aws, config};

/// Regions measured serving Lambda MicroVMs (reference §A.1, as of 2026-10-24).
const MEASURED_REGIONS: [&str; 14] = [
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "ap-northeast-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "eu-central-1",
    "eu-north-1",
    "ap-east-1",
    "ap-southeast-5",
    "ap-southeast-7",
    "eu-south-2",
];

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Warn,
    Fail,
    Info,
}

struct Report {
    failed: bool,
}

impl Report {
    fn line(&mut self, v: Verdict, check: &str, detail: &str, fix: Option<&str>) {
        let tag = match v {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
            Verdict::Info => "note",
        };
        self.failed |= v == Verdict::Fail;
        match fix {
            Some(f) if v != Verdict::Ok => println!("{tag} {check}: {detail} — fix: {f}"),
            _ => println!("{tag} {check}: {detail}"),
        }
    }
}

/// Runs every check; exit 1 when one failed.
pub async fn preflight(g: &Global) -> anyhow::Result<u8> {
    let mut r = Report { failed: false };
    let mgr = match aws::manager(g).await {
        Ok(m) => m,
        Err(e) => {
            r.line(Verdict::Fail, "region", &format!("{e:#}"), Some("pass --region or set AWS_REGION"));
            return Ok(1);
        }
    };
    let region = mgr.region().to_owned();
    if MEASURED_REGIONS.contains(&region.as_str()) || g.local {
        r.line(Verdict::Ok, "region", &region, None);
    } else {
        r.line(
            Verdict::Warn,
            "region",
            &format!("{region} is not among the regions measured serving Lambda MicroVMs"),
            Some("use e.g. us-east-1 if the checks below fail"),
        );
    }
    let account = match mgr.account().await {
        Ok(a) => {
            r.line(Verdict::Ok, "credentials", &format!("account {}", crate::vms::redact(&a)), None);
            a
        }
        Err(e) => {
            r.line(
                Verdict::Fail,
                "credentials",
                &e.to_string(),
                Some("configure credentials (aws configure, AWS_PROFILE, SSO login) with sts:GetCallerIdentity"),
            );
            return Ok(1);
        }
    };
    service(&mut r, &mgr).await;
    build_setup(&mut r, &mgr, &account, &region).await?;
    r.line(Verdict::Info, "egress", EGRESS_FACT, None);
    Ok(u8::from(r.failed))
}

/// One page of ListManagedMicrovmImages: endpoint, signature, IAM and region together.
async fn service(r: &mut Report, mgr: &Manager) {
    match mgr.api().probe_managed_images().await {
        Ok(n) => r.line(Verdict::Ok, "lambda-microvms", &format!("ListManagedMicrovmImages answered ({n} managed images)"), None),
        Err(Error::Api { code: Some(c), message, .. }) if c == "AccessDeniedException" => r.line(
            Verdict::Fail,
            "lambda-microvms",
            &format!("access denied ({message})"),
            Some("the region may not offer Lambda MicroVMs, or IAM denies lambda:ListManagedMicrovmImages: check CloudTrail"),
        ),
        Err(e) => r.line(Verdict::Fail, "lambda-microvms", &e.to_string(), Some("check the region and the endpoint (--endpoint-url)")),
    }
}

/// The artifact bucket and the build role (what `whim init` makes).
async fn build_setup(r: &mut Report, mgr: &Manager, account: &str, region: &str) -> anyhow::Result<()> {
    let scope = config::load()?.scope(account, region).cloned().unwrap_or_default();
    let bucket = scope.bucket.unwrap_or_else(|| bucket_name(account, region));
    match mgr.api().bucket_region(&bucket).await {
        Ok(Some(b)) if b == region => r.line(Verdict::Ok, "artifact bucket", &format!("{} in {b}", crate::vms::redact(&bucket)), None),
        Ok(Some(b)) => r.line(
            Verdict::Fail,
            "artifact bucket",
            &format!("{} is in {b}, not {region}", crate::vms::redact(&bucket)),
            Some("builds need a bucket in the image's region: run `whim init` in this region"),
        ),
        Ok(None) => {
            r.line(Verdict::Fail, "artifact bucket", &format!("{} does not exist", crate::vms::redact(&bucket)), Some("run `whim init`"))
        }
        Err(e) => r.line(
            Verdict::Fail,
            "artifact bucket",
            &e.to_string(),
            Some("allow s3:ListBucket/s3:PutObject on the bucket, or run `whim init`"),
        ),
    }
    match mgr.api().role_documents(BUILD_ROLE, BUILD_POLICY).await {
        Ok((None, _)) => r.line(Verdict::Fail, "build role", &format!("role {BUILD_ROLE} does not exist"), Some("run `whim init`")),
        Ok((Some(trust), policy)) => {
            let missing = missing_trust(&trust);
            if missing.is_empty() {
                r.line(Verdict::Ok, "build role trust", "lambda.amazonaws.com may sts:AssumeRole and sts:TagSession", None);
            } else {
                r.line(Verdict::Fail, "build role trust", &format!("lambda.amazonaws.com lacks {}", missing.join(", ")), Some("add them for lambda.amazonaws.com to the role's trust policy (`whim init` does not change an existing role's trust)"));
            }
            if policy.as_deref().is_some_and(grants_build_logs) {
                r.line(Verdict::Ok, "build role logs", "logs on /aws/lambda-microvms/*", None);
            } else {
                r.line(
                    Verdict::Fail,
                    "build role logs",
                    "no logs permission on /aws/lambda-microvms/* (builds would leave no logs)",
                    Some("run `whim init`"),
                );
            }
        }
        Err(e) => r.line(Verdict::Fail, "build role", &e.to_string(), Some("allow iam:GetRole and iam:GetRolePolicy, or run `whim init`")),
    }
    default_image(r, mgr).await;
    Ok(())
}

/// The image `whim` and `whim run` launch when given none.
async fn default_image(r: &mut Report, mgr: &Manager) {
    match mgr.api().find_image(DEFAULT_IMAGE).await {
        Ok(Some(img)) => match ImageProgress::from_wire(&img.state) {
            ImageProgress::Ready => r.line(Verdict::Ok, "default image", &format!("{DEFAULT_IMAGE} is {}", img.state), None),
            ImageProgress::Building => r.line(
                Verdict::Warn,
                "default image",
                &format!("{DEFAULT_IMAGE} is still being built ({})", img.state),
                Some("wait for the build (`whim image ls`)"),
            ),
            ImageProgress::Failed | ImageProgress::Deleting => {
                r.line(Verdict::Fail, "default image", &format!("{DEFAULT_IMAGE} is {}", img.state), Some("run `whim init --force`"))
            }
        },
        Ok(None) => r.line(Verdict::Fail, "default image", &format!("{DEFAULT_IMAGE} does not exist"), Some("run `whim init`")),
        Err(e) => r.line(Verdict::Fail, "default image", &e.to_string(), Some("allow lambda:ListMicrovmImages")),
    }
}
