//! Checking a class's AWS settings and an object's AWS options before any
//! call, so that a bad value ends as a permanent error naming the field
//! and the value, with nothing created. Values from annotations were
//! checked when they were parsed; the class's settings arrive here
//! unchecked, and the shapes AWS refuses are caught here too.

use gantry_model::{
    ProviderError,
    annotations::values,
    class::AwsSettings,
    desired::{L4Spec, L7Spec},
};

/// Inbound rules a security group holds by default (AWS quota); more
/// source ranges times ports than this cannot be expressed.
pub(crate) const MAX_RULES: usize = 60;

fn rejected(field: &str, value: &str, reason: &str) -> ProviderError {
    ProviderError::Rejected {
        operation: "Validate",
        message: format!("{field}: {value:?} {reason}"),
    }
}

/// The model's parsers name the offending item in their reason.
fn from_annotation(e: gantry_model::annotations::AnnotationError) -> ProviderError {
    ProviderError::Rejected {
        operation: "Validate",
        message: format!("{}: {}", e.key, e.reason),
    }
}

/// `prefix-` and 8 or 17 lower-case hex digits (`vpc-0a1b2c3d`).
fn is_aws_id(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// The class's settings.
pub(crate) fn settings(s: &AwsSettings) -> Result<(), ProviderError> {
    for subnet in &s.subnets {
        // One at a time, so the error names the bad one alone.
        values::subnets("spec.aws.subnets", subnet).map_err(from_annotation)?;
    }
    if let Some(vpc) = &s.vpc_id
        && !is_aws_id(vpc, "vpc-")
    {
        return Err(rejected(
            "spec.aws.vpcId",
            vpc,
            "is not a VPC id (vpc- followed by 8 or 17 lower-case hex digits)",
        ));
    }
    if let Some(arn) = &s.certificate_arn {
        values::certificate_arns("spec.aws.certificateArn", arn).map_err(from_annotation)?;
        if arn.contains(',') {
            return Err(rejected(
                "spec.aws.certificateArn",
                arn,
                "names more than one certificate",
            ));
        }
    }
    Ok(())
}

/// A Service's AWS options.
pub(crate) fn l4(spec: &L4Spec) -> Result<(), ProviderError> {
    for subnet in &spec.options.subnets {
        values::subnets(gantry_model::annotations::SUBNETS, subnet).map_err(from_annotation)?;
    }
    for range in &spec.source_ranges {
        if *range != range.trunc() {
            return Err(rejected(
                "spec.loadBalancerSourceRanges",
                &range.to_string(),
                &format!("has host bits set (did you mean {}?)", range.trunc()),
            ));
        }
    }
    let ports: usize = spec.listeners.len();
    if ports * spec.source_ranges.len() > MAX_RULES {
        return Err(rejected(
            "spec.loadBalancerSourceRanges",
            &format!("{} ranges", spec.source_ranges.len()),
            &format!(
                "times {ports} port(s) exceeds the {MAX_RULES} inbound rules of a security group"
            ),
        ));
    }
    Ok(())
}

/// An Ingress's AWS options.
pub(crate) fn l7(spec: &L7Spec) -> Result<(), ProviderError> {
    for arn in &spec.options.certificate_refs {
        values::certificate_arns(gantry_model::annotations::CERTIFICATE_ARNS, arn)
            .map_err(from_annotation)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_settings_are_checked_field_by_field() {
        let ok = AwsSettings {
            subnets: vec!["subnet-0123abcd".into()],
            vpc_id: Some("vpc-0123abcd".into()),
            certificate_arn: Some(
                "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
                    .into(),
            ),
            ..AwsSettings::default()
        };
        assert!(settings(&ok).is_ok());
        for (bad, field, value) in [
            (
                AwsSettings {
                    subnets: vec!["subnet-0123abcd".into(), "sub-nope".into()],
                    ..ok.clone()
                },
                "spec.aws.subnets",
                "sub-nope",
            ),
            (
                AwsSettings {
                    vpc_id: Some("vpc-XYZ".into()),
                    ..ok.clone()
                },
                "spec.aws.vpcId",
                "vpc-XYZ",
            ),
            (
                AwsSettings {
                    certificate_arn: Some("arn:aws:iam::1:server-certificate/x".into()),
                    ..ok.clone()
                },
                "spec.aws.certificateArn",
                "arn:aws:iam::1:server-certificate/x",
            ),
        ] {
            let err = settings(&bad).expect_err(field).to_string();
            assert!(err.contains(field) && err.contains(value), "{err}");
        }
    }
}
