//! imgpkg's tarball format: `manifest.json` (Go field names) followed by `sha256-<hex>.tar.gz`
//! layer entries. Read by `copy --tar` and `render --tar`, written by `copy --to-tar`.
