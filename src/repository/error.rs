//! Errors of the repository layer: what is wrong with a repository's contents, and where.
use std::fmt;

/// Where in the repository a problem sits: a file, and the document within it when known.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    /// Path relative to the repository root (`packages/a.yml`).
    pub file: String,
    /// 1-based document index within the file, as a reader counts `---` separators.
    pub document: Option<usize>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.document {
            Some(d) => write!(f, "{} doc {d}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// One thing wrong with one document (or file) of a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub place: Place,
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.kind)
    }
}

/// The rule a document breaks. Validation messages follow kapp-controller's wording
/// (`field.ErrorList` strings) so people searching for them find upstream's docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file is not UTF-8 text.
    NotUtf8 { reason: String },
    /// The YAML parser rejected the document; line and column are in the file (1-based).
    Yaml { line: u64, column: u64, message: String },
    /// A kept document does not decode into the Package/PackageMetadata types.
    Decode {
        kind: String,
        field: String,
        message: String,
    },
    /// A field's value is not of the Go type kapp-controller decodes it into.
    WrongType {
        /// Path from the document root, keys as written (`spec.template.spec.syncPeriod`).
        field: String,
        expected: String,
        found: String,
    },
    /// A field breaks a validation rule.
    Invalid {
        field: String,
        /// The offending value (`None` for "Required value" errors).
        value: Option<String>,
        rule: String,
    },
    /// The file uses ytt annotations (`#@`), which pkgr does not evaluate.
    Ytt { line: u64 },
    /// The same object is defined twice with different contents.
    Duplicate {
        kind: String,
        name: String,
        first: Place,
    },
    /// Two different Package names map to the same stored (DNS-1123) name.
    NameCollision {
        stored: String,
        original: String,
        other_original: String,
        other: Place,
    },
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::NotUtf8 { reason } => {
                write!(f, "file is not UTF-8 text ({reason}); save it as UTF-8")
            }
            ProblemKind::Yaml {
                line,
                column,
                message,
            } => {
                write!(f, "malformed YAML at line {line}, column {column}: {message}")
            }
            ProblemKind::Decode { kind, field, message } => {
                if field.is_empty() || field == "." {
                    write!(f, "cannot read {kind}: {message}")
                } else {
                    write!(f, "cannot read {kind}: field {field}: {message}")
                }
            }
            ProblemKind::WrongType {
                field,
                expected,
                found,
            } => write!(
                f,
                "{field}: expected {expected}, found {found} (kapp-controller cannot decode it either)"
            ),
            ProblemKind::Invalid { field, value, rule } => match value {
                None if rule.is_empty() => write!(f, "{field}: Required value"),
                None => write!(f, "{field}: Required value: {rule}"),
                Some(value) => write!(f, "{field}: Invalid value: {value:?}: {rule}"),
            },
            ProblemKind::Ytt { line } => write!(
                f,
                "line {line} holds a ytt annotation (#@); pkgr reads packages/ as plain YAML and \
                 does not run ytt, so render the templates before pushing (ytt -f packages/)"
            ),
            ProblemKind::Duplicate { kind, name, first } => write!(
                f,
                "{kind} {name:?} is also defined in {first} with different contents; \
                 keep one definition"
            ),
            ProblemKind::NameCollision {
                stored,
                original,
                other_original,
                other,
            } => write!(
                f,
                "Package {original:?} and Package {other_original:?} (in {other}) would both be \
                 stored as {stored:?} (the hashes that keep mapped names apart collide); rename \
                 one version, for example with another build metadata tag"
            ),
        }
    }
}

/// Errors of the repository layer.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// Upstream's exact wording (kapp-controller v0.39+), so existing runbooks still match.
    #[error(
        "Invalid package repository content: must contain 'packages/' directory but did not \
         (found {found}; a repository bundle keeps its Package YAML under packages/)"
    )]
    MissingPackagesDirectory {
        /// A short list of the top-level entries that were there.
        found: String,
    },
    /// Every problem found across all documents; `Display` is a one-line summary.
    #[error("{}", summary(.problems))]
    InvalidContent { problems: Vec<Problem> },
    #[error("invalid subPath {path:?}: {reason}")]
    InvalidSubPath { path: String, reason: String },
    #[error("subPath {path:?} not found in the fetched contents (top-level entries: {found})")]
    SubPathNotFound { path: String, found: String },
    #[error("invalid version constraint {expression:?}: {reason}")]
    InvalidConstraint { expression: String, reason: String },
    #[error("invalid tag selection: {reason}")]
    InvalidSelection { reason: String },
    #[error("cannot write the objects as YAML: {reason}")]
    Output { reason: String },
}

impl RepositoryError {
    /// Every problem, one per line (for `usefulErrorMessage` and the CLI); for errors that are
    /// not a list, the same text as `Display`.
    pub fn detailed(&self) -> String {
        match self {
            RepositoryError::InvalidContent { problems } => {
                let mut out = format!("{}:", headline(problems.len()));
                for p in problems {
                    out.push_str("\n- ");
                    out.push_str(&p.to_string());
                }
                out
            }
            other => other.to_string(),
        }
    }

    /// The individual problems (empty for errors that are not about document contents).
    pub fn problems(&self) -> &[Problem] {
        match self {
            RepositoryError::InvalidContent { problems } => problems,
            _ => &[],
        }
    }
}

fn headline(count: usize) -> String {
    if count == 1 {
        "1 problem in the repository's packages".to_string()
    } else {
        format!("{count} problems in the repository's packages")
    }
}

fn summary(problems: &[Problem]) -> String {
    match problems {
        [] => "no problems".to_string(),
        [only] => format!("{}: {only}", headline(1)),
        [first, rest @ ..] => format!("{}: {first} (and {} more)", headline(problems.len()), rest.len()),
    }
}
