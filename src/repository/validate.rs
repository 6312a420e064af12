//! kapp-controller's validation of Package and PackageMetadata (its `validations.go`), with its
//! wording, returning every violation rather than the first.
use super::error::ProblemKind;
use super::naming::MAX_NAME_LENGTH;
use super::versions::Constraints;
use crate::api::{ConstraintSelection, PackageMetadataSpec, PackageSpec};

const DNS1123_SUBDOMAIN_RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character \
     (e.g. 'example.com', regex used for validation is \
     '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const THREE_SEGMENTS_RULE: &str = "should be a domain with at least three segments separated by dots";

fn invalid(field: &str, value: &str, rule: impl Into<String>) -> ProblemKind {
    ProblemKind::Invalid {
        field: field.to_string(),
        value: Some(value.to_string()),
        rule: rule.into(),
    }
}

fn required(field: &str, rule: &str) -> ProblemKind {
    ProblemKind::Invalid {
        field: field.to_string(),
        value: None,
        rule: rule.to_string(),
    }
}

/// apimachinery's `IsDNS1123Subdomain` messages (both may apply).
fn dns1123_subdomain_errors(name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > MAX_NAME_LENGTH {
        errors.push(format!("must be no more than {MAX_NAME_LENGTH} characters"));
    }
    if !super::naming::dns1123_labels(name) {
        errors.push(DNS1123_SUBDOMAIN_RULE.to_string());
    }
    errors
}

/// apimachinery's `IsFullyQualifiedName`: a DNS-1123 subdomain with at least three segments.
fn fully_qualified_name(field: &str, name: &str, problems: &mut Vec<ProblemKind>) {
    if name.is_empty() {
        problems.push(required(field, ""));
        return;
    }
    let errors = dns1123_subdomain_errors(name);
    if !errors.is_empty() {
        problems.push(invalid(field, name, errors.join(",")));
        return;
    }
    if name.split('.').count() < 3 {
        problems.push(invalid(field, name, THREE_SEGMENTS_RULE));
    }
}

fn constraints(field: &str, selection: &Option<ConstraintSelection>, problems: &mut Vec<ProblemKind>) {
    let Some(expression) = selection.as_ref().and_then(|s| s.constraints.as_deref()) else {
        return;
    };
    if let Err(error) = Constraints::parse(expression) {
        let reason = match error {
            super::RepositoryError::InvalidConstraint { reason, .. } => reason,
            other => other.to_string(),
        };
        problems.push(invalid(field, expression, reason));
    }
}

/// Every rule a Package named `name` breaks.
pub(crate) fn package(name: &str, spec: &PackageSpec) -> Vec<ProblemKind> {
    let mut problems = Vec::new();
    let expected = format!("{}.{}", spec.ref_name, spec.version);
    if name != expected {
        problems.push(invalid(
            "metadata.name",
            name,
            "must be <spec.refName> + '.' + <spec.version>",
        ));
    }
    if spec.ref_name.is_empty() {
        problems.push(required("spec.refName", "cannot be empty"));
    } else {
        fully_qualified_name("spec.refName", &spec.ref_name, &mut problems);
    }
    if spec.version.is_empty() {
        problems.push(required("spec.version", "cannot be empty"));
    } else if let Err(error) = semver::Version::parse(&spec.version) {
        problems.push(invalid(
            "spec.version",
            &spec.version,
            format!("must be valid semver: {error}"),
        ));
    }
    constraints(
        "spec.kappControllerVersionSelection.constraints",
        &spec.kapp_controller_version_selection,
        &mut problems,
    );
    constraints(
        "spec.kubernetesVersionSelection.constraints",
        &spec.kubernetes_version_selection,
        &mut problems,
    );
    problems
}

/// Every rule a PackageMetadata named `name` breaks.
pub(crate) fn package_metadata(name: &str, _spec: &PackageMetadataSpec) -> Vec<ProblemKind> {
    let mut problems = Vec::new();
    fully_qualified_name("metadata.name", name, &mut problems);
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ref_name: &str, version: &str) -> PackageSpec {
        PackageSpec {
            ref_name: ref_name.into(),
            version: version.into(),
            ..Default::default()
        }
    }

    fn texts(problems: &[ProblemKind]) -> Vec<String> {
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_valid_package_passes() {
        assert!(package("a.corp.com.1.0.0", &spec("a.corp.com", "1.0.0")).is_empty());
        assert!(package("a.corp.com.1.0.0+b.1", &spec("a.corp.com", "1.0.0+b.1")).is_empty());
    }

    #[test]
    fn name_must_be_ref_name_dot_version() {
        assert_eq!(
            texts(&package("a.corp.com.v1", &spec("a.corp.com", "1.0.0"))),
            [
                "metadata.name: Invalid value: \"a.corp.com.v1\": must be <spec.refName> + '.' + <spec.version>"
            ]
        );
    }

    #[test]
    fn empty_fields_are_required() {
        let t = texts(&package(".", &spec("", "")));
        assert_eq!(
            t,
            [
                "spec.refName: Required value: cannot be empty",
                "spec.version: Required value: cannot be empty"
            ]
        );
    }

    #[test]
    fn ref_name_needs_three_segments() {
        let t = texts(&package("a.com.1.0.0", &spec("a.com", "1.0.0")));
        assert_eq!(
            t,
            [
                "spec.refName: Invalid value: \"a.com\": should be a domain with at least three segments separated by dots"
            ]
        );
    }

    #[test]
    fn ref_name_must_be_a_dns_subdomain() {
        let t = texts(&package("A_b.corp.com.1.0.0", &spec("A_b.corp.com", "1.0.0")));
        assert_eq!(t.len(), 1);
        assert!(
            t[0].starts_with("spec.refName: Invalid value: \"A_b.corp.com\": a lowercase RFC 1123 subdomain")
        );
        let long = format!("{}_x.corp.com", "a".repeat(260));
        let t = texts(&package(&format!("{long}.1.0.0"), &spec(&long, "1.0.0")));
        assert!(
            t[0].contains("must be no more than 253 characters,a lowercase"),
            "{t:?}"
        );
    }

    #[test]
    fn version_must_be_strict_semver() {
        for v in ["v1.0.0", "1.0", "1.0.0.0", "01.0.0", "1.0.0-"] {
            let t = texts(&package(&format!("a.corp.com.{v}"), &spec("a.corp.com", v)));
            assert_eq!(t.len(), 1, "{v}: {t:?}");
            assert!(
                t[0].starts_with(&format!(
                    "spec.version: Invalid value: \"{v}\": must be valid semver: "
                )),
                "{t:?}"
            );
        }
    }

    #[test]
    fn version_selection_constraints_must_parse() {
        let mut s = spec("a.corp.com", "1.0.0");
        s.kapp_controller_version_selection = Some(ConstraintSelection {
            constraints: Some(">=0.30.0".into()),
        });
        s.kubernetes_version_selection = Some(ConstraintSelection {
            constraints: Some(">=1.x.y".into()),
        });
        let t = texts(&package("a.corp.com.1.0.0", &s));
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(
            t[0].starts_with("spec.kubernetesVersionSelection.constraints: Invalid value: \">=1.x.y\""),
            "{t:?}"
        );
    }

    #[test]
    fn every_violation_is_reported() {
        let t = texts(&package("x", &spec("ab", "one")));
        assert_eq!(t.len(), 3, "{t:?}");
    }

    #[test]
    fn metadata_name_is_a_three_segment_domain() {
        let s = PackageMetadataSpec::default();
        assert!(package_metadata("simple-app.corp.com", &s).is_empty());
        assert_eq!(
            texts(&package_metadata("simple-app", &s)),
            [
                "metadata.name: Invalid value: \"simple-app\": should be a domain with at least three segments separated by dots"
            ]
        );
        assert_eq!(
            texts(&package_metadata("", &s)),
            ["metadata.name: Required value"]
        );
    }
}
