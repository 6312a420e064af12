//! Which of imgpkg's IaaS keychains the environment turns on (`IMGPKG_ACTIVE_KEYCHAINS`,
//! `IMGPKG_ENABLE_IAAS_AUTH`), parsed as imgpkg parses them and refused in its words.
use std::collections::HashMap;

/// One of imgpkg's keychain names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IaasKeychainKind {
    /// `gke`: Google Container Registry and Artifact Registry.
    Gke,
    /// `ecr`: Amazon Elastic Container Registry.
    Ecr,
    /// `aks`: Azure Container Registry.
    Aks,
    /// `github`: GitHub Container Registry (`ghcr.io`).
    Github,
}

impl IaasKeychainKind {
    /// The order `IMGPKG_ENABLE_IAAS_AUTH=true` turns them on in (imgpkg's).
    pub const ALL: [IaasKeychainKind; 4] = [
        IaasKeychainKind::Gke,
        IaasKeychainKind::Ecr,
        IaasKeychainKind::Aks,
        IaasKeychainKind::Github,
    ];

    /// The name in `IMGPKG_ACTIVE_KEYCHAINS`.
    pub fn name(self) -> &'static str {
        match self {
            IaasKeychainKind::Gke => "gke",
            IaasKeychainKind::Ecr => "ecr",
            IaasKeychainKind::Aks => "aks",
            IaasKeychainKind::Github => "github",
        }
    }

    /// The Docker credential helper (`docker-credential-<name>`) that stands in for the SDK
    /// imgpkg links in: the ECR and ACR helpers, and Google's for what the metadata server
    /// does not cover (service-account key files, gcloud logins).
    pub(super) fn helper(self) -> Option<&'static str> {
        match self {
            IaasKeychainKind::Gke => Some("gcr"),
            IaasKeychainKind::Ecr => Some("ecr-login"),
            IaasKeychainKind::Aks => Some("acr-env"),
            IaasKeychainKind::Github => None,
        }
    }
}

/// An `IMGPKG_ACTIVE_KEYCHAINS` entry that names no keychain. The text is imgpkg's, to the
/// letter (its doubled `]]` included), because scripts match on it.
#[derive(Debug, thiserror::Error)]
#[error("Unable to load keychain for {name}, available keychains [aks, ecr, gke, github]]")]
pub struct UnknownKeychain {
    pub name: String,
}

/// The keychains the environment turns on, in the order they are consulted.
///
/// As imgpkg: `IMGPKG_ENABLE_IAAS_AUTH=true` (any case) turns on all four and
/// `IMGPKG_ACTIVE_KEYCHAINS` is then not read; otherwise `IMGPKG_ACTIVE_KEYCHAINS` is a
/// comma-separated list of lower-case names, each trimmed of spaces; an empty entry or an
/// unknown name is refused.
pub fn active_keychains(env: &HashMap<String, String>) -> Result<Vec<IaasKeychainKind>, UnknownKeychain> {
    if let Some(value) = env.get("IMGPKG_ENABLE_IAAS_AUTH") {
        if value.eq_ignore_ascii_case("true") {
            return Ok(IaasKeychainKind::ALL.to_vec());
        }
        if !value.eq_ignore_ascii_case("false") && !value.is_empty() {
            tracing::warn!(
                "IMGPKG_ENABLE_IAAS_AUTH={value:?} is not \"true\", so the IaaS keychains stay off \
                 (imgpkg reads only the word true); set it to true to turn them all on, or name \
                 them in IMGPKG_ACTIVE_KEYCHAINS"
            );
        }
    }
    let Some(list) = env.get("IMGPKG_ACTIVE_KEYCHAINS").filter(|l| !l.is_empty()) else {
        return Ok(Vec::new());
    };
    let mut kinds = Vec::new();
    for entry in list.split(',') {
        let name = entry.trim();
        let kind = IaasKeychainKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| UnknownKeychain {
                name: name.to_string(),
            })?;
        // A name given twice adds nothing: the first copy already answered.
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::auth::tests::env;

    fn names(env_pairs: &[(&str, &str)]) -> Result<Vec<&'static str>, String> {
        active_keychains(&env(env_pairs))
            .map(|kinds| kinds.into_iter().map(IaasKeychainKind::name).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn active_keychains_parse_as_imgpkg() {
        assert_eq!(names(&[]), Ok(vec![]));
        assert_eq!(names(&[("IMGPKG_ACTIVE_KEYCHAINS", "")]), Ok(vec![]));
        assert_eq!(names(&[("IMGPKG_ACTIVE_KEYCHAINS", "ecr")]), Ok(vec!["ecr"]));
        assert_eq!(
            names(&[("IMGPKG_ACTIVE_KEYCHAINS", " github , gke,aks ,ecr,gke")]),
            Ok(vec!["github", "gke", "aks", "ecr"]),
            "order kept, spaces trimmed, repeats dropped"
        );
        assert_eq!(
            names(&[("IMGPKG_ACTIVE_KEYCHAINS", "gke,random-name")]),
            Err(
                "Unable to load keychain for random-name, available keychains [aks, ecr, gke, github]]"
                    .into()
            )
        );
        // Names are case-sensitive, and an empty entry is a name too (imgpkg's split).
        assert!(
            names(&[("IMGPKG_ACTIVE_KEYCHAINS", "GKE")])
                .unwrap_err()
                .contains("for GKE,")
        );
        assert!(
            names(&[("IMGPKG_ACTIVE_KEYCHAINS", "gke,")])
                .unwrap_err()
                .contains("for , available")
        );
        assert!(
            names(&[("IMGPKG_ACTIVE_KEYCHAINS", "  ")])
                .unwrap_err()
                .contains("for , available")
        );
        // The old names kapp-controller documents (gcr, acr) are not imgpkg's.
        assert!(names(&[("IMGPKG_ACTIVE_KEYCHAINS", "gcr")]).is_err());
    }

    #[test]
    fn enable_iaas_auth_turns_on_all_and_ignores_the_list() {
        let all = Ok(vec!["gke", "ecr", "aks", "github"]);
        assert_eq!(names(&[("IMGPKG_ENABLE_IAAS_AUTH", "true")]), all);
        assert_eq!(
            names(&[
                ("IMGPKG_ENABLE_IAAS_AUTH", "TRUE"),
                ("IMGPKG_ACTIVE_KEYCHAINS", "nonsense")
            ]),
            all
        );
        assert_eq!(names(&[("IMGPKG_ENABLE_IAAS_AUTH", "false")]), Ok(vec![]));
        // imgpkg compares with "true" only: 1 or yes leave them off (with a warning here).
        assert_eq!(names(&[("IMGPKG_ENABLE_IAAS_AUTH", "1")]), Ok(vec![]));
        assert_eq!(
            names(&[
                ("IMGPKG_ENABLE_IAAS_AUTH", "false"),
                ("IMGPKG_ACTIVE_KEYCHAINS", "aks")
            ]),
            Ok(vec!["aks"])
        );
        assert!(
            names(&[
                ("IMGPKG_ENABLE_IAAS_AUTH", "no"),
                ("IMGPKG_ACTIVE_KEYCHAINS", "x")
            ])
            .is_err()
        );
    }
}
