//! Carvel/vendir semver constraints (`>=1.0.0 <2.0.0 || 3.x`) and tag selection.
use super::RepositoryError;
use crate::api::VersionSelection;

/// A parsed constraint expression.
#[derive(Clone, Debug)]
pub struct Constraints {}

impl Constraints {
    pub fn parse(expression: &str) -> Result<Constraints, RepositoryError> {
        todo!("{expression}")
    }
    pub fn matches(&self, version: &semver::Version) -> bool {
        todo!("{version}")
    }
}

/// The highest tag that is a semver version matching `selection` (prereleases only when allowed).
pub fn select_tag<'a>(
    tags: &'a [String],
    selection: &VersionSelection,
) -> Result<Option<&'a str>, RepositoryError> {
    todo!("{} {selection:?}", tags.len())
}
