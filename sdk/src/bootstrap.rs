//! The artifact bucket and the build role (reference §G.2), made idempotently with the official
//! S3 and IAM clients, and the S3 transfers of build contexts.

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use whim_core::bootstrap::{BUILD_POLICY, build_policy, trust_policy};

use crate::{Api, Error};

/// Maps any SDK error (S3, IAM) to [`Error::Api`], keeping the code and message.
fn sdk_err<E, R>(operation: &'static str, err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> Error
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_owned);
    let message = err.message().map(str::to_owned).or_else(|| code.clone()).unwrap_or_else(|| {
        let mut s = err.to_string();
        let mut src = std::error::Error::source(&err);
        while let Some(inner) = src {
            s.push_str(": ");
            s.push_str(&inner.to_string());
            src = inner.source();
        }
        s
    });
    Error::Api { operation, code, message }
}

/// What builds need in an account and region: the artifact bucket and the build role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bootstrap {
    /// The caller's account.
    pub account: String,
    /// The artifact bucket.
    pub bucket: String,
    /// The build role's ARN.
    pub build_role_arn: String,
}

impl Api {
    /// Makes (or finds) the artifact bucket `whim-artifacts-<account>-<region>` and the build
    /// role `whim-build`. Idempotent.
    pub async fn bootstrap(&self) -> Result<Bootstrap, Error> {
        let account = self.account().await?;
        let bucket = whim_core::bootstrap::bucket_name(&account, self.region());
        self.ensure_bucket(&bucket).await?;
        let build_role_arn = self.ensure_build_role(whim_core::bootstrap::BUILD_ROLE, &bucket, &account).await?;
        Ok(Bootstrap { account, bucket, build_role_arn })
    }

    /// Creates bucket `name` in this region unless the caller already owns it, then blocks all
    /// public access and turns default encryption (SSE-S3) on. Idempotent.
    pub async fn ensure_bucket(&self, name: &str) -> Result<(), Error> {
        let mut create = self.s3.create_bucket().bucket(name);
        if self.region() != "us-east-1" {
            let constraint = BucketLocationConstraint::from(self.region());
            create = create.create_bucket_configuration(CreateBucketConfiguration::builder().location_constraint(constraint).build());
        }
        match create.send().await {
            Ok(_) => {}
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => {}
            Err(e) if e.code() == Some("BucketAlreadyExists") => {
                return Err(Error::InvalidOption(format!("bucket {name} belongs to another account: pass another bucket name")));
            }
            Err(e) => return Err(sdk_err("CreateBucket", e)),
        }
        let block = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        self.s3
            .put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(block)
            .send()
            .await
            .map_err(|e| sdk_err("PutPublicAccessBlock", e))?;
        let sse = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::Aes256)
            .build()
            .map_err(|e| Error::InvalidOption(e.to_string()))?;
        let rules = ServerSideEncryptionConfiguration::builder()
            .rules(ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(sse).build())
            .build()
            .map_err(|e| Error::InvalidOption(e.to_string()))?;
        self.s3
            .put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(rules)
            .send()
            .await
            .map_err(|e| sdk_err("PutBucketEncryption", e))?;
        Ok(())
    }

    /// Makes role `role` (trusted by `lambda.amazonaws.com` for `sts:AssumeRole` and
    /// `sts:TagSession`) unless it exists, and (re)writes its inline policy: `s3:GetObject` on
    /// `bucket`, logs on `/aws/lambda-microvms/*`. Returns the role ARN. Idempotent.
    pub async fn ensure_build_role(&self, role: &str, bucket: &str, account: &str) -> Result<String, Error> {
        let arn = match self.iam.get_role().role_name(role).send().await {
            Ok(o) => o.role().map(|r| r.arn().to_owned()),
            Err(e) if e.code() == Some("NoSuchEntity") => {
                let created = self
                    .iam
                    .create_role()
                    .role_name(role)
                    .assume_role_policy_document(trust_policy(account))
                    .description("whim: builds Lambda MicroVMs images")
                    .send()
                    .await
                    .map_err(|e| sdk_err("CreateRole", e))?;
                created.role().map(|r| r.arn().to_owned())
            }
            Err(e) => return Err(sdk_err("GetRole", e)),
        };
        let arn =
            arn.ok_or_else(|| Error::Api { operation: "GetRole", code: None, message: format!("role {role} came back without an ARN") })?;
        self.iam
            .put_role_policy()
            .role_name(role)
            .policy_name(BUILD_POLICY)
            .policy_document(build_policy(bucket, account, self.region()))
            .send()
            .await
            .map_err(|e| sdk_err("PutRolePolicy", e))?;
        Ok(arn)
    }

    /// The trust document of role `role` and its inline policy `policy` (either may be
    /// missing), URL-decoded.
    pub async fn role_documents(&self, role: &str, policy: &str) -> Result<(Option<String>, Option<String>), Error> {
        let trust = match self.iam.get_role().role_name(role).send().await {
            Ok(o) => o.role().and_then(|r| r.assume_role_policy_document()).map(url_decode),
            Err(e) if e.code() == Some("NoSuchEntity") => return Ok((None, None)),
            Err(e) => return Err(sdk_err("GetRole", e)),
        };
        let inline = match self.iam.get_role_policy().role_name(role).policy_name(policy).send().await {
            Ok(o) => Some(url_decode(o.policy_document())),
            Err(e) if e.code() == Some("NoSuchEntity") => None,
            Err(e) => return Err(sdk_err("GetRolePolicy", e)),
        };
        Ok((trust.or(Some(String::new())), inline))
    }

    /// Whether bucket `name` exists and is ours (HeadBucket), and its region when S3 says.
    pub async fn bucket_region(&self, name: &str) -> Result<Option<String>, Error> {
        match self.s3.head_bucket().bucket(name).send().await {
            Ok(o) => Ok(Some(o.bucket_region().unwrap_or(self.region()).to_owned())),
            Err(e)
                if matches!(e.code(), Some("NotFound" | "NoSuchBucket"))
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_err("HeadBucket", e)),
        }
    }

    /// Uploads a context zip to `s3://bucket/key`.
    pub async fn upload_artifact(&self, bucket: &str, key: &str, zip: Vec<u8>) -> Result<(), Error> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/zip")
            .body(ByteStream::from(zip))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_err("PutObject", e))
    }

    /// Downloads `s3://bucket/key`, refusing more than `max` bytes.
    pub async fn fetch_object(&self, bucket: &str, key: &str, max: u64) -> Result<Vec<u8>, Error> {
        let out = self.s3.get_object().bucket(bucket).key(key).send().await.map_err(|e| match e.code() {
            Some("NoSuchKey" | "NoSuchBucket" | "AccessDenied") => {
                Error::InvalidSource(format!("s3://{bucket}/{key}: {}", e.code().unwrap_or_default()))
            }
            _ => sdk_err("GetObject", e),
        })?;
        if out.content_length().is_some_and(|n| u64::try_from(n).unwrap_or(0) > max) {
            return Err(Error::SourceTooLarge(format!("s3://{bucket}/{key} is larger than {max} bytes")));
        }
        let mut body = out.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await.map_err(|e| Error::InvalidSource(format!("s3://{bucket}/{key}: {e}")))? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max {
                return Err(Error::SourceTooLarge(format!("s3://{bucket}/{key} is larger than {max} bytes")));
            }
        }
        Ok(bytes)
    }
}

/// IAM returns policy documents percent-encoded (RFC 3986).
fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_decoding() {
        assert_eq!(super::url_decode("%7B%22a%22%3A1%7D+x"), r#"{"a":1}+x"#);
        assert_eq!(super::url_decode("100%"), "100%");
    }
}
