//! S3 and IAM on the emulator's listener, driven by the official aws-sdk-s3 (path style,
//! endpoint override) and aws-sdk-iam, routed by the SigV4 service.

use aws_credential_types::Credentials;
use aws_sdk_iam::error::ProvideErrorMetadata as _;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};
use whim_emulator::{Emulator, EmulatorConfig, LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY};

async fn start() -> Emulator {
    let mut cfg = EmulatorConfig::local_default();
    cfg.state_dir = std::env::temp_dir().join(format!("whim-s3-iam-test-{}-{}", std::process::id(), rand_suffix()));
    cfg.sandbox.state_dir = cfg.state_dir.clone();
    cfg.sandbox.isolation = whim_emulator::sandbox::Isolation::Unisolated;
    Emulator::start(cfg).await.expect("the emulator starts")
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn creds() -> Credentials {
    Credentials::new(LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, None, None, "test")
}

fn s3(emulator: &Emulator) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds())
        .endpoint_url(emulator.endpoint_url())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn iam(emulator: &Emulator) -> aws_sdk_iam::Client {
    let conf = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new("us-east-1"))
        .credentials_provider(creds())
        .endpoint_url(emulator.endpoint_url())
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_buckets_objects_and_settings() {
    let emulator = start().await;
    let client = s3(&emulator);
    client.create_bucket().bucket("art").send().await.expect("CreateBucket");
    client.head_bucket().bucket("art").send().await.expect("HeadBucket");
    let again = client.create_bucket().bucket("art").send().await.expect_err("exists");
    assert_eq!(again.as_service_error().map(|e| e.is_bucket_already_owned_by_you()), Some(true));
    let missing = client.head_bucket().bucket("nope").send().await.expect_err("no such bucket");
    assert_eq!(missing.raw_response().map(|r| r.status().as_u16()), Some(404));

    let body = b"PK\x05\x06 not really a zip".to_vec();
    client.put_object().bucket("art").key("dir/code.zip").body(ByteStream::from(body.clone())).send().await.expect("PutObject");
    let got = client.get_object().bucket("art").key("dir/code.zip").send().await.expect("GetObject");
    assert_eq!(got.body.collect().await.expect("body").into_bytes().as_ref(), body.as_slice());
    let nokey = client.get_object().bucket("art").key("other.zip").send().await.expect_err("no such key");
    assert_eq!(nokey.as_service_error().map(|e| e.is_no_such_key()), Some(true));

    let block = PublicAccessBlockConfiguration::builder().block_public_acls(true).restrict_public_buckets(true).build();
    client.put_public_access_block().bucket("art").public_access_block_configuration(block).send().await.expect("PutPublicAccessBlock");
    let read = client.get_public_access_block().bucket("art").send().await.expect("GetPublicAccessBlock");
    let read = read.public_access_block_configuration().expect("configuration");
    assert_eq!((read.block_public_acls(), read.restrict_public_buckets()), (Some(true), Some(true)));

    let none = client.get_bucket_encryption().bucket("art").send().await.expect_err("no encryption yet");
    assert_eq!(none.code(), Some("ServerSideEncryptionConfigurationNotFoundError"));
    let default = ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256).build().expect("default");
    let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default).build();
    let sse = ServerSideEncryptionConfiguration::builder().rules(rule).build().expect("sse");
    client.put_bucket_encryption().bucket("art").server_side_encryption_configuration(sse).send().await.expect("PutBucketEncryption");
    let enc = client.get_bucket_encryption().bucket("art").send().await.expect("GetBucketEncryption");
    let algo = enc
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .map(|d| d.sse_algorithm().clone());
    assert_eq!(algo, Some(ServerSideEncryption::Aes256));

    client.delete_object().bucket("art").key("dir/code.zip").send().await.expect("DeleteObject");
    assert!(client.head_object().bucket("art").key("dir/code.zip").send().await.is_err(), "deleted");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_roles_and_inline_policies() {
    let emulator = start().await;
    let client = iam(&emulator);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    let created = client.create_role().role_name("whim-build").assume_role_policy_document(trust).send().await.expect("CreateRole");
    let role = created.role().expect("role");
    assert_eq!(role.arn(), "arn:aws:iam::123456789012:role/whim-build");
    let again = client.create_role().role_name("whim-build").assume_role_policy_document(trust).send().await.expect_err("exists");
    assert_eq!(again.code(), Some("EntityAlreadyExists"));

    let got = client.get_role().role_name("whim-build").send().await.expect("GetRole");
    let doc = got.role().and_then(|r| r.assume_role_policy_document()).expect("trust policy");
    assert_eq!(percent_decode(doc), trust, "IAM returns the document percent-encoded");

    let missing = client.get_role().role_name("nope").send().await.expect_err("no such role");
    assert_eq!(missing.raw_response().map(|r| r.status().as_u16()), Some(404));
    assert_eq!(missing.code(), Some("NoSuchEntity"));
    assert_eq!(missing.message(), Some("The role with name nope cannot be found."));

    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
    client.put_role_policy().role_name("whim-build").policy_name("artifact").policy_document(policy).send().await.expect("PutRolePolicy");
    let read = client.get_role_policy().role_name("whim-build").policy_name("artifact").send().await.expect("GetRolePolicy");
    assert_eq!(percent_decode(read.policy_document()), policy);
    let nopolicy = client.get_role_policy().role_name("whim-build").policy_name("x").send().await.expect_err("no policy");
    assert_eq!(nopolicy.code(), Some("NoSuchEntity"));
    emulator.shutdown().await;
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8().expect("utf-8").into_owned()
}
