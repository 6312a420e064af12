//! Kubernetes names for Packages whose `refName.version` is not a DNS-1123 subdomain.
//!
//! Semver build metadata (`1.0.0+vmware.1`) and uppercase prerelease tags are legal versions but
//! illegal object names. kapp-controller hides this behind its aggregated API; a CRD cannot, so
//! such a Package is stored under a deterministic DNS-1123 name and keeps its original name in an
//! annotation.
//!
//! The mapping is injective in practice and disjoint from every valid name: a mapped name ends
//! in a label made of `0` and 15 decimal digits of a SHA-256 of the original. A valid Package
//! name never ends that way (its last label belongs to a semver version, where a numeric
//! identifier cannot have a leading zero), so `1.0.0+vmware.1` can never take the name of the
//! valid `1.0.0--vmware.1`, and `1.0.0-RC.1` never that of `1.0.0-rc.1`. Two mapped originals
//! differ in the hash; if they ever shared one, the repository is refused, never merged.
use sha2::{Digest, Sha256};

/// Annotation on a stored Package holding its original `refName.version` when the stored name
/// differs from it.
pub const ORIGINAL_NAME_ANNOTATION: &str = "pkgr.carvel.dev/original-name";

/// Longest DNS-1123 subdomain Kubernetes accepts.
pub const MAX_NAME_LENGTH: usize = 253;

/// Decimal digits of the hash in the last label (after its leading `0`): 10^15 values, so a
/// clash among even a million mapped names of one repository has odds below one in 2,000.
const HASH_DIGITS: usize = 15;

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
/// A valid DNS-1123 subdomain is kept as it is. Otherwise the readable part is the original in
/// lowercase, with every character Kubernetes rejects (`+` above all) as `-`, labels trimmed of
/// edge hyphens and shortened to fit; the last label is `0` and the hash digits
/// (`pkg.corp.com.1.0.0+vmware.1` → `pkg.corp.com.1.0.0-vmware.1.0<15 digits>`).
pub fn stored_name(original: &str) -> String {
    if is_dns1123_subdomain(original) {
        return original.to_string();
    }
    let hash = hash_label(original);
    let labels: Vec<String> = original
        .split('.')
        .map(|label| {
            let cleaned: String = label
                .chars()
                .map(|c| match c {
                    'a'..='z' | '0'..='9' | '-' => c,
                    'A'..='Z' => c.to_ascii_lowercase(),
                    _ => '-',
                })
                .collect();
            cleaned.trim_matches('-').to_string()
        })
        .filter(|label| !label.is_empty())
        .collect();
    let mut prefix = labels.join(".");
    let room = MAX_NAME_LENGTH - hash.len() - 1;
    if prefix.len() > room {
        // Only ASCII remains, so any byte index is a character boundary.
        prefix.truncate(room);
    }
    let prefix = prefix.trim_end_matches(['-', '.']);
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}.{hash}")
    }
}

/// `0` followed by [`HASH_DIGITS`] decimal digits of SHA-256(original).
fn hash_label(original: &str) -> String {
    let digest = Sha256::digest(original.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let n = u64::from_be_bytes(first) % 10u64.pow(HASH_DIGITS as u32);
    format!("0{n:0width$}", width = HASH_DIGITS)
}

/// Whether `name` has the shape [`stored_name`] gives a name it had to map (for reports).
pub fn is_mapped_name(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or_default();
    last.len() == HASH_DIGITS + 1 && last.starts_with('0') && last.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(original: &str) -> String {
        let stored = stored_name(original);
        assert!(is_dns1123_subdomain(&stored), "{original:?} -> {stored:?}");
        assert!(is_mapped_name(&stored), "{original:?} -> {stored:?}");
        stored
    }

    #[test]
    fn valid_names_are_kept() {
        for name in [
            "simple-app.corp.com.1.0.0",
            "a.b.c.1.2.3-rc.1",
            "x",
            "pkg.corp.com.1.0.0--vmware.1",
        ] {
            assert_eq!(stored_name(name), name);
            assert!(!is_mapped_name(name));
        }
    }

    #[test]
    fn build_metadata_becomes_a_hyphen_and_a_hash_label() {
        let stored = mapped("metrics-server.tanzu.vmware.com.0.5.1+vmware.1-tkg.1");
        assert!(
            stored.starts_with("metrics-server.tanzu.vmware.com.0.5.1-vmware.1-tkg.1.0"),
            "{stored}"
        );
        assert_eq!(
            stored.len(),
            "metrics-server.tanzu.vmware.com.0.5.1-vmware.1-tkg.1.".len() + HASH_DIGITS + 1
        );
    }

    #[test]
    fn versions_upstream_keeps_apart_stay_apart() {
        for (a, b) in [
            ("pkg.corp.com.1.0.0+vmware.1", "pkg.corp.com.1.0.0--vmware.1"),
            ("pkg.corp.com.1.0.0+vmware.1", "pkg.corp.com.1.0.0-vmware.1"),
            ("pkg.corp.com.1.0.0-RC.1", "pkg.corp.com.1.0.0-rc.1"),
            ("pkg.corp.com.1.0.0-RC.1", "pkg.corp.com.1.0.0-Rc.1"),
            ("pkg.corp.com.1.0.0+a.b", "pkg.corp.com.1.0.0+a-b"),
        ] {
            assert_ne!(stored_name(a), stored_name(b), "{a} / {b}");
        }
        // The mapped form of one never equals another original that is valid as it is.
        assert_ne!(stored_name("pkg.corp.com.1.0.0-RC.1"), "pkg.corp.com.1.0.0-rc.1");
        assert!(mapped("pkg.corp.com.1.0.0-RC.1").starts_with("pkg.corp.com.1.0.0-rc.1.0"));
    }

    #[test]
    fn a_valid_semver_name_never_has_the_mapped_shape() {
        // The last label of a Package name is a semver identifier: no leading zero when numeric.
        for version in ["1.0.0-rc.0123456789012345", "1.0.0-0123456789012345"] {
            assert!(semver::Version::parse(version).is_err(), "{version}");
        }
        assert!(semver::Version::parse("1.0.0-rc.0a23456789012345").is_ok());
        assert!(!is_mapped_name("pkg.corp.com.1.0.0-rc.0a23456789012345"));
    }

    #[test]
    fn labels_that_would_start_or_end_with_a_hyphen_are_trimmed() {
        let name = mapped("pkg.corp.com.1.0.0-rc.-1");
        assert!(name.starts_with("pkg.corp.com.1.0.0-rc.1.0"), "{name}");
    }

    #[test]
    fn long_names_are_shortened_and_stay_distinct_and_deterministic() {
        let long_a = format!("pkg.corp.com.1.0.0+{}a", "b".repeat(300));
        let long_b = format!("pkg.corp.com.1.0.0+{}c", "b".repeat(300));
        let a = mapped(&long_a);
        let b = mapped(&long_b);
        assert!(a.len() <= MAX_NAME_LENGTH);
        assert!(a.starts_with("pkg.corp.com.1.0.0-bbb"));
        assert_ne!(a, b);
        assert_eq!(a, stored_name(&long_a), "deterministic");
    }

    #[test]
    fn anything_at_all_maps_to_a_valid_name() {
        for name in ["", "+", "..", "-a-", "\u{fc}.b.c", "A B/C", &"x.".repeat(200)] {
            mapped(name);
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
