//! The resolve and fetch phases of a reconcile: which source, its credentials, resolving the
//! reference to a digest (tagSelection, `latest`, the tags there when one is missing), and, when
//! the digest short-cut does not apply, the pull (or the inline files).
use super::Context;
use super::error::ReconcileError;
use super::secret::{RegistryAuth, read_secret};
use super::source::{Contents, Session, split_image};
use crate::api::{ImageFetch, ImgpkgBundleFetch, InlineFetch, PackageRepository};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use std::sync::Arc;

/// The source a repository names.
#[derive(Clone, Copy, Debug)]
pub enum SourceSpec<'a> {
    Bundle(&'a ImgpkgBundleFetch),
    Image(&'a ImageFetch),
    Inline(&'a InlineFetch),
}

/// Exactly one of imgpkgBundle, image, inline.
pub fn select_source(repo: &PackageRepository) -> Result<SourceSpec<'_>, ReconcileError> {
    let fetch = &repo.spec.fetch;
    let mut named = Vec::new();
    if let Some(b) = &fetch.imgpkg_bundle {
        named.push(("imgpkgBundle", SourceSpec::Bundle(b)));
    }
    if let Some(i) = &fetch.image {
        named.push(("image", SourceSpec::Image(i)));
    }
    if let Some(i) = &fetch.inline {
        named.push(("inline", SourceSpec::Inline(i)));
    }
    match named.len() {
        0 => Err(ReconcileError::NoSource),
        1 => Ok(named[0].1),
        _ => {
            let names: Vec<_> = named.iter().map(|(n, _)| *n).collect();
            Err(ReconcileError::SeveralSources(format!(
                "{} sources ({})",
                names.len(),
                names.join(" and ")
            )))
        }
    }
}

/// What the memo and the status record as "fetched" for an inline source.
pub(super) const INLINE: &str = "inline";

/// A repository's source, resolved: what it is (`repository@sha256:…`, or `inline`) and how to
/// get its files.
pub(super) struct Resolved<'a> {
    pub(super) fetched: String,
    how: How<'a>,
}

enum How<'a> {
    Inline(&'a InlineFetch),
    Registry {
        session: Arc<dyn Session>,
        credentials: String,
        expect_bundle: bool,
        sub_path: Option<&'a str>,
    },
}

impl Resolved<'_> {
    /// The registry session it was resolved with (`None` for an inline source).
    pub(super) fn session(&self) -> Option<&dyn Session> {
        match &self.how {
            How::Inline(_) => None,
            How::Registry { session, .. } => Some(session.as_ref()),
        }
    }
}

/// The resolve phase: the source the repository names, its credentials, and its digest.
pub(super) async fn resolve_source<'a>(
    repo: &'a PackageRepository,
    ctx: &Context,
) -> Result<Resolved<'a>, ReconcileError> {
    let (image, secret, selection, expect_bundle, sub_path) = match select_source(repo)? {
        SourceSpec::Inline(inline) => {
            return Ok(Resolved {
                fetched: INLINE.to_string(),
                how: How::Inline(inline),
            });
        }
        SourceSpec::Bundle(b) => (
            b.image.as_str(),
            b.secret_ref.as_ref(),
            b.tag_selection.as_ref(),
            true,
            None,
        ),
        SourceSpec::Image(i) => (
            i.url.as_str(),
            i.secret_ref.as_ref(),
            i.tag_selection.as_ref(),
            false,
            i.sub_path.as_deref().filter(|p| !p.trim_matches('/').is_empty()),
        ),
    };
    let secret = secret.map(|s| s.name.as_str());
    let auth = read_secret_ref(ctx, secret).await?;
    let credentials = credentials_note(ctx, secret);
    let session = ctx.source.session(&auth).map_err(ReconcileError::Session)?;
    let fetched = resolve(session.as_ref(), image, selection, &credentials).await?;
    Ok(Resolved {
        fetched,
        how: How::Registry {
            session,
            credentials,
            expect_bundle,
            sub_path,
        },
    })
}

/// The fetch phase: the repository's files (pulled, or inline), `subPath` applied.
pub(super) async fn fetch(resolved: &Resolved<'_>) -> Result<Contents, ReconcileError> {
    let (session, credentials, expect_bundle, sub_path) = match &resolved.how {
        How::Inline(inline) => {
            return Ok(Contents {
                is_bundle: false,
                files: crate::repository::inline_files(&inline.paths),
                images_lock: None,
            });
        }
        How::Registry {
            session,
            credentials,
            expect_bundle,
            sub_path,
        } => (session, credentials, *expect_bundle, *sub_path),
    };
    let fetched = &resolved.fetched;
    let mut contents = pull(session.as_ref(), fetched, expect_bundle, credentials).await?;
    if let Some(sub_path) = sub_path {
        contents.files = crate::repository::sub_path(&contents.files, sub_path).map_err(|reason| {
            ReconcileError::SubPath {
                image: fetched.clone(),
                reason,
            }
        })?;
    }
    Ok(contents)
}

/// Which credentials a registry request used, for error messages (never the values).
pub(super) fn credentials_note(ctx: &Context, secret: Option<&str>) -> String {
    match secret {
        Some(name) => format!(
            " with the credentials of Secret {}/{name}",
            ctx.settings.namespace
        ),
        None => String::new(),
    }
}

/// Step 1: the credentials the repository names (anonymous without a secretRef).
pub(super) async fn read_secret_ref(
    ctx: &Context,
    secret: Option<&str>,
) -> Result<RegistryAuth, ReconcileError> {
    let Some(name) = secret else {
        return Ok(RegistryAuth::default());
    };
    let namespace = ctx.settings.namespace.clone();
    let missing = || ReconcileError::SecretMissing {
        namespace: namespace.clone(),
        name: name.to_string(),
        field: "spec.fetch secretRef",
    };
    if let Some(cache) = &ctx.secrets {
        // The watch cache saves an API read on every resync; a Secret change re-triggers us.
        let secret = cache
            .get(&ObjectRef::new(name).within(&namespace))
            .ok_or_else(missing)?;
        return read_secret(&secret);
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|source| ReconcileError::SecretRead {
            namespace: namespace.clone(),
            name: name.to_string(),
            source,
        })?
        .ok_or_else(missing)?;
    read_secret(&secret)
}

/// Step 2: `repository@digest` for `image`, through tagSelection when there is no tag.
pub async fn resolve(
    session: &dyn Session,
    image: &str,
    selection: Option<&crate::api::VersionSelection>,
    credentials: &str,
) -> Result<String, ReconcileError> {
    let parts = split_image(image);
    if let Some(digest) = parts.digest {
        // A digest is immutable: nothing to ask the registry.
        return Ok(format!("{}@{digest}", parts.name));
    }
    let tag = match (parts.tag, selection) {
        (Some(tag), _) => tag,
        (None, Some(selection)) => {
            let tags = list_tags(session, &parts.name, credentials).await?;
            let chosen = crate::repository::versions::select_tag(&tags, selection).map_err(|source| {
                ReconcileError::TagSelection {
                    repository: parts.name.clone(),
                    source,
                }
            })?;
            match chosen {
                Some(tag) => tag.to_string(),
                None => {
                    return Err(ReconcileError::NoTagMatches {
                        repository: parts.name.clone(),
                        available: describe_tags(&tags),
                    });
                }
            }
        }
        (None, None) => "latest".to_string(),
    };
    let tagged = format!("{}:{tag}", parts.name);
    let digest = session
        .resolve(&tagged)
        .await
        .map_err(|source| ReconcileError::Resolve {
            credentials: credentials.to_string(),
            image: tagged.clone(),
            source,
        })?;
    match digest {
        Some(digest) => Ok(format!("{}@{digest}", parts.name)),
        None => {
            let tags = list_tags(session, &parts.name, credentials).await?;
            Err(ReconcileError::TagNotFound {
                repository: parts.name,
                tag,
                available: describe_tags(&tags),
            })
        }
    }
}

pub(super) async fn list_tags(
    session: &dyn Session,
    repository: &str,
    credentials: &str,
) -> Result<Vec<String>, ReconcileError> {
    session
        .list_tags(repository)
        .await
        .map_err(|source| ReconcileError::ListTags {
            credentials: credentials.to_string(),
            repository: repository.to_string(),
            source,
        })
}

/// The tags a person would pick from: imgpkg internals (`*.imgpkg`) left out, the list bounded.
pub fn describe_tags(tags: &[String]) -> String {
    const SHOWN: usize = 20;
    let visible: Vec<&str> = tags
        .iter()
        .map(String::as_str)
        .filter(|t| !t.ends_with(".imgpkg"))
        .collect();
    if visible.is_empty() {
        return "none".to_string();
    }
    let mut text = visible.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", ");
    if visible.len() > SHOWN {
        text.push_str(&format!(" and {} more", visible.len() - SHOWN));
    }
    text
}

/// Step 3: pull; a bundle must be one, a plain image is never read as a bundle.
pub(super) async fn pull(
    session: &dyn Session,
    image: &str,
    expect_bundle: bool,
    credentials: &str,
) -> Result<Contents, ReconcileError> {
    let mut contents = session
        .fetch(image, expect_bundle)
        .await
        .map_err(|source| ReconcileError::Fetch {
            credentials: credentials.to_string(),
            image: image.to_string(),
            source,
        })?;
    if expect_bundle && !contents.is_bundle {
        return Err(ReconcileError::NotBundle {
            image: image.to_string(),
        });
    }
    if !expect_bundle {
        contents.images_lock = None;
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::source::{BoxFuture, SourceError};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Tags {
        tags: Vec<(String, String)>,
        calls: Mutex<Vec<String>>,
    }

    impl Session for Tags {
        fn resolve<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<String>, SourceError>> {
            self.calls.lock().unwrap().push(format!("resolve {image}"));
            let found = self
                .tags
                .iter()
                .find(|(t, _)| image.ends_with(&format!(":{t}")))
                .map(|(_, d)| d.clone());
            Box::pin(async move { Ok(found) })
        }
        fn list_tags<'a>(&'a self, repository: &'a str) -> BoxFuture<'a, Result<Vec<String>, SourceError>> {
            self.calls.lock().unwrap().push(format!("list {repository}"));
            let tags = self.tags.iter().map(|(t, _)| t.clone()).collect();
            Box::pin(async move { Ok(tags) })
        }
        fn fetch<'a>(&'a self, _: &'a str, _: bool) -> BoxFuture<'a, Result<Contents, SourceError>> {
            Box::pin(async move { Err(SourceError::Other("not used".into())) })
        }
    }

    #[tokio::test]
    async fn resolve_digest_tag_and_latest() {
        let session = Tags {
            tags: vec![
                ("latest".into(), "sha256:l".into()),
                ("1.0.0".into(), "sha256:a".into()),
            ],
            ..Default::default()
        };
        assert_eq!(
            resolve(&session, "r.example/x@sha256:d", None, "").await.unwrap(),
            "r.example/x@sha256:d"
        );
        assert!(
            session.calls.lock().unwrap().is_empty(),
            "a digest needs no registry request"
        );
        assert_eq!(
            resolve(&session, "r.example/x:1.0.0", None, "").await.unwrap(),
            "r.example/x@sha256:a"
        );
        assert_eq!(
            resolve(&session, "r.example:5000/x", None, "").await.unwrap(),
            "r.example:5000/x@sha256:l"
        );
        assert_eq!(
            *session.calls.lock().unwrap(),
            ["resolve r.example/x:1.0.0", "resolve r.example:5000/x:latest"]
        );
    }

    #[tokio::test]
    async fn missing_tag_lists_what_exists() {
        let mut tags: Vec<(String, String)> = (0..25)
            .map(|i| (format!("1.{i}.0"), "sha256:a".to_string()))
            .collect();
        tags.push(("sha256-abc.imgpkg".into(), "sha256:b".into()));
        let session = Tags {
            tags,
            ..Default::default()
        };
        let err = resolve(&session, "r.example/x:2.0.0", None, "")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("tag \"2.0.0\" not found in r.example/x; tags there: 1.0.0, 1.1.0"),
            "{text}"
        );
        assert!(text.ends_with("and 5 more"), "{text}");
        assert!(!text.contains(".imgpkg"));
        assert_eq!(describe_tags(&["a.imgpkg".to_string()]), "none");
    }

    #[test]
    fn sources() {
        let repo = |fetch: serde_json::Value| -> PackageRepository {
            serde_json::from_value(
                serde_json::json!({"apiVersion": "install.package.carvel.dev/v1alpha1",
                "kind": "PackageRepository", "metadata": {"name": "a"}, "spec": {"fetch": fetch}}),
            )
            .unwrap()
        };
        assert!(matches!(
            select_source(&repo(serde_json::json!({"inline": {"paths": {}}}))),
            Ok(SourceSpec::Inline(_))
        ));
        let all =
            repo(serde_json::json!({"inline": {}, "image": {"url": "x"}, "imgpkgBundle": {"image": "y"}}));
        assert_eq!(
            select_source(&all).unwrap_err().to_string(),
            "spec.fetch names 3 sources (imgpkgBundle and image and inline): set exactly one of imgpkgBundle, image or inline"
        );
    }
}
