//! `--cosign-signatures`: the `sha256-<hex>.sig` image of every top-level image of a copy, looked
//! up where that image was read from, becomes one more top-level image that keeps its tag.
use super::plan::{Expect, Item, Plan};
use super::{CopyOptions, RelocateError};
use crate::bundle::signature::find_signature;
use crate::registry::Reference;
use futures_util::{StreamExt, TryStreamExt};

/// The signatures to add to `plan` (an absent signature adds nothing; a lookup the registry
/// refuses fails the copy, naming the image).
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
    let found: Vec<Option<Item>> = futures_util::stream::iter(subjects)
        .map(|subject| async move {
            let signature = find_signature(client, &subject).await.map_err(|e| {
                RelocateError::registry(
                    format!(
                        "looking for the cosign signature of {subject} (copy without --cosign-signatures to leave signatures behind)"
                    ),
                    e,
                )
            })?;
            Ok::<_, RelocateError>(signature.map(|s| Item {
                candidates: vec![s.image],
                orig_ref: String::new(),
                expect: Expect::Any,
                top: true,
                tag: Some(s.tag),
            }))
        })
        .buffer_unordered(options.concurrency.max(1))
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}
