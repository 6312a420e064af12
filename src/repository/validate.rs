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
    if let Some(released_at) = &spec.released_at
        && !is_rfc3339(released_at)
    {
        // Stored as text here, but Go clients decode it as a metav1.Time: one bad value would
        // break every list of Packages they make.
        problems.push(invalid(
            "spec.releasedAt",
            released_at,
            "must be an RFC 3339 time, e.g. 2021-05-05T18:57:06Z",
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

/// What Go's `time.Parse(time.RFC3339, s)` (metav1.Time) accepts:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with real calendar dates.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let number = |at: usize, len: usize| -> Option<u32> {
        let digits = b.get(at..at + len)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let punct = |at: usize, c: u8| b.get(at) == Some(&c);
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        number(0, 4),
        number(5, 2),
        number(8, 2),
        number(11, 2),
        number(14, 2),
        number(17, 2),
    ) else {
        return false;
    };
    if !(punct(4, b'-') && punct(7, b'-') && punct(10, b'T') && punct(13, b':') && punct(16, b':')) {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days || hour > 23 || minute > 59 || second > 59 {
        return false;
    }
    let mut at = 19;
    if punct(at, b'.') || punct(at, b',') {
        let digits = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        at += 1 + digits;
    }
    match b.get(at) {
        Some(b'Z') => at + 1 == b.len(),
        Some(b'+' | b'-') => {
            at + 6 == b.len()
                && punct(at + 3, b':')
                && number(at + 1, 2).is_some_and(|h| h < 24)
                && number(at + 4, 2).is_some_and(|m| m < 60)
        }
        _ => false,
    }
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
    fn released_at_must_be_an_rfc3339_time() {
        for good in [
            "2021-05-05T18:57:06Z",
            "2021-05-05T18:57:06.123456789Z",
            "2021-05-05T18:57:06+02:00",
            "2024-02-29T00:00:00-07:30",
            "2000-02-29T23:59:59Z",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "",
            "yesterday",
            "2021-05-05",
            "2021-05-05 18:57:06Z",
            "2021-05-05t18:57:06Z",
            "2021-05-05T18:57:06",
            "2021-05-05T18:57:06z",
            "2021-13-05T18:57:06Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2021-04-31T00:00:00Z",
            "2021-05-05T24:00:00Z",
            "2021-05-05T18:60:06Z",
            "2021-05-05T18:57:60Z",
            "2021-05-05T18:57:06.Z",
            "2021-05-05T18:57:06+0200",
            "2021-05-05T18:57:06+24:00",
            "2021-05-05T18:57:06Z ",
            "２０２１-05-05T18:57:06Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad:?}");
        }
        let mut with_time = spec("a.corp.com", "1.0.0");
        with_time.released_at = Some("last tuesday".into());
        assert_eq!(
            texts(&package("a.corp.com.1.0.0", &with_time)),
            [
                "spec.releasedAt: Invalid value: \"last tuesday\": must be an RFC 3339 time, e.g. 2021-05-05T18:57:06Z"
            ]
        );
        with_time.released_at = Some("2021-05-05T18:57:06Z".into());
        assert!(package("a.corp.com.1.0.0", &with_time).is_empty());
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
