//! ARN checks with the service's recorded refusals (reference §A.8, §B).

use super::error::ApiError;

/// `imageIdentifier` in a RunMicrovm body: a bare name is "Malformed ARN" (recorded).
pub(crate) fn check_run_image(identifier: &str) -> Result<(), ApiError> {
    if !identifier.starts_with("arn:") {
        return Err(ApiError::validation("Malformed ARN - doesn't start with 'arn:'"));
    }
    check_shape(identifier)
}

/// An image ARN in a URI label: a bare name is "Invalid ARN format" (recorded; the unmodelled
/// image `id` is not accepted as an identifier either, §H 17, a guess); the slash form
/// `microvm-image/<name>` is an IAM-style denial (recorded 403 AccessDeniedException).
pub(crate) fn check_image_label(operation: &str, identifier: &str, account: &str) -> Result<(), ApiError> {
    check_shape(identifier)?;
    if identifier.split(':').nth(5).is_some_and(|r| r.starts_with("microvm-image/")) {
        return Err(ApiError::access_denied(format!(
            "User: arn:aws:iam::{account}:user/whim-local is not authorized to perform: lambda:{operation} \
             on resource: {identifier} because no identity-based policy allows the lambda:{operation} action"
        )));
    }
    Ok(())
}

/// A network connector ARN in RunMicrovm. The service's full message is only partly recorded
/// ("Malformed network connector ARN" for a bare `ALL_INGRESS`).
pub(crate) fn check_connector(arn: &str) -> Result<(), ApiError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = parts.len() >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "network-connector";
    if ok { Ok(()) } else { Err(ApiError::validation("Malformed network connector ARN")) }
}

fn check_shape(identifier: &str) -> Result<(), ApiError> {
    let parts: Vec<&str> = identifier.splitn(6, ':').collect();
    let ok = parts.len() == 6 && parts[0] == "arn" && !parts[1].is_empty() && !parts[2].is_empty() && !parts[5].is_empty();
    if ok { Ok(()) } else { Err(ApiError::validation(format!("Invalid ARN format: {identifier}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_refusals() {
        let bare = check_run_image("whim-default").expect_err("bare name");
        assert_eq!(bare, ApiError::validation("Malformed ARN - doesn't start with 'arn:'"));
        let label = check_image_label("ListManagedMicrovmImageVersions", "al2023-1", "1").expect_err("bare");
        assert_eq!(label, ApiError::validation("Invalid ARN format: al2023-1"));
        let slash = "arn:aws:lambda:us-east-1:123456789012:microvm-image/x";
        assert_eq!(check_image_label("GetMicrovmImage", slash, "1").map_err(|e| e.kind()), Err("AccessDeniedException"));
        assert!(check_run_image("arn:aws:lambda:us-east-1:123456789012:microvm-image:x").is_ok());
        assert!(check_connector("ALL_INGRESS").is_err());
        assert!(check_connector("arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:ALL_INGRESS").is_ok());
    }
}
