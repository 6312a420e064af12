//! Flag values as imgpkg's command line (cobra and pflag) reads them, so that scripts written
//! for imgpkg pass the same words to pkgr.
//!
//! A boolean flag is given bare (`--tty`, true) or with a value after `=` (`--tty=false`), and
//! the value is read by Go's `strconv.ParseBool`. In clap terms, every such flag is:
//!
//! ```text
//! #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
//!       default_missing_value = "true", value_parser = crate::goflag::parse_bool, ...)]
//! ```

/// Go's `strconv.ParseBool`: `1 t T TRUE true True` and `0 f F FALSE false False`.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {value:?}: invalid syntax")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_booleans() {
        for yes in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(no), Ok(false), "{no}");
        }
        for neither in ["", "yes", "on", "tRUE", "2", " true"] {
            assert!(parse_bool(neither).is_err(), "{neither}");
        }
        assert_eq!(
            parse_bool("yes").unwrap_err(),
            "strconv.ParseBool: parsing \"yes\": invalid syntax"
        );
    }
}
