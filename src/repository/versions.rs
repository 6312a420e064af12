//! Carvel/vendir semver constraints (`>=1.0.0 <2.0.0 || 3.x`) and tag selection.
//!
//! Grammar: alternatives separated by `||`; within one, comparators separated by spaces or
//! commas must all hold. A comparator is an optional operator (`=`, `==`, `!=`, `>`, `>=`, `<`,
//! `<=`, `~`, `^`) and a version that may be partial or use wildcards (`1`, `1.2`, `1.x`, `1.*`,
//! `*`), or a hyphen range `1.0.0 - 2.0.0`. A leading `v` on versions is accepted.
use super::RepositoryError;
use crate::api::VersionSelection;
use semver::{BuildMetadata, Prerelease, Version};
use std::cmp::Ordering;

/// A parsed constraint expression.
#[derive(Clone, Debug)]
pub struct Constraints {
    /// Any alternative may hold; within one, every predicate must.
    alternatives: Vec<Vec<Predicate>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Debug)]
enum Predicate {
    Compare(Op, Version),
    /// `low <= v < high` (no `high`: unbounded), or its negation for `!=` with a wildcard.
    Within {
        low: Version,
        high: Option<Version>,
        negated: bool,
    },
    /// `> *` and the like: nothing can match.
    Never,
}

impl Predicate {
    fn holds(&self, v: &Version) -> bool {
        match self {
            Predicate::Compare(op, bound) => {
                let ord = v.cmp_precedence(bound);
                match op {
                    Op::Eq => ord == Ordering::Equal,
                    Op::Ne => ord != Ordering::Equal,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Ge => ord != Ordering::Less,
                    Op::Lt => ord == Ordering::Less,
                    Op::Le => ord != Ordering::Greater,
                }
            }
            Predicate::Within { low, high, negated } => {
                let inside = v.cmp_precedence(low) != Ordering::Less
                    && high
                        .as_ref()
                        .is_none_or(|h| v.cmp_precedence(h) == Ordering::Less);
                inside != *negated
            }
            Predicate::Never => false,
        }
    }
}

/// A version as written in a constraint: missing or wildcard parts are `None`.
#[derive(Debug)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
    /// Set only when all three numbers are.
    full: Option<Version>,
}

/// The lowest version with this core (`1.2.0-0`): ranges built from wildcards start and end
/// here so that `1.2.x` holds `1.2.0-rc.1` but not `1.3.0-rc.1`.
fn floor(major: u64, minor: u64, patch: u64) -> Version {
    Version {
        major,
        minor,
        patch,
        pre: Prerelease::new("0").expect("'0' is a valid prerelease"),
        build: BuildMetadata::EMPTY,
    }
}

fn is_wildcard(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

impl Partial {
    fn parse(text: &str) -> Result<Partial, String> {
        let t = text.strip_prefix('v').unwrap_or(text);
        if t.is_empty() {
            return Err("a version is missing".to_string());
        }
        if let Ok(full) = Version::parse(t) {
            return Ok(Partial {
                major: Some(full.major),
                minor: Some(full.minor),
                patch: Some(full.patch),
                full: Some(full),
            });
        }
        let shape = || {
            format!(
                "{text:?} is not a version (write 1.2.3, 1.2.3-rc.1, or a partial or wildcard \
                 version such as 1.2, 1.x, 1.2.*)"
            )
        };
        let parts: Vec<&str> = t.split('.').collect();
        if parts.len() > 3 {
            return Err(shape());
        }
        let mut numbers = [None; 3];
        let mut wildcard_seen = false;
        for (i, part) in parts.iter().enumerate() {
            if is_wildcard(part) {
                wildcard_seen = true;
            } else if wildcard_seen {
                return Err(shape());
            } else {
                let valid = !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_digit())
                    && (part.len() == 1 || !part.starts_with('0'));
                if !valid {
                    return Err(shape());
                }
                numbers[i] = Some(part.parse::<u64>().map_err(|_| shape())?);
            }
        }
        Ok(Partial {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers[2],
            full: None,
        })
    }

    /// Range bounds add one to a part; refuse the one value where that cannot be done.
    fn check_bounds(self, text: &str) -> Result<Partial, String> {
        if [self.major, self.minor, self.patch].contains(&Some(u64::MAX)) {
            return Err(format!(
                "{text:?} has a version part too large to compare ({})",
                u64::MAX
            ));
        }
        Ok(self)
    }

    /// `[low, high)` covered by this partial version (`None` high: unbounded).
    fn range(&self) -> (Version, Option<Version>) {
        match (self.major, self.minor, self.patch) {
            (Some(ma), Some(mi), Some(pa)) => (floor(ma, mi, pa), Some(floor(ma, mi, pa + 1))),
            (Some(ma), Some(mi), None) => (floor(ma, mi, 0), Some(floor(ma, mi + 1, 0))),
            (Some(ma), None, _) => (floor(ma, 0, 0), Some(floor(ma + 1, 0, 0))),
            (None, _, _) => (floor(0, 0, 0), None),
        }
    }
}

fn within(range: (Version, Option<Version>), negated: bool) -> Predicate {
    Predicate::Within {
        low: range.0,
        high: range.1,
        negated,
    }
}

const OPERATORS: [&str; 10] = [">=", "<=", "!=", "==", "=", ">", "<", "~", "^", "!"];

fn split_operator(token: &str) -> (&str, &str) {
    for op in OPERATORS {
        if let Some(rest) = token.strip_prefix(op) {
            return (op, rest);
        }
    }
    ("", token)
}

fn comparator(token: &str, out: &mut Vec<Predicate>) -> Result<(), String> {
    let (op, rest) = split_operator(token);
    let p = Partial::parse(rest)?.check_bounds(rest)?;
    match (op, &p.full) {
        ("" | "=" | "==", Some(v)) => out.push(Predicate::Compare(Op::Eq, v.clone())),
        ("" | "=" | "==", None) => out.push(within(p.range(), false)),
        ("!=" | "!", Some(v)) => out.push(Predicate::Compare(Op::Ne, v.clone())),
        ("!=" | "!", None) => out.push(within(p.range(), true)),
        (">", Some(v)) => out.push(Predicate::Compare(Op::Gt, v.clone())),
        (">", None) => match p.range().1 {
            Some(high) => out.push(Predicate::Compare(Op::Ge, high)),
            None => out.push(Predicate::Never),
        },
        (">=", Some(v)) => out.push(Predicate::Compare(Op::Ge, v.clone())),
        (">=", None) => out.push(Predicate::Compare(Op::Ge, p.range().0)),
        ("<", Some(v)) => out.push(Predicate::Compare(Op::Lt, v.clone())),
        ("<", None) => out.push(Predicate::Compare(Op::Lt, p.range().0)),
        ("<=", Some(v)) => out.push(Predicate::Compare(Op::Le, v.clone())),
        ("<=", None) => {
            if let Some(high) = p.range().1 {
                out.push(Predicate::Compare(Op::Lt, high));
            }
        }
        ("~", _) => {
            let (low, _) = p.range();
            let low = p.full.clone().unwrap_or(low);
            let high = match (p.major, p.minor) {
                (Some(ma), Some(mi)) => Some(floor(ma, mi + 1, 0)),
                (Some(ma), None) => Some(floor(ma + 1, 0, 0)),
                (None, _) => None,
            };
            out.push(within((low, high), false));
        }
        ("^", _) => {
            let (low, _) = p.range();
            let low = p.full.clone().unwrap_or(low);
            // The leftmost non-zero part is the one that may not change.
            let high = match (p.major, p.minor, p.patch) {
                (None, _, _) => None,
                (Some(ma), _, _) if ma > 0 => Some(floor(ma + 1, 0, 0)),
                (Some(_), None, _) => Some(floor(1, 0, 0)),
                (Some(_), Some(mi), _) if mi > 0 => Some(floor(0, mi + 1, 0)),
                (Some(_), Some(_), None) => Some(floor(0, 1, 0)),
                (Some(_), Some(_), Some(pa)) => Some(floor(0, 0, pa + 1)),
            };
            out.push(within((low, high), false));
        }
        (other, _) => return Err(format!("unknown operator {other:?}")),
    }
    Ok(())
}

fn is_operator_only(token: &str) -> bool {
    !token.is_empty() && token.chars().all(|c| "=!<>~^".contains(c))
}

fn alternative(text: &str) -> Result<Vec<Predicate>, String> {
    let tokens: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        return Err("an alternative between '||' is empty".to_string());
    }
    let mut predicates = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let mut token = tokens[i].to_string();
        i += 1;
        if is_operator_only(&token) {
            let Some(next) = tokens.get(i) else {
                return Err(format!("operator {token:?} has no version after it"));
            };
            token.push_str(next);
            i += 1;
        }
        if tokens.get(i) == Some(&"-") {
            let Some(upper) = tokens.get(i + 1) else {
                return Err(format!("hyphen range {token:?} - ... has no upper version"));
            };
            if !split_operator(&token).0.is_empty() || !split_operator(upper).0.is_empty() {
                return Err(format!(
                    "hyphen range {token} - {upper} cannot have operators; write 1.0.0 - 2.0.0"
                ));
            }
            let low = Partial::parse(&token)?;
            let high = Partial::parse(upper)?;
            predicates.push(Predicate::Compare(
                Op::Ge,
                low.full.clone().unwrap_or_else(|| low.range().0),
            ));
            match &high.full {
                Some(v) => predicates.push(Predicate::Compare(Op::Le, v.clone())),
                None => {
                    if let Some(h) = high.range().1 {
                        predicates.push(Predicate::Compare(Op::Lt, h));
                    }
                }
            }
            i += 2;
            continue;
        }
        if token == "-" {
            return Err("a hyphen range needs a version on both sides".to_string());
        }
        comparator(&token, &mut predicates)?;
    }
    Ok(predicates)
}

impl Constraints {
    /// Parse an expression; an empty one (or `*`) allows every version.
    pub fn parse(expression: &str) -> Result<Constraints, RepositoryError> {
        let error = |reason: String| RepositoryError::InvalidConstraint {
            expression: expression.to_string(),
            reason,
        };
        if expression.trim().is_empty() {
            return Ok(Constraints {
                alternatives: vec![Vec::new()],
            });
        }
        let alternatives = expression
            .split("||")
            .map(alternative)
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        Ok(Constraints { alternatives })
    }

    pub fn matches(&self, version: &semver::Version) -> bool {
        self.alternatives
            .iter()
            .any(|all| all.iter().all(|p| p.holds(version)))
    }
}

/// A tag read as a version the way vendir does: strict semver, optionally with a leading `v`.
pub fn parse_tag(tag: &str) -> Option<Version> {
    Version::parse(tag)
        .ok()
        .or_else(|| tag.strip_prefix('v').and_then(|t| Version::parse(t).ok()))
}

/// The highest tag that is a semver version matching `selection` (prereleases only when allowed).
///
/// Prereleases are left out unless `semver.prereleases` is set; when it lists identifiers, a
/// prerelease is kept only if one of its alphanumeric identifiers is in that list (vendir's rule:
/// `1.0.0-rc.1` passes for `[rc]`).
pub fn select_tag<'a>(
    tags: &'a [String],
    selection: &VersionSelection,
) -> Result<Option<&'a str>, RepositoryError> {
    let Some(semver) = &selection.semver else {
        return Err(RepositoryError::InvalidSelection {
            reason: "only semver selection is supported; set tagSelection.semver.constraints, \
                     for example '>=1.0.0'"
                .to_string(),
        });
    };
    let constraints = Constraints::parse(semver.constraints.as_deref().unwrap_or(""))?;
    let allowed_prerelease = |v: &Version| -> bool {
        if v.pre.is_empty() {
            return true;
        }
        match &semver.prereleases {
            None => false,
            Some(p) if p.identifiers.is_empty() => true,
            Some(p) => v
                .pre
                .as_str()
                .split('.')
                .filter(|part| !part.bytes().all(|b| b.is_ascii_digit()))
                .any(|part| p.identifiers.iter().any(|id| id == part)),
        }
    };
    let best = tags
        .iter()
        .filter_map(|tag| parse_tag(tag).map(|v| (v, tag.as_str())))
        .filter(|(v, _)| allowed_prerelease(v) && constraints.matches(v))
        // Ties in precedence (`1.0.0` and `v1.0.0`, differing build metadata) are broken by the
        // full version order, then the tag text, so the pick never depends on tag order.
        .max_by(|(a, ta), (b, tb)| {
            a.cmp_precedence(b)
                .then_with(|| a.cmp(b))
                .then_with(|| ta.cmp(tb))
        });
    Ok(best.map(|(_, tag)| tag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Prereleases, SemverSelection};

    fn holds(expr: &str, v: &str) -> bool {
        Constraints::parse(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .matches(&Version::parse(v).unwrap())
    }

    fn check(expr: &str, yes: &[&str], no: &[&str]) {
        for v in yes {
            assert!(holds(expr, v), "{expr:?} should hold for {v}");
        }
        for v in no {
            assert!(!holds(expr, v), "{expr:?} should not hold for {v}");
        }
    }

    #[test]
    fn plain_and_equal_versions_are_exact() {
        check("1.2.3", &["1.2.3", "1.2.3+build.5"], &["1.2.4", "1.2.3-rc.1"]);
        check("=1.2.3", &["1.2.3"], &["1.2.2"]);
        check("== v1.2.3", &["1.2.3"], &["1.3.0"]);
        check("1.2.3-rc.1", &["1.2.3-rc.1"], &["1.2.3"]);
    }

    #[test]
    fn a_part_too_large_to_bound_is_an_error_not_a_panic() {
        for expr in [
            "~1.18446744073709551615.0",
            "^18446744073709551615",
            "18446744073709551615.x",
            "<=1.2.18446744073709551615",
        ] {
            let err = Constraints::parse(expr).unwrap_err().to_string();
            assert!(err.contains("too large to compare"), "{expr}: {err}");
        }
        assert!(Constraints::parse(">=1.18446744073709551614.0").is_ok());
    }

    #[test]
    fn comparison_operators() {
        check(">1.2.3", &["1.2.4", "2.0.0"], &["1.2.3", "1.0.0"]);
        check(">=1.2.3", &["1.2.3", "1.3.0"], &["1.2.2"]);
        check("<1.2.3", &["1.2.2", "0.1.0"], &["1.2.3"]);
        check("<=1.2.3", &["1.2.3"], &["1.2.4"]);
        check("!=1.2.3", &["1.2.4", "1.2.2"], &["1.2.3"]);
        check("> 1.0.0", &["1.0.1"], &["1.0.0"]);
    }

    #[test]
    fn and_with_spaces_or_commas_or_with_bars() {
        let yes = ["1.0.0", "1.9.9"];
        let no = ["0.9.9", "2.0.0"];
        check(">=1.0.0 <2.0.0", &yes, &no);
        check(">=1.0.0, <2.0.0", &yes, &no);
        check(">=1.0.0,<2.0.0", &yes, &no);
        check("<1.0.0 || >=3.0.0", &["0.5.0", "3.1.0"], &["1.0.0", "2.9.9"]);
        check(">=1.0.0 <1.5.0 || 2.x", &["1.4.0", "2.3.4"], &["1.5.0", "3.0.0"]);
    }

    #[test]
    fn wildcards_and_partial_versions() {
        check("1.x", &["1.0.0", "1.99.5"], &["0.9.0", "2.0.0", "2.0.0-rc.1"]);
        check("1.*", &["1.2.0"], &["2.0.0"]);
        check("1.2.X", &["1.2.0", "1.2.9"], &["1.3.0"]);
        check("1.2", &["1.2.7"], &["1.3.0"]);
        check("*", &["0.0.1", "9.9.9"], &[]);
        check("", &["0.0.1"], &[]);
        check("!=1.x", &["2.0.0", "0.1.0"], &["1.4.0"]);
        check(">1.x", &["2.0.0"], &["1.9.9"]);
        check(">=1.2.x", &["1.2.0"], &["1.1.9"]);
        check("<1.2.x", &["1.1.9"], &["1.2.0"]);
        check("<=1.2.x", &["1.2.9"], &["1.3.0"]);
        check(">*", &[], &["1.0.0"]);
    }

    #[test]
    fn tilde_allows_patch_changes() {
        check("~1.2.3", &["1.2.3", "1.2.9"], &["1.2.2", "1.3.0"]);
        check("~1.2", &["1.2.0", "1.2.9"], &["1.3.0"]);
        check("~1", &["1.0.0", "1.9.0"], &["2.0.0"]);
    }

    #[test]
    fn caret_allows_changes_right_of_the_first_non_zero_part() {
        check("^1.2.3", &["1.2.3", "1.9.0"], &["1.2.2", "2.0.0"]);
        check("^0.2.3", &["0.2.3", "0.2.9"], &["0.3.0"]);
        check("^0.0.3", &["0.0.3"], &["0.0.4"]);
        check("^0.0", &["0.0.9"], &["0.1.0"]);
        check("^0", &["0.9.0"], &["1.0.0"]);
        check("^1.x", &["1.0.0", "1.5.0"], &["2.0.0"]);
    }

    #[test]
    fn hyphen_ranges_are_inclusive() {
        check("1.0.0 - 2.0.0", &["1.0.0", "2.0.0"], &["0.9.9", "2.0.1"]);
        check("1.0 - 2.1", &["1.0.0", "2.1.9"], &["2.2.0"]);
        check("1.0.0 - 2.0.0 || 5.0.0", &["5.0.0"], &["3.0.0"]);
    }

    #[test]
    fn prereleases_order_as_semver_says() {
        check(
            ">=1.0.0-rc.1 <1.0.0",
            &["1.0.0-rc.1", "1.0.0-rc.2"],
            &["1.0.0", "1.0.0-beta.1"],
        );
        check("~1.2.0", &["1.2.5-rc.1"], &["1.3.0-rc.1"]);
    }

    #[test]
    fn bad_expressions_are_errors_naming_the_expression() {
        for bad in [
            ">=1.x.y",
            ">>1.0.0",
            "1.0.0 -",
            ">=",
            "a.b.c",
            "1.0.0 ||",
            "1.2.3.4",
            "01.2.3",
            ">=1.0.0 - 2.0.0",
        ] {
            let err = Constraints::parse(bad).expect_err(bad);
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("invalid version constraint {bad:?}: ")),
                "{text}"
            );
        }
    }

    fn select(tags: &[&str], constraints: &str, prereleases: Option<&[&str]>) -> Option<String> {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let selection = VersionSelection {
            semver: Some(SemverSelection {
                constraints: Some(constraints.to_string()),
                prereleases: prereleases.map(|ids| Prereleases {
                    identifiers: ids.iter().map(|s| s.to_string()).collect(),
                }),
            }),
        };
        select_tag(&tags, &selection).unwrap().map(str::to_string)
    }

    #[test]
    fn select_tag_picks_the_highest_match() {
        let tags = [
            "1.0.0",
            "v1.2.0",
            "1.10.0",
            "2.0.0",
            "latest",
            "sha256-abc.imgpkg",
            "1.11.0-rc.1",
        ];
        assert_eq!(select(&tags, ">=1.0.0 <2.0.0", None).as_deref(), Some("1.10.0"));
        assert_eq!(select(&tags, "<1.10.0", None).as_deref(), Some("v1.2.0"));
        assert_eq!(select(&tags, ">=3.0.0", None), None);
        assert_eq!(select(&tags, "", None).as_deref(), Some("2.0.0"));
    }

    #[test]
    fn select_tag_leaves_out_prereleases_unless_allowed() {
        let tags = ["1.0.0", "1.1.0-rc.1", "1.1.0-beta.2", "1.2.0-alpha.1"];
        assert_eq!(select(&tags, ">=1.0.0", None).as_deref(), Some("1.0.0"));
        assert_eq!(
            select(&tags, ">=1.0.0", Some(&[])).as_deref(),
            Some("1.2.0-alpha.1")
        );
        assert_eq!(
            select(&tags, ">=1.0.0", Some(&["rc"])).as_deref(),
            Some("1.1.0-rc.1")
        );
        assert_eq!(
            select(&tags, ">=1.0.0", Some(&["beta", "rc"])).as_deref(),
            Some("1.1.0-rc.1")
        );
        assert_eq!(
            select(&tags, ">=1.0.0", Some(&["2"])).as_deref(),
            Some("1.0.0"),
            "numeric parts never match"
        );
    }

    #[test]
    fn select_tag_is_independent_of_tag_order() {
        let a = select(&["1.0.0", "v1.0.0"], "*", None);
        let b = select(&["v1.0.0", "1.0.0"], "*", None);
        assert_eq!(a, b);
    }

    #[test]
    fn select_tag_needs_semver_and_valid_constraints() {
        let tags = vec!["1.0.0".to_string()];
        let err = select_tag(&tags, &VersionSelection { semver: None }).unwrap_err();
        assert!(err.to_string().contains("semver"), "{err}");
        let selection = VersionSelection {
            semver: Some(SemverSelection {
                constraints: Some(">=x.1".into()),
                prereleases: None,
            }),
        };
        assert!(matches!(
            select_tag(&tags, &selection),
            Err(RepositoryError::InvalidConstraint { .. })
        ));
    }

    #[test]
    fn tags_with_a_leading_v_are_versions() {
        assert_eq!(parse_tag("v1.2.3"), Some(Version::new(1, 2, 3)));
        assert_eq!(parse_tag("1.2.3"), Some(Version::new(1, 2, 3)));
        assert_eq!(parse_tag("V1.2.3"), None);
        assert_eq!(parse_tag("1.2"), None);
    }
}
