//! An Ingress's TLS Secret imported into ACM, owned by Gantry.
//!
//! Used when neither an annotation nor the class names an ACM certificate.
//! The imported certificate carries the owner's tags, the Secret's name and
//! a fingerprint of the PEM data; a changed Secret is re-imported into the
//! same ARN (so the listener need not change), and teardown deletes every
//! certificate of the owner after the balancer. The listener's current
//! certificate is checked first, so a resync costs one tag read; the account
//! is scanned only when that certificate is not the Secret's (first import,
//! a crash between import and listener, or a renamed Secret).

use std::collections::BTreeMap;

use aws_sdk_acm::{primitives::Blob, types::Tag};
use gantry_model::{Owner, ProviderError, desired::TlsCertificate, identity::TAG_ROLE};
use sha2::{Digest, Sha256};

use crate::{
    api::{Api, Budget},
    ensure::{Context, missing},
    error::has_code,
};

/// Tag naming the Secret a certificate was imported from.
pub const TAG_SECRET: &str = "gantry.dev/secret";
/// Tag holding a fingerprint of the imported PEM data.
pub const TAG_FINGERPRINT: &str = "gantry.dev/fingerprint";
/// Role tag value of imported certificates.
const ROLE: &str = "certificate";

/// One Secret's PEM data split as ACM takes it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Pem {
    /// The Secret's name.
    pub(crate) secret: String,
    /// The leaf certificate.
    cert: String,
    /// The rest of `tls.crt` (intermediates), if any.
    chain: Option<String>,
    /// The private key.
    key: String,
    /// Hex SHA-256 of certificate, chain and key.
    pub(crate) fingerprint: String,
}

impl std::fmt::Debug for Pem {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pem")
            .field("secret", &self.secret)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// Split a Secret's `tls.crt` into leaf and chain; a Secret without a PEM
/// certificate or key is a permanent error naming it.
pub(crate) fn split(tls: &TlsCertificate) -> Result<Pem, ProviderError> {
    let bad = |what: &str| ProviderError::Rejected {
        operation: "Validate",
        message: format!("spec.tls secretName {:?}: {what}", tls.secret_name.as_str()),
    };
    let mut blocks = Vec::new();
    let mut rest = tls.cert_pem.as_str();
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start..];
        let end = after
            .find(END)
            .ok_or_else(|| bad("tls.crt has an unterminated certificate"))?;
        blocks.push(format!("{}\n", &after[..end + END.len()]));
        rest = &after[end + END.len()..];
    }
    let mut blocks = blocks.into_iter();
    let cert = blocks
        .next()
        .ok_or_else(|| bad("tls.crt holds no PEM certificate"))?;
    let chain: String = blocks.collect();
    if !tls.key_pem.contains("PRIVATE KEY-----") {
        return Err(bad("tls.key holds no PEM private key"));
    }
    let mut h = Sha256::new();
    for part in [cert.as_str(), chain.as_str(), tls.key_pem.as_str()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let fingerprint = h
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Ok(Pem {
        secret: tls.secret_name.clone(),
        cert,
        chain: (!chain.is_empty()).then_some(chain),
        key: tls.key_pem.clone(),
        fingerprint,
    })
}

/// The one Secret an Ingress's HTTPS listener is built from, if it names
/// any. Several distinct Secrets are not imported yet (one default
/// certificate per listener); that is a permanent error.
pub(crate) fn secret(tls: &[TlsCertificate]) -> Result<Option<Pem>, ProviderError> {
    let Some(first) = tls.first() else {
        return Ok(None);
    };
    if let Some(other) = tls.iter().find(|t| t.secret_name != first.secret_name) {
        return Err(ProviderError::Unsupported {
            provider: gantry_model::ProviderKind::Aws,
            message: format!(
                "spec.tls names Secrets {:?} and {:?}; one imported certificate per Ingress is supported (name ACM certificates by annotation for more)",
                first.secret_name, other.secret_name
            ),
        });
    }
    split(first).map(Some)
}

/// Tags of one certificate; `None` when it does not exist.
async fn tags_of(api: &Api, arn: &str) -> Result<Option<BTreeMap<String, String>>, ProviderError> {
    let op = "ListTagsForCertificate";
    match api
        .raw(
            op,
            Budget::General,
            api.acm
                .list_tags_for_certificate()
                .certificate_arn(arn)
                .send(),
        )
        .await?
    {
        Ok(out) => Ok(Some(
            out.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string()))
                .collect(),
        )),
        Err(e) if has_code(&e, "ResourceNotFoundException") => Ok(None),
        Err(e) => Err(crate::error::classify(op, e)),
    }
}

/// Every certificate of `owner` in `class`: ARN and tags.
pub(crate) async fn owned(
    api: &Api,
    owner: &Owner,
    class: &str,
) -> Result<Vec<(String, BTreeMap<String, String>)>, ProviderError> {
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        let page = api
            .call(
                "ListCertificates",
                Budget::General,
                api.acm
                    .list_certificates()
                    .set_next_token(token.take())
                    .max_items(1000)
                    .send(),
            )
            .await?;
        arns.extend(
            page.certificate_summary_list()
                .iter()
                .filter_map(|c| c.certificate_arn().map(str::to_string)),
        );
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    let mut out = Vec::new();
    for arn in arns {
        if let Some(tags) = tags_of(api, &arn).await?
            && owner.owns(class, &tags)
            && tags.get(TAG_ROLE).map(String::as_str) == Some(ROLE)
        {
            out.push((arn, tags));
        }
    }
    Ok(out)
}

/// What AWS holds for the Secret: the certificate imported from it (ARN and
/// whether its fingerprint is current), and other certificates of the owner
/// that nothing should use any more.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// ARN and whether the imported data matches the Secret.
    pub(crate) current: Option<(String, bool)>,
    /// Owned certificates imported from other Secrets.
    pub(crate) stale: Vec<String>,
}

/// Find the certificate imported from `pem`, starting from the listener's
/// certificate `listener`.
pub(crate) async fn find(
    api: &Api,
    owner: &Owner,
    class: &str,
    pem: &Pem,
    listener: Option<&str>,
) -> Result<Found, ProviderError> {
    let is_ours = |tags: &BTreeMap<String, String>| {
        owner.owns(class, tags)
            && tags.get(TAG_ROLE).map(String::as_str) == Some(ROLE)
            && tags.get(TAG_SECRET) == Some(&pem.secret)
    };
    let fresh =
        |tags: &BTreeMap<String, String>| tags.get(TAG_FINGERPRINT) == Some(&pem.fingerprint);
    if let Some(arn) = listener
        && let Some(tags) = tags_of(api, arn).await?
        && is_ours(&tags)
    {
        return Ok(Found {
            current: Some((arn.to_string(), fresh(&tags))),
            stale: Vec::new(),
        });
    }
    let mut found = Found::default();
    for (arn, tags) in owned(api, owner, class).await? {
        if found.current.is_none() && is_ours(&tags) {
            found.current = Some((arn, fresh(&tags)));
        } else {
            found.stale.push(arn);
        }
    }
    Ok(found)
}

fn acm_tag(key: &str, value: &str) -> Result<Tag, ProviderError> {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| ProviderError::Rejected {
            operation: "ImportCertificate",
            message: format!("tag {key}: {e}"),
        })
}

/// Make ACM hold `pem`: import it (tagged as ours), or re-import it into the
/// existing ARN when its data changed. Returns the ARN.
pub(crate) async fn ensure(
    cx: &Context<'_>,
    pem: &Pem,
    found: &Found,
) -> Result<String, ProviderError> {
    let api = cx.api;
    let op = "ImportCertificate";
    let import = api
        .acm
        .import_certificate()
        .certificate(Blob::new(pem.cert.as_bytes()))
        .private_key(Blob::new(pem.key.as_bytes()))
        .set_certificate_chain(pem.chain.as_ref().map(|c| Blob::new(c.as_bytes())));
    let mut tags = Vec::new();
    for t in cx.tags(ROLE) {
        tags.push(acm_tag(
            t.key().unwrap_or_default(),
            t.value().unwrap_or_default(),
        )?);
    }
    tags.push(acm_tag(TAG_SECRET, &pem.secret)?);
    tags.push(acm_tag(TAG_FINGERPRINT, &pem.fingerprint)?);
    match &found.current {
        Some((arn, true)) => Ok(arn.clone()),
        Some((arn, false)) => {
            // Re-importing keeps the ARN (so listeners stay as they are)
            // but takes no tags: they are written after, all of them, as
            // not every implementation keeps the old ones.
            api.call(op, Budget::General, import.certificate_arn(arn).send())
                .await?;
            api.call(
                "AddTagsToCertificate",
                Budget::General,
                api.acm
                    .add_tags_to_certificate()
                    .certificate_arn(arn)
                    .set_tags(Some(tags))
                    .send(),
            )
            .await?;
            Ok(arn.clone())
        }
        None => {
            let out = api
                .call(op, Budget::General, import.set_tags(Some(tags)).send())
                .await?;
            Ok(out
                .certificate_arn()
                .ok_or_else(|| missing(op, "certificate ARN"))?
                .to_string())
        }
    }
}

/// Delete certificates; gone already is success, still in use (a listener
/// being deleted) is transient.
pub(crate) async fn delete(api: &Api, arns: &[String]) -> Result<(), ProviderError> {
    for arn in arns {
        let op = "DeleteCertificate";
        match api
            .raw(
                op,
                Budget::General,
                api.acm.delete_certificate().certificate_arn(arn).send(),
            )
            .await?
        {
            Ok(_) => {}
            Err(e) if has_code(&e, "ResourceNotFoundException") => {}
            Err(e) => return Err(crate::error::classify(op, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(cert: &str, key: &str) -> TlsCertificate {
        TlsCertificate {
            secret_name: "shop-tls".into(),
            hosts: vec![],
            cert_pem: cert.into(),
            key_pem: key.into(),
        }
    }

    #[test]
    fn leaf_and_chain_are_split_and_fingerprinted() {
        let two = format!("{BEGIN}\nAAA\n{END}\n{BEGIN}\nBBB\n{END}\n");
        let key = "-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n";
        let pem = split(&tls(&two, key)).expect("valid");
        assert_eq!(pem.cert, format!("{BEGIN}\nAAA\n{END}\n"));
        assert_eq!(pem.chain, Some(format!("{BEGIN}\nBBB\n{END}\n")));
        let one = split(&tls(&format!("{BEGIN}\nAAA\n{END}\n"), key)).expect("valid");
        assert_eq!(one.chain, None);
        assert_ne!(one.fingerprint, pem.fingerprint, "the chain counts");
    }

    #[test]
    fn secrets_without_pem_data_are_rejected_by_name() {
        for (cert, key) in [
            ("not a certificate", "-----BEGIN PRIVATE KEY-----"),
            (&format!("{BEGIN}\nAAA\n{END}\n")[..], "no key"),
            (
                &format!("{BEGIN}\nAAA\n")[..],
                "-----BEGIN PRIVATE KEY-----",
            ),
        ] {
            let err = split(&tls(cert, key)).expect_err("invalid");
            assert!(err.to_string().contains("shop-tls"), "{err}");
        }
    }
}
