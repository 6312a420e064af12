//! The tag each top-level image gets in the destination repository: imgpkg's
//! `sha256-<hex>.imgpkg`, or with `--repo-based-tags` one that names the repository it came from,
//! cut and cleaned exactly as imgpkg's `RepoBasedTagGenerator` does (so both tools write, and
//! skip, the same tags).
use crate::registry::Digest;

/// How much of the repository path a repo-based tag keeps (from its end): with `-sha256-`, 64 hex
/// digits and `.imgpkg` it makes at most 128 characters, the registry limit for a tag.
const KEPT_PATH_CHARS: usize = 49;

/// Which tag a top-level image is pushed under.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TagStyle {
    /// `sha256-<hex>.imgpkg`.
    #[default]
    Digest,
    /// `<repository path>-sha256-<hex>.imgpkg` (`--repo-based-tags`).
    RepoBased,
}

impl TagStyle {
    /// The tag of the image `digest`, first reached through `origin` (its ImagesLock value, or
    /// where it was read from: `registry/path[:tag]@sha256:…`).
    pub fn tag(self, origin: &str, digest: &Digest) -> String {
        match self {
            TagStyle::Digest => crate::bundle::push::imgpkg_tag(digest),
            TagStyle::RepoBased => repo_based_tag(origin, digest),
        }
    }
}

/// imgpkg's repo-based tag: the path of `origin` without its registry host, `/` turned into `-`,
/// characters a tag cannot hold dropped, its last 49 characters, then `-sha256-<hex>.imgpkg`.
pub fn repo_based_tag(origin: &str, digest: &Digest) -> String {
    // imgpkg splits the raw string: the first `/`-separated element is taken as the host, and a
    // `:tag` before the `@` stays in the path (its `:` is dropped with the other invalid chars).
    let before_digest = origin.split('@').next().unwrap_or_default();
    let path = before_digest.split('/').skip(1).collect::<Vec<_>>().join("-");
    let cleaned = clean(&path);
    let cut = clean(&cleaned[cleaned.len().saturating_sub(KEPT_PATH_CHARS)..]);
    let tag = format!("{cut}-{}.imgpkg", digest.dashed());
    // An empty path would leave a leading `-`, which registries reject as a manifest reference.
    let tag = tag.strip_prefix('-').unwrap_or(&tag);
    tag.replace(':', "-")
}

/// What imgpkg's `^[^a-zA-Z0-9_]+|[^a-zA-Z0-9._-]+` leaves: no leading run of characters a tag
/// cannot start with, and nothing outside `[a-zA-Z0-9._-]` (the result is ASCII).
fn clean(s: &str) -> String {
    let can_start = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let can_hold = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    s.trim_start_matches(|c: char| !can_start(c))
        .chars()
        .filter(|&c| can_hold(c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "61cb2e3a8522bfd9d4b6219cb9e382df151ba6d4fcc4c96f870ee4e1cffbbf9c";

    fn tag(repository: &str) -> String {
        let digest = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        let tag = repo_based_tag(&format!("{repository}@sha256:{HEX}"), &digest);
        assert!(tag.len() <= 128, "{tag} is longer than a registry accepts");
        tag
    }

    fn expected(path: &str) -> String {
        format!("{path}-sha256-{HEX}.imgpkg")
    }

    #[test]
    fn the_registry_host_is_dropped_and_nested_paths_are_dashed() {
        assert_eq!(
            tag("registry.foo.bar/some/application/app"),
            expected("some-application-app")
        );
        assert_eq!(tag("127.0.0.1:5000/src/app"), expected("src-app"));
        assert_eq!(tag("index.docker.io/library/nginx"), expected("library-nginx"));
    }

    #[test]
    fn a_leading_run_that_cannot_start_a_tag_is_dropped_but_underscore_stays() {
        assert_eq!(
            tag("index.docker.io/_test-repo/simple-app-test"),
            expected("_test-repo-simple-app-test")
        );
        assert_eq!(
            tag("index.docker.io/*-test-repo/simple-app-test"),
            expected("test-repo-simple-app-test")
        );
        assert_eq!(
            tag("index.docker.io/.test-repo/simple-app-test"),
            expected("test-repo-simple-app-test")
        );
    }

    #[test]
    fn long_paths_keep_their_last_49_characters() {
        let long = "index.docker.io/test-path/sample-path/verification-path/sample-path/test-repo/test-repo/simple-app-test";
        assert_eq!(
            tag(long),
            expected("h-sample-path-test-repo-test-repo-simple-app-test")
        );
        assert_eq!(tag(long).len(), 128);
        // Characters a tag cannot hold are dropped before the cut.
        let odd = "index.docker.io/tes%t-path/sample-path/verific&*ation-path*&^%$/sample-pa(th/test-repo/t)est-repo/simple-app-test";
        assert_eq!(
            tag(odd),
            expected("h-sample-path-test-repo-test-repo-simple-app-test")
        );
        // Exactly 49 characters of path are kept whole.
        assert_eq!(
            tag("index.docker.io/test-path/dev-pkg-apiextensions-storageversion-cmd-migratee"),
            expected("dev-pkg-apiextensions-storageversion-cmd-migratee")
        );
        assert_eq!(
            tag("index.docker.io/test-path/dev-pkg-apiextensions-storageversion-cmd-migrate-test-image"),
            expected("iextensions-storageversion-cmd-migrate-test-image")
        );
    }

    #[test]
    fn a_cut_that_starts_badly_is_cleaned_again() {
        assert_eq!(
            tag("index.docker.io/test-path/.dev-pkg-apiextensions-storageversion-cmd-migrate"),
            expected("dev-pkg-apiextensions-storageversion-cmd-migrate")
        );
        assert_eq!(
            tag("index.docker.io/test-path/dev-pkg-ap.extensions-storageversion-cmd-migrate-test-image"),
            expected("extensions-storageversion-cmd-migrate-test-image")
        );
        assert_eq!(
            tag("index.docker.io/test-path/dev-pkg-api-extensions-storageversion-cmd-migrate-test-image"),
            expected("extensions-storageversion-cmd-migrate-test-image")
        );
        assert_eq!(
            tag("index.docker.io/test-path/dev-pkg-api_extensions-storageversion-cmd-migrate-test-image"),
            expected("_extensions-storageversion-cmd-migrate-test-image")
        );
    }

    #[test]
    fn a_tag_in_the_origin_stays_in_the_path_without_its_colon() {
        assert_eq!(tag("reg.io/org/app:v1.2"), expected("org-appv1.2"));
    }

    #[test]
    fn without_a_path_only_the_digest_part_is_left() {
        assert_eq!(tag("nginx"), format!("sha256-{HEX}.imgpkg"));
        let digest = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(repo_based_tag("", &digest), format!("sha256-{HEX}.imgpkg"));
    }

    #[test]
    fn the_default_style_is_imgpkgs_digest_tag() {
        let digest = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(
            TagStyle::Digest.tag("reg.io/org/app@sha256:x", &digest),
            format!("sha256-{HEX}.imgpkg")
        );
        assert_eq!(
            TagStyle::RepoBased.tag(&format!("reg.io/org/app@sha256:{HEX}"), &digest),
            expected("org-app")
        );
    }
}
