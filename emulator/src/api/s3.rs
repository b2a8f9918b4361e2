//! S3 (signing name `s3`) on the emulator's listener, path-style: s3s parses, verifies and
//! answers; s3s-fs keeps buckets and objects under the state directory; the bucket settings
//! s3s-fs lacks (public access block, default encryption) are kept here, in memory.
//!
//! Unlike the Lambda side, S3 requests MUST be signed with the local key pair
//! ([`crate::LOCAL_ACCESS_KEY_ID`]): s3s needs the secret to decode signed streaming uploads.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::state::objects::ObjectStore;

/// The S3 service over `store`, accepting the local credentials.
pub(crate) fn service(store: Arc<ObjectStore>) -> S3Service {
    let mut builder = S3ServiceBuilder::new(S3Front { store });
    builder.set_auth(SimpleAuth::from_single(crate::LOCAL_ACCESS_KEY_ID, crate::LOCAL_SECRET_ACCESS_KEY));
    builder.build()
}

/// Answers one S3 request.
pub(crate) async fn handle(service: &S3Service, req: Request) -> Response {
    let req = req.map(s3s::Body::http_body_unsync);
    match service.call(req).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("whim-emulator S3 failed: {e:?}")).into_response(),
    }
}

/// s3s-fs plus the in-memory bucket settings.
#[derive(Debug)]
struct S3Front {
    store: Arc<ObjectStore>,
}

impl S3Front {
    fn bucket_exists(&self, bucket: &str) -> S3Result<()> {
        if self.store.has_bucket(bucket) { Ok(()) } else { Err(s3_error!(NoSuchBucket)) }
    }
}

/// An S3 error code s3s does not list, with its status.
fn custom_error(code: &'static str, status: StatusCode, message: &'static str) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(code.into()), message);
    e.set_status_code(status);
    e
}

#[async_trait::async_trait]
impl S3 for S3Front {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        // Every bucket here is the caller's: S3 answers a re-create by its owner this way
        // (s3s-fs would say BucketAlreadyExists, which means another account's bucket).
        if self.store.has_bucket(&req.input.bucket) {
            return Err(s3_error!(BucketAlreadyOwnedByYou));
        }
        self.store.fs().create_bucket(req).await
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.store.fs().head_bucket(req).await
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = req.input.bucket.clone();
        let out = self.store.fs().delete_bucket(req).await?;
        self.store.forget(&bucket);
        Ok(out)
    }

    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        self.store.fs().list_buckets(req).await
    }

    async fn get_bucket_location(&self, req: S3Request<GetBucketLocationInput>) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.store.fs().get_bucket_location(req).await
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        self.store.fs().put_object(req).await
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        self.store.fs().get_object(req).await
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        self.store.fs().head_object(req).await
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.store.fs().delete_object(req).await
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.store.fs().delete_objects(req).await
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        self.store.fs().copy_object(req).await
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        self.store.fs().list_objects(req).await
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.store.fs().list_objects_v2(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.store.fs().create_multipart_upload(req).await
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        self.store.fs().upload_part(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.store.fs().complete_multipart_upload(req).await
    }

    async fn abort_multipart_upload(&self, req: S3Request<AbortMultipartUploadInput>) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.store.fs().abort_multipart_upload(req).await
    }

    async fn put_public_access_block(&self, req: S3Request<PutPublicAccessBlockInput>) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        let input = req.input;
        self.bucket_exists(&input.bucket)?;
        let config = input.public_access_block_configuration;
        self.store.update_settings(&input.bucket, |s| s.public_access_block = Some(config));
        Ok(S3Response::new(PutPublicAccessBlockOutput::default()))
    }

    async fn get_public_access_block(&self, req: S3Request<GetPublicAccessBlockInput>) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        self.bucket_exists(&req.input.bucket)?;
        let Some(config) = self.store.settings(&req.input.bucket).public_access_block else {
            let message = "The public access block configuration was not found";
            return Err(custom_error("NoSuchPublicAccessBlockConfiguration", StatusCode::NOT_FOUND, message));
        };
        Ok(S3Response::new(GetPublicAccessBlockOutput { public_access_block_configuration: Some(config) }))
    }

    async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
        self.bucket_exists(&req.input.bucket)?;
        self.store.update_settings(&req.input.bucket, |s| s.public_access_block = None);
        Ok(S3Response::new(DeletePublicAccessBlockOutput::default()))
    }

    async fn put_bucket_encryption(&self, req: S3Request<PutBucketEncryptionInput>) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        let input = req.input;
        self.bucket_exists(&input.bucket)?;
        let config = input.server_side_encryption_configuration;
        self.store.update_settings(&input.bucket, |s| s.encryption = Some(config));
        Ok(S3Response::new(PutBucketEncryptionOutput::default()))
    }

    async fn get_bucket_encryption(&self, req: S3Request<GetBucketEncryptionInput>) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        self.bucket_exists(&req.input.bucket)?;
        let Some(config) = self.store.settings(&req.input.bucket).encryption else {
            let message = "The server side encryption configuration was not found";
            return Err(custom_error("ServerSideEncryptionConfigurationNotFoundError", StatusCode::NOT_FOUND, message));
        };
        Ok(S3Response::new(GetBucketEncryptionOutput { server_side_encryption_configuration: Some(config) }))
    }

    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        self.bucket_exists(&req.input.bucket)?;
        self.store.update_settings(&req.input.bucket, |s| s.encryption = None);
        Ok(S3Response::new(DeleteBucketEncryptionOutput::default()))
    }
}
