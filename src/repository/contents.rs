//! Shaping fetched contents before they are read: `image.subPath` and `inline.paths`.
use super::RepositoryError;
use crate::bundle::FileTree;
use std::collections::BTreeMap;

/// Up to ten top-level entries of `files`, for messages that say what was there instead.
pub(crate) fn top_level_entries(files: &FileTree) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for path in files.keys() {
        let top = match path.split_once('/') {
            Some((dir, _)) => dir,
            None => path.as_str(),
        };
        if seen.last() != Some(&top) && !seen.contains(&top) {
            seen.push(top);
        }
    }
    if seen.is_empty() {
        return "no files at all".to_string();
    }
    let shown: Vec<String> = seen
        .iter()
        .take(10)
        .map(|e| {
            if files.contains_key(*e) {
                e.to_string()
            } else {
                format!("{e}/")
            }
        })
        .collect();
    let mut out = shown.join(", ");
    if seen.len() > 10 {
        out.push_str(&format!(" and {} more", seen.len() - 10));
    }
    out
}

/// The files under `path` (a directory of the fetched contents), re-rooted at it.
///
/// `path` is relative; `.` segments and a trailing `/` are ignored; absolute paths and `..` are
/// rejected, so a subPath can never reach outside what was fetched.
pub fn sub_path(files: &FileTree, path: &str) -> Result<FileTree, RepositoryError> {
    let invalid = |reason: &str| RepositoryError::InvalidSubPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(invalid("it must be relative to the image root, not absolute"));
    }
    let mut segments = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(invalid("'..' is not allowed; name a directory inside the image")),
            s if s.contains('\\') => {
                return Err(invalid("use '/' to separate directories"));
            }
            s => segments.push(s),
        }
    }
    if segments.is_empty() {
        return Ok(files.clone());
    }
    let prefix = format!("{}/", segments.join("/"));
    let selected: FileTree = files
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .map(|(p, contents)| (p[prefix.len()..].to_string(), contents.clone()))
        .collect();
    if selected.is_empty() {
        let found = if files.contains_key(prefix.trim_end_matches('/')) {
            format!("{} is a file, not a directory", prefix.trim_end_matches('/'))
        } else {
            top_level_entries(files)
        };
        return Err(RepositoryError::SubPathNotFound {
            path: path.to_string(),
            found,
        });
    }
    Ok(selected)
}

/// The files of an `inline` source (`paths: {file: content}`); a leading `./` or `/` on a path
/// is dropped so that `./packages/a.yml` and `packages/a.yml` name the same file.
pub fn inline_files(paths: &BTreeMap<String, String>) -> FileTree {
    paths
        .iter()
        .map(|(path, content)| {
            let mut p = path.as_str();
            loop {
                if let Some(rest) = p.strip_prefix("./") {
                    p = rest;
                } else if let Some(rest) = p.strip_prefix('/') {
                    p = rest;
                } else {
                    break;
                }
            }
            (p.to_string(), content.as_bytes().to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(paths: &[&str]) -> FileTree {
        paths
            .iter()
            .map(|p| (p.to_string(), p.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn sub_path_keeps_and_reroots_the_directory() {
        let files = tree(&["repo/packages/a.yml", "repo/README", "repo2/x", "other"]);
        let got = sub_path(&files, "repo").unwrap();
        assert_eq!(got.keys().collect::<Vec<_>>(), ["README", "packages/a.yml"]);
        assert_eq!(got["packages/a.yml"], b"repo/packages/a.yml");
        assert_eq!(sub_path(&files, "./repo/").unwrap(), got);
        assert_eq!(sub_path(&files, "repo/packages").unwrap().len(), 1);
    }

    #[test]
    fn empty_or_dot_sub_path_is_everything() {
        let files = tree(&["a", "b/c"]);
        assert_eq!(sub_path(&files, "").unwrap(), files);
        assert_eq!(sub_path(&files, ".").unwrap(), files);
    }

    #[test]
    fn escaping_sub_paths_are_rejected() {
        let files = tree(&["a/b"]);
        for bad in ["/a", "../a", "a/../../b", "a\\b"] {
            let err = sub_path(&files, bad).unwrap_err();
            assert!(
                matches!(err, RepositoryError::InvalidSubPath { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn a_missing_sub_path_names_what_is_there() {
        let files = tree(&["config/a.yml", "packages/b.yml", "README.md"]);
        let err = sub_path(&files, "repo").unwrap_err();
        assert_eq!(
            err.to_string(),
            "subPath \"repo\" not found in the fetched contents (top-level entries: README.md, config/, packages/)"
        );
        let err = sub_path(&files, "README.md").unwrap_err();
        assert!(
            err.to_string().contains("README.md is a file, not a directory"),
            "{err}"
        );
    }

    #[test]
    fn inline_paths_become_files() {
        let paths: BTreeMap<String, String> = [
            ("packages/a.yml".to_string(), "a: 1".to_string()),
            ("./packages/b.yml".to_string(), "b: 2".to_string()),
        ]
        .into();
        let files = inline_files(&paths);
        assert_eq!(files["packages/a.yml"], b"a: 1");
        assert_eq!(files["packages/b.yml"], b"b: 2");
    }

    #[test]
    fn top_level_entries_are_listed_briefly() {
        let many: Vec<String> = (0..12).map(|i| format!("d{i:02}/f")).collect();
        let files: FileTree = many.iter().map(|p| (p.clone(), Vec::new())).collect();
        let text = top_level_entries(&files);
        assert!(text.starts_with("d00/, d01/"), "{text}");
        assert!(text.ends_with(" and 2 more"), "{text}");
        assert_eq!(top_level_entries(&FileTree::new()), "no files at all");
    }
}
