//! Splitting a YAML file into its documents and parsing each one on its own.
//!
//! Documents are split here rather than by the parser so that one malformed document does not
//! hide the problems of the others, and so that document numbers count empty documents the way a
//! person reading the file counts `---` separators.
use super::error::ProblemKind;
use serde_saphyr::MessageFormatter;

/// One document of a file: its 1-based number and its parsed value (`None` when empty).
#[derive(Debug)]
pub(crate) struct Document {
    pub number: usize,
    pub value: Result<Option<serde_json::Value>, ProblemKind>,
}

/// A contiguous slice of the file holding one document.
struct Segment {
    start: usize,
    end: usize,
    /// 0-based line of `start` in the file.
    first_line: u64,
}

/// `---` or `...` at the start of a line, followed by whitespace or the end of the line.
fn marker(line: &str, token: &str) -> Option<&'static str> {
    let rest = line.strip_prefix(token)?;
    if rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']) {
        Some("")
    } else {
        None
    }
}

/// Does the text after a `---` (or a whole line) carry document content?
fn has_content(text: &str, in_prologue: bool) -> bool {
    let t = text.trim();
    !(t.is_empty() || t.starts_with('#') || (in_prologue && t.starts_with('%')))
}

fn segments(text: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut first_line = 0u64;
    // `explicit`: the segment began with `---` (an explicit, possibly empty, document).
    let mut explicit = false;
    let mut content = false;
    let mut offset = 0usize;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_no = index as u64;
        if marker(line, "---").is_some() {
            if explicit || content {
                out.push(Segment {
                    start,
                    end: offset,
                    first_line,
                });
                start = offset;
                first_line = line_no;
            }
            // A prologue of comments or directives stays with the document it introduces.
            explicit = true;
            content = has_content(&line[3..], false);
        } else if marker(line, "...").is_some() {
            let end = offset + line.len();
            if explicit || content {
                out.push(Segment {
                    start,
                    end,
                    first_line,
                });
            }
            start = end;
            first_line = line_no + 1;
            explicit = false;
            content = false;
        } else if !content && has_content(line, !explicit) {
            content = true;
        }
        offset += line.len();
    }
    if explicit || content {
        out.push(Segment {
            start,
            end: text.len(),
            first_line,
        });
    }
    out
}

fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // Duplicate keys are errors, as in ytt (which kapp-controller runs over packages/).
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        with_snippet: false,
    }
}

/// Parse every document of `text`; each document's outcome is independent of the others.
pub(crate) fn parse(text: &str) -> Vec<Document> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    segments(text)
        .into_iter()
        .enumerate()
        .map(|(index, seg)| Document {
            number: index + 1,
            value: parse_segment(&text[seg.start..seg.end], seg.first_line),
        })
        .collect()
}

fn parse_segment(text: &str, first_line: u64) -> Result<Option<serde_json::Value>, ProblemKind> {
    match serde_saphyr::from_str_with_options::<Option<serde_json::Value>>(text, parse_options()) {
        Ok(Some(serde_json::Value::Null)) | Ok(None) => Ok(None),
        Ok(value) => Ok(value),
        Err(error) => {
            let (line, column) = error
                .location()
                .map(|l| (l.line() + first_line, l.column()))
                .unwrap_or((first_line + 1, 1));
            let message = serde_saphyr::UserMessageFormatter.format_message(&error);
            Err(ProblemKind::Yaml {
                line,
                column,
                // The formatter leaves layout to the caller: keep the text on one line.
                message: message
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(usize, Result<Option<serde_json::Value>, ProblemKind>)> {
        parse(text).into_iter().map(|d| (d.number, d.value)).collect()
    }

    #[test]
    fn a_bare_document_is_document_one() {
        let docs = values("a: 1\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].1, Ok(Some(serde_json::json!({"a": 1}))));
    }

    #[test]
    fn a_leading_separator_after_comments_does_not_add_a_document() {
        let docs = values("# header\n%YAML 1.2\n---\na: 1\n---\nb: 2\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].1, Ok(Some(serde_json::json!({"a": 1}))));
        assert_eq!(docs[1].1, Ok(Some(serde_json::json!({"b": 2}))));
    }

    #[test]
    fn empty_documents_are_counted_but_empty() {
        let docs = values("---\n---\n# nothing\n---\nc: 3\n");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].1, Ok(None));
        assert_eq!(docs[1].1, Ok(None));
        assert_eq!(docs[2].0, 3);
        assert_eq!(docs[2].1, Ok(Some(serde_json::json!({"c": 3}))));
    }

    #[test]
    fn content_on_the_separator_line_is_part_of_the_document() {
        let docs = values("--- {a: 1}\n--- [1]\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].1, Ok(Some(serde_json::json!({"a": 1}))));
        assert_eq!(docs[1].1, Ok(Some(serde_json::json!([1]))));
    }

    #[test]
    fn end_markers_close_a_document() {
        let docs = values("a: 1\n...\n---\nb: 2\n...\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].1, Ok(Some(serde_json::json!({"b": 2}))));
    }

    #[test]
    fn dashes_inside_a_line_are_not_separators() {
        let docs = values("a: '---'\nb: ---x\n----: 1\n");
        assert_eq!(docs.len(), 1);
        assert_eq!(
            docs[0].1,
            Ok(Some(serde_json::json!({"a": "---", "b": "---x", "----": 1})))
        );
    }

    #[test]
    fn a_malformed_document_reports_its_line_in_the_file_and_leaves_others_alone() {
        let docs = values("a: 1\n---\nb: 2\n---\nc: [1, 2\n---\nd: 4\n");
        assert_eq!(docs.len(), 4);
        match &docs[2].1 {
            Err(ProblemKind::Yaml {
                line,
                column,
                message,
            }) => {
                assert_eq!((*line, *column), (5, 4), "{message}");
                assert!(message.contains('['), "{message}");
            }
            other => panic!("expected a YAML error, got {other:?}"),
        }
        assert_eq!(docs[3].1, Ok(Some(serde_json::json!({"d": 4}))));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let docs = values("x: 0\n---\na: 1\na: 2\n");
        match &docs[1].1 {
            Err(ProblemKind::Yaml { line, message, .. }) => {
                assert_eq!(*line, 4);
                assert!(message.contains("duplicate"), "{message}");
            }
            other => panic!("expected a YAML error, got {other:?}"),
        }
    }

    #[test]
    fn crlf_line_endings_split_the_same_way() {
        let docs = values("a: 1\r\n---\r\nb: 2\r\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].1, Ok(Some(serde_json::json!({"b": 2}))));
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let docs = values("\u{feff}a: 1\n");
        assert_eq!(docs[0].1, Ok(Some(serde_json::json!({"a": 1}))));
    }

    #[test]
    fn a_null_document_is_empty() {
        let docs = values("~\n---\nnull\n");
        assert_eq!(docs.len(), 2);
        assert!(docs.iter().all(|d| d.1 == Ok(None)));
    }
}
