//! The verify phase of a reconcile (pkgr's addition, `spec.fetch.*.verify`): before anything is
//! applied, the resolved digest must carry a cosign signature that one of the public keys of the
//! named Secret verifies. Results are remembered per (digest, keys, annotations), so a resync of
//! an unchanged repository makes no extra request, and a rotated key is used at once.
use super::Context;
use super::error::ReconcileError;
use super::fetch::Resolved;
use crate::api::{PackageRepository, Verify};
use crate::verify::PublicKey;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use sha2::Digest as _;

/// At most this many verified (digest, keys) pairs are remembered.
const REMEMBERED: usize = 10_000;

/// The repository's `verify`, if it asks for one.
pub(super) fn requested(repo: &PackageRepository) -> Option<&Verify> {
    let fetch = &repo.spec.fetch;
    fetch
        .imgpkg_bundle
        .as_ref()
        .and_then(|b| b.verify.as_ref())
        .or_else(|| fetch.image.as_ref().and_then(|i| i.verify.as_ref()))
}

/// Verify the resolved source, or fail the reconcile before any write.
pub(super) async fn verify_source(
    repo: &PackageRepository,
    ctx: &Context,
    resolved: &Resolved<'_>,
) -> Result<(), ReconcileError> {
    let Some(verify) = requested(repo) else {
        return Ok(());
    };
    let namespace = ctx.settings.namespace.clone();
    let name = verify.secret_ref.name.clone();
    let keys_error = |reason: String| ReconcileError::VerifyKeys {
        namespace: namespace.clone(),
        name: name.clone(),
        reason,
    };
    let Some(session) = resolved.session() else {
        return Err(keys_error("verify needs an imgpkgBundle or image source".into()));
    };
    let field = if repo.spec.fetch.imgpkg_bundle.is_some() {
        "spec.fetch.imgpkgBundle.verify.secretRef"
    } else {
        "spec.fetch.image.verify.secretRef"
    };
    let secret = read(ctx, &namespace, &name, field).await?;
    let mut fingerprint = sha2::Sha256::new();
    fingerprint.update(resolved.fetched.as_bytes());
    let mut keys = Vec::new();
    for (key, value) in secret.data.iter().flatten() {
        if !key.ends_with(".pub") {
            continue;
        }
        let label = format!("{key} of Secret {namespace}/{name}");
        let parsed = PublicKey::from_pem(&label, &value.0).map_err(|e| keys_error(e.to_string()))?;
        fingerprint.update([0]);
        fingerprint.update(key.as_bytes());
        fingerprint.update([0]);
        fingerprint.update(&value.0);
        keys.push(parsed);
    }
    if keys.is_empty() {
        return Err(keys_error(
            "it has no key whose name ends in .pub; add the PEM public keys the repository is signed with (for example cosign.pub)".into(),
        ));
    }
    for (k, v) in &verify.match_annotations {
        fingerprint.update([1]);
        fingerprint.update(k.as_bytes());
        fingerprint.update([0]);
        fingerprint.update(v.as_bytes());
    }
    let fingerprint = hex::encode(fingerprint.finalize());
    if ctx
        .verified
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&fingerprint)
    {
        return Ok(());
    }
    match session
        .verify(&resolved.fetched, &keys, &verify.match_annotations)
        .await
    {
        Ok(what) => {
            tracing::info!(repository = %repo.metadata.name.as_deref().unwrap_or_default(), verified = %what, "signature verified");
            let mut verified = ctx.verified.lock().unwrap_or_else(|p| p.into_inner());
            if verified.len() >= REMEMBERED {
                verified.clear();
            }
            verified.insert(fingerprint);
            Ok(())
        }
        Err(reason) => Err(ReconcileError::NotVerified {
            image: resolved.fetched.clone(),
            namespace,
            name,
            reason,
        }),
    }
}

/// The Secret holding the keys (from the watch cache when there is one).
async fn read(
    ctx: &Context,
    namespace: &str,
    name: &str,
    field: &'static str,
) -> Result<Secret, ReconcileError> {
    let missing = || ReconcileError::SecretMissing {
        namespace: namespace.to_string(),
        name: name.to_string(),
        field,
    };
    if let Some(cache) = &ctx.secrets {
        return cache
            .get(&ObjectRef::new(name).within(namespace))
            .map(|s| (*s).clone())
            .ok_or_else(missing);
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    api.get_opt(name)
        .await
        .map_err(|source| ReconcileError::SecretRead {
            namespace: namespace.to_string(),
            name: name.to_string(),
            source,
        })?
        .ok_or_else(missing)
}
