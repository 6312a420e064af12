//! Finding ytt annotations in a file that pkgr reads as plain YAML.

/// The first line (1-based) with a ytt annotation: a YAML comment that starts `#@`. Upstream
/// evaluates these with ytt; applying the YAML without them would silently produce other
/// objects, so they are reported instead. `#@` inside quoted values or block scalars (inline ytt
/// templates in a Package's spec) is content, not an annotation.
pub(crate) fn ytt_annotation_line(text: &str) -> Option<u64> {
    // Indentation of the line that opened the block scalar being read, if any.
    let mut block_parent: Option<usize> = None;
    for (line, number) in text.lines().zip(1u64..) {
        let content = line.trim_start_matches([' ', '\t']);
        let indent = line.len() - content.len();
        if let Some(parent) = block_parent {
            if content.is_empty() || indent > parent {
                continue;
            }
            block_parent = None;
        }
        let comment = comment_start(content);
        if comment.is_some_and(|at| content[at..].starts_with("#@")) {
            return Some(number);
        }
        if opens_block_scalar(content[..comment.unwrap_or(content.len())].trim_end()) {
            block_parent = Some(indent);
        }
    }
    None
}

/// Where a comment starts in one line of YAML: a `#` at the start or after a blank, outside
/// quotes. A quote that does not open a scalar (`it's`) hides the rest of the line: the safe
/// direction, an annotation missed rather than invented.
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(b'"') if c == b'\\' => i += 1,
            Some(q) if c == q => {
                if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                    i += 1;
                } else {
                    quote = None;
                }
            }
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'#' && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

/// `key: |`, `- >-`, `key: |2+` and the like: the lines after it are a block scalar.
fn opens_block_scalar(code: &str) -> bool {
    let (before, last) = code.rsplit_once([' ', '\t']).unwrap_or(("", code));
    let indicator = last.starts_with(['|', '>']) && last[1..].bytes().all(|b| b"+-0123456789".contains(&b));
    let before = before.trim_end();
    indicator && (before.is_empty() || before.ends_with(':') || before.ends_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ytt_annotations_are_comments_starting_hash_at() {
        assert_eq!(comment_start("# all comment"), Some(0));
        assert_eq!(comment_start("a: b # c"), Some(5));
        assert_eq!(
            comment_start("a: b#c"),
            None,
            "no blank before: part of the value"
        );
        assert_eq!(comment_start("a: \"x # y\" # z"), Some(11));
        assert_eq!(comment_start("a: 'it''s # here' #@ x"), Some(18));
        assert_eq!(comment_start("a: \"esc \\\" # still\" #c"), Some(20));
        for (code, opens) in [
            ("key: |", true),
            ("key: >-", true),
            ("key: |2+", true),
            ("- |", true),
            ("|", true),
            ("key: value", false),
            ("key: a|b", false),
            ("key: x |", false),
        ] {
            assert_eq!(opens_block_scalar(code), opens, "{code:?}");
        }
        assert_eq!(ytt_annotation_line("a: 1\nb: 2 #@ x\n"), Some(2));
        assert_eq!(ytt_annotation_line("a: |\n  #@ x\n  y\nb: #@ z\n"), Some(4));
        assert_eq!(ytt_annotation_line("- |\n  #@ x\n\n  #@ y\n- z\n"), None);
        assert_eq!(ytt_annotation_line("#! a ytt comment\na: 1 # plain\n"), None);
    }
}
