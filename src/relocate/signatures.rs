//! `--cosign-signatures`: the `sha256-<hex>.sig` image of every top-level image of a copy, looked
//! up where that image was read from, becomes one more top-level image that keeps its tag.
use super::plan::{Expect, Item, Plan};
use super::{CopyOptions, RelocateError};
use crate::bundle::signature::{find_signature, signature_ref};
use crate::registry::{Audience, Reference, RegistryError};
use futures_util::StreamExt;

/// The signatures to add to `plan`. An absent signature adds nothing; every lookup the registry
/// refuses is gathered into one [`SignatureLookupError`], so one run names them all.
pub(super) async fn signature_items(
    client: &crate::registry::Client,
    plan: &Plan,
    options: &CopyOptions,
) -> Result<Vec<Item>, RelocateError> {
    let subjects: Vec<Reference> = plan
        .tops
        .iter()
        .filter_map(|top| {
            let node = plan.nodes.get(&top.digest)?;
            node.source.as_ref().map(|s| s.with_digest(top.digest.clone()))
        })
        .collect();
    let answers: Vec<(Reference, Result<_, RegistryError>)> = futures_util::stream::iter(subjects)
        .map(|subject| async move {
            let found = find_signature(client, &subject).await;
            (subject, found)
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let mut items = Vec::new();
    let mut failures = Vec::new();
    for (subject, answer) in answers {
        match answer {
            Ok(Some(s)) => items.push(Item {
                candidates: vec![s.image],
                // imgpkg records no OrigRef for a signature (manifest.json's `"OrigRef":""`).
                orig_ref: String::new(),
                expect: Expect::Any,
                top: true,
                tag: Some(s.tag),
                no_origin: true,
            }),
            Ok(None) => {}
            Err(error) => failures.push(SignatureFailure { subject, error }),
        }
    }
    if failures.is_empty() {
        Ok(items)
    } else {
        failures.sort_by_key(|f| f.subject.to_string());
        Err(RelocateError::Signatures(SignatureLookupError { failures }))
    }
}

/// One signature lookup the registry did not answer with found / not found.
#[derive(Debug)]
pub struct SignatureFailure {
    /// The signed image, `repo@sha256:…`.
    pub subject: Reference,
    pub error: RegistryError,
}

impl SignatureFailure {
    /// imgpkg's words for the failure (`access denied` for a 403; `Fetching signature for
    /// image '…': <registry error>` otherwise), then what pkgr adds for `audience`, in brackets
    /// (none without one).
    fn reason(&self, audience: Option<&dyn Audience>) -> String {
        let words = self
            .error
            .go_text()
            .map(str::to_string)
            .unwrap_or_else(|| self.error.to_string());
        let mut text = if matches!(self.error, RegistryError::Denied { .. }) {
            "access denied".to_string()
        } else {
            format!("Fetching signature for image '{}': {words}", self.subject)
        };
        if let Some(explanation) = audience.and_then(|a| self.error.explanation(a)) {
            text.push_str(&format!(" ({explanation})"));
        }
        text
    }
}

/// Every refused signature lookup of a copy, in imgpkg's layout (`signature.FetchError`):
/// `Unable to retrieve the following images:` then `Image: '…'` / `Error: …` for each.
#[derive(Debug)]
pub struct SignatureLookupError {
    pub failures: Vec<SignatureFailure>,
}

impl SignatureLookupError {
    /// The error with what `audience` can change for each failure (the facts alone without one).
    pub fn worded(&self, audience: Option<&dyn Audience>) -> String {
        let mut text = "Unable to retrieve the following images:".to_string();
        for failure in &self.failures {
            text.push_str(&format!(
                "\nImage: '{}'\nError: {}",
                signature_ref(&failure.subject),
                failure.reason(audience)
            ));
        }
        text.push_str("\n(copy without --cosign-signatures to leave signatures behind)");
        text
    }
}

impl std::fmt::Display for SignatureLookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.worded(None))
    }
}

impl std::error::Error for SignatureLookupError {}
