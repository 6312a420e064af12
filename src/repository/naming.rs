//! Kubernetes names for Packages whose `refName.version` is not a DNS-1123 subdomain.
//!
//! Semver build metadata (`1.0.0+vmware.1`) and uppercase prerelease tags are legal versions but
//! illegal object names. kapp-controller hides this behind its aggregated API; a CRD cannot, so
//! such a Package is stored under a readable, deterministic DNS-1123 name and keeps its original
//! name in an annotation.
use sha2::{Digest, Sha256};

/// Annotation on a stored Package holding its original `refName.version` when the stored name
/// differs from it.
pub const ORIGINAL_NAME_ANNOTATION: &str = "pkgr.carvel.dev/original-name";

/// Longest DNS-1123 subdomain Kubernetes accepts.
pub const MAX_NAME_LENGTH: usize = 253;

/// What `+` (build metadata) becomes: a double hyphen, which a semver version can only contain
/// inside a prerelease identifier that starts with `-`, so real versions almost never clash.
const BUILD_SEPARATOR: &str = "--";

/// Hex digits of the hash suffix added when a name had to be shortened or lossily cleaned.
const HASH_LEN: usize = 10;

/// Kubernetes' `IsDNS1123Subdomain`: at most 253 characters of `[a-z0-9.-]`, each
/// dot-separated label non-empty and starting and ending with `[a-z0-9]`.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LENGTH && dns1123_labels(name)
}

/// Every dot-separated label is non-empty, of `[a-z0-9-]`, and starts and ends with `[a-z0-9]`
/// (the shape half of [`is_dns1123_subdomain`], without the length limit).
pub(crate) fn dns1123_labels(name: &str) -> bool {
    name.split('.').all(|label| {
        let b = label.as_bytes();
        let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        !b.is_empty() && edge(b[0]) && edge(b[b.len() - 1]) && b.iter().all(|&c| edge(c) || c == b'-')
    })
}

/// The name a Package called `original` (its `refName.version`) is stored under.
///
/// A valid DNS-1123 subdomain is kept as it is. Otherwise uppercase becomes lowercase and `+`
/// becomes `--` (`pkg.corp.com.1.0.0+vmware.1` → `pkg.corp.com.1.0.0--vmware.1`). Anything else
/// that Kubernetes rejects (other characters, labels starting or ending with `-`, empty labels,
/// more than 253 characters) is cleaned up and a hash of the original is appended, so distinct
/// originals keep distinct names.
pub fn stored_name(original: &str) -> String {
    if is_dns1123_subdomain(original) {
        return original.to_string();
    }
    let mut mapped = String::with_capacity(original.len() + 4);
    for c in original.chars() {
        match c {
            'A'..='Z' => mapped.push(c.to_ascii_lowercase()),
            '+' => mapped.push_str(BUILD_SEPARATOR),
            _ => mapped.push(c),
        }
    }
    if is_dns1123_subdomain(&mapped) {
        return mapped;
    }
    hashed(original, &mapped)
}

/// A cleaned, possibly shortened form of `mapped` with a hash of `original` appended.
fn hashed(original: &str, mapped: &str) -> String {
    let hash = hex::encode(Sha256::digest(original.as_bytes()));
    let hash = &hash[..HASH_LEN];
    let labels: Vec<String> = mapped
        .split('.')
        .map(|label| {
            let cleaned: String = label
                .chars()
                .map(|c| {
                    if c.is_ascii_lowercase() || c.is_ascii_digit() {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            cleaned.trim_matches('-').to_string()
        })
        .filter(|label| !label.is_empty())
        .collect();
    let mut prefix = labels.join(".");
    let room = MAX_NAME_LENGTH - HASH_LEN - 1;
    if prefix.len() > room {
        // Only ASCII remains, so any byte index is a character boundary.
        prefix.truncate(room);
    }
    let prefix = prefix.trim_end_matches(['-', '.']);
    if prefix.is_empty() {
        hash.to_string()
    } else {
        format!("{prefix}-{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_kept() {
        for name in ["simple-app.corp.com.1.0.0", "a.b.c.1.2.3-rc.1", "x"] {
            assert_eq!(stored_name(name), name);
        }
    }

    #[test]
    fn build_metadata_becomes_a_double_hyphen() {
        assert_eq!(
            stored_name("metrics-server.tanzu.vmware.com.0.5.1+vmware.1-tkg.1"),
            "metrics-server.tanzu.vmware.com.0.5.1--vmware.1-tkg.1"
        );
    }

    #[test]
    fn uppercase_becomes_lowercase() {
        assert_eq!(stored_name("pkg.corp.com.1.0.0-RC.1"), "pkg.corp.com.1.0.0-rc.1");
    }

    #[test]
    fn a_build_tag_does_not_clash_with_the_prerelease_of_the_same_text() {
        assert_ne!(
            stored_name("pkg.corp.com.1.0.0+vmware.1"),
            stored_name("pkg.corp.com.1.0.0-vmware.1")
        );
    }

    #[test]
    fn labels_that_would_start_or_end_with_a_hyphen_get_a_hash() {
        let name = stored_name("pkg.corp.com.1.0.0-rc.-1");
        assert!(is_dns1123_subdomain(&name), "{name}");
        assert!(name.starts_with("pkg.corp.com.1.0.0-rc.1-"), "{name}");
        assert_eq!(name.len(), "pkg.corp.com.1.0.0-rc.1-".len() + HASH_LEN);
    }

    #[test]
    fn long_names_are_shortened_with_a_hash_and_stay_distinct() {
        let long_a = format!("pkg.corp.com.1.0.0+{}a", "b".repeat(300));
        let long_b = format!("pkg.corp.com.1.0.0+{}c", "b".repeat(300));
        let a = stored_name(&long_a);
        let b = stored_name(&long_b);
        assert!(is_dns1123_subdomain(&a), "{a}");
        assert!(a.len() <= MAX_NAME_LENGTH);
        assert!(a.starts_with("pkg.corp.com.1.0.0--bbb"));
        assert_ne!(a, b);
        assert_eq!(a, stored_name(&long_a), "deterministic");
    }

    #[test]
    fn anything_at_all_maps_to_a_valid_name() {
        for name in ["", "+", "..", "-a-", "ü.b.c", "A B/C", &"x.".repeat(200)] {
            let stored = stored_name(name);
            assert!(is_dns1123_subdomain(&stored), "{name:?} -> {stored:?}");
        }
    }

    #[test]
    fn dns_check_follows_kubernetes() {
        assert!(is_dns1123_subdomain("a-b.c0"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain("-a.b"));
        assert!(!is_dns1123_subdomain("a.b-"));
        assert!(!is_dns1123_subdomain("A.b"));
        assert!(!is_dns1123_subdomain("a_b"));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
        assert!(is_dns1123_subdomain(&"a".repeat(253)));
    }
}
