//! Everything the CLI prints on stdout goes through [`Ui`]: imgpkg's global output flags
//! (`--tty`, `--json`, `--column`, …), its blank-line padding, its tables, and its JSON document.
//!
//! imgpkg's UI (go-cli-ui) decides three things that scripts depend on, reproduced here:
//! - status lines (`Pushed '…'`, `Succeeded`) are shown only on a terminal or with `--tty`;
//!   blocks (a resolved digest, a version) and tables always are;
//! - a blank line separates output of different kinds (a block then a line, two lines);
//! - with `--json`, nothing is printed until the end, then one document
//!   `{"Tables": […], "Blocks": […], "Lines": […]}` holds all of it, the error line included.
//!
//! In pkgr's own voice status lines are always shown; the rest is the same.
use super::voice::Voice;
use std::io::{IsTerminal as _, Write as _};
use std::sync::{Mutex, OnceLock};

/// imgpkg's global flags, accepted before or after any subcommand.
///
/// Booleans take Go's forms (`--tty`, `--tty=true`, `--tty=false`).
#[derive(clap::Args, Clone, Debug)]
pub struct UiFlags {
    /// Force terminal-style output (status lines, table titles) even when stdout is not a terminal.
    #[arg(long, global = true, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    pub tty: bool,
    /// Assume yes for any prompt (pkgr never prompts; accepted for imgpkg's scripts).
    #[arg(short = 'y', long, global = true, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    pub yes: bool,
    /// Print the output as one JSON document ({"Tables", "Blocks", "Lines"}), as imgpkg does.
    #[arg(long, global = true, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    pub json: bool,
    /// Colour output (pkgr prints no colours; accepted for imgpkg's scripts).
    #[arg(long, global = true, default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    pub color: bool,
    /// Show only these table columns (comma-separated or repeated), by header name.
    #[arg(long = "column", global = true, value_delimiter = ',', value_name = "NAME")]
    pub columns: Vec<String>,
    /// Dump every registry request and response on stderr (credentials redacted).
    #[arg(long, global = true, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    pub debug: bool,
}

/// A table as imgpkg prints it: sorted by its first column, hidden columns left out.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub title: String,
    /// The plural noun of the footer (`2 tags`) and the JSON `Content`.
    pub content: String,
    pub headers: Vec<Header>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Clone, Debug)]
pub struct Header {
    pub title: String,
    pub hidden: bool,
}

impl Header {
    pub fn new(title: &str) -> Header {
        Header {
            title: title.to_string(),
            hidden: false,
        }
    }

    /// imgpkg's column key: lower case, spaces as underscores (`Name` → `name`).
    pub fn key(&self) -> String {
        self.title.to_lowercase().replace(' ', "_")
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Start,
    Raw,
    Auto,
}

#[derive(Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct JsonDoc {
    tables: Option<Vec<JsonTable>>,
    blocks: Option<Vec<String>>,
    lines: Option<Vec<String>>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct JsonTable {
    content: String,
    header: std::collections::BTreeMap<String, String>,
    rows: Vec<std::collections::BTreeMap<String, String>>,
    notes: Option<Vec<String>>,
}

pub struct Ui {
    voice: Voice,
    show_lines: bool,
    tty: bool,
    json: bool,
    columns: Vec<String>,
    /// Keep output in memory instead of writing it (unit tests).
    capture: bool,
    state: Mutex<State>,
}

struct State {
    previous: Mode,
    doc: JsonDoc,
    out: Vec<u8>,
}

static UI: OnceLock<Ui> = OnceLock::new();

/// The process's UI; pkgr's plain defaults until [`Ui::install`] ran (library use, tests).
pub fn ui() -> &'static Ui {
    UI.get_or_init(|| Ui::new(Voice::Pkgr, &UiFlags::default(), false))
}

impl Default for UiFlags {
    fn default() -> Self {
        UiFlags {
            tty: false,
            yes: false,
            json: false,
            color: true,
            columns: Vec::new(),
            debug: false,
        }
    }
}

impl Ui {
    /// A UI for `voice`; `stdout_is_terminal` stands for imgpkg's own terminal check.
    pub fn new(voice: Voice, flags: &UiFlags, stdout_is_terminal: bool) -> Ui {
        let tty = flags.tty || stdout_is_terminal;
        Ui {
            voice,
            show_lines: voice == Voice::Pkgr || tty,
            tty,
            json: flags.json,
            columns: flags.columns.iter().map(|c| Header::new(c).key()).collect(),
            capture: false,
            state: Mutex::new(State {
                previous: Mode::Start,
                doc: JsonDoc::default(),
                out: Vec::new(),
            }),
        }
    }

    /// Set the process's UI from the command line (once, before any output).
    pub fn install(voice: Voice, flags: &UiFlags) -> &'static Ui {
        let _ = UI.set(Ui::new(voice, flags, std::io::stdout().is_terminal()));
        ui()
    }

    pub fn voice(&self) -> Voice {
        self.voice
    }

    /// Whether output goes into one JSON document (`--json`).
    pub fn json(&self) -> bool {
        self.json
    }

    /// A status line (imgpkg's `PrintLinef`): `Pushed '…'`, `Succeeded`.
    pub fn line(&self, text: &str) {
        self.emit(
            Mode::Auto,
            |state, json| {
                if json {
                    state.doc.lines.get_or_insert_default().push(text.to_string());
                } else {
                    writeln_to(&mut state.out, text);
                }
            },
            self.show_lines,
        );
    }

    /// A log line of a running command (imgpkg's logger): consecutive ones are not padded.
    pub fn log(&self, text: &str) {
        self.emit(
            Mode::Raw,
            |state, json| {
                if json {
                    state.doc.lines.get_or_insert_default().push(text.to_string());
                } else {
                    writeln_to(&mut state.out, text);
                }
            },
            self.show_lines,
        );
    }

    /// A block of output that is the command's result (a digest, a version): always shown.
    ///
    /// imgpkg writes blocks as they are (`tag resolve` prints no newline); pkgr ends each line.
    pub fn block(&self, text: &str) {
        let end_line = self.voice == Voice::Pkgr && !text.ends_with('\n');
        self.emit(
            Mode::Raw,
            |state, json| {
                if json {
                    state.doc.blocks.get_or_insert_default().push(text.to_string());
                } else {
                    state.out.extend_from_slice(text.as_bytes());
                    if end_line {
                        state.out.push(b'\n');
                    }
                }
            },
            true,
        );
    }

    /// The final `Succeeded`.
    pub fn succeeded(&self) {
        self.line("Succeeded");
    }

    /// Print a table: on a terminal (or `--tty`) with title, header and a count; otherwise only
    /// the rows, tab-separated; with `--json` into the document.
    pub fn table(&self, table: &Table) {
        let mut table = table.clone();
        if !self.columns.is_empty() {
            for header in &mut table.headers {
                header.hidden = !self.columns.contains(&header.key());
            }
        }
        table.rows.sort_by(|a, b| a.first().cmp(&b.first()));
        let tty = self.tty;
        self.emit(
            Mode::Auto,
            |state, json| {
                if json {
                    state.doc.tables.get_or_insert_default().push(json_table(&table));
                } else {
                    state.out.extend_from_slice(text_table(&table, tty).as_bytes());
                }
            },
            true,
        );
    }

    /// Report a failed command: on stderr in the voice's words, or as a JSON line.
    pub fn error(&self, error: &(dyn std::error::Error + 'static)) {
        let text = self.voice.error_text(error);
        if self.json {
            let mut state = self.lock();
            state.doc.lines.get_or_insert_default().push(text);
            return;
        }
        self.flush_out();
        // imgpkg pads the error line like any other once something was printed.
        let padded = self.lock().previous != Mode::Start;
        let mut err = std::io::stderr().lock();
        if padded && self.voice == Voice::Imgpkg {
            let _ = writeln!(std::io::stdout());
        }
        let _ = writeln!(err, "{text}");
    }

    /// Write what is pending: the JSON document at the end of a `--json` run.
    pub fn finish(&self) {
        if self.json {
            let doc = std::mem::take(&mut self.lock().doc);
            if doc.tables.is_some() || doc.blocks.is_some() || doc.lines.is_some() {
                let mut text = go_indent_json(&doc);
                text.push('\n');
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
            }
        }
        self.flush_out();
    }

    fn emit(&self, mode: Mode, write: impl FnOnce(&mut State, bool), shown: bool) {
        if !shown && !self.json {
            return;
        }
        {
            let mut state = self.lock();
            if !self.json {
                let pad = !matches!((state.previous, mode), (Mode::Start, _) | (Mode::Raw, Mode::Raw));
                if pad {
                    state.out.push(b'\n');
                }
            }
            state.previous = mode;
            write(&mut state, self.json);
        }
        self.flush_out();
    }

    fn flush_out(&self) {
        if self.capture {
            return;
        }
        let out = std::mem::take(&mut self.lock().out);
        if !out.is_empty() {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&out);
            let _ = stdout.flush();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn captured(voice: Voice, flags: &UiFlags) -> Ui {
        Ui {
            capture: true,
            ..Ui::new(voice, flags, false)
        }
    }

    #[cfg(test)]
    fn take_output(&self) -> (String, Option<String>) {
        let mut state = self.lock();
        let out = String::from_utf8(std::mem::take(&mut state.out)).unwrap();
        let doc = std::mem::take(&mut state.doc);
        let json = (doc.tables.is_some() || doc.blocks.is_some() || doc.lines.is_some())
            .then(|| go_indent_json(&doc));
        (out, json)
    }
}

fn writeln_to(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

/// Go's `json.MarshalIndent(v, "", "    ")`: four-space indent, `null` for absent lists.
fn go_indent_json(doc: &JsonDoc) -> String {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    serde::Serialize::serialize(doc, &mut ser).expect("strings and maps always serialise");
    String::from_utf8(buf).expect("serde_json writes UTF-8")
}

fn json_table(table: &Table) -> JsonTable {
    let visible: Vec<(usize, &Header)> = table
        .headers
        .iter()
        .enumerate()
        .filter(|(_, h)| !h.hidden)
        .collect();
    JsonTable {
        content: table.content.clone(),
        header: visible.iter().map(|(_, h)| (h.key(), h.title.clone())).collect(),
        rows: table
            .rows
            .iter()
            .map(|row| {
                visible
                    .iter()
                    .map(|(i, h)| (h.key(), row.get(*i).cloned().unwrap_or_default()))
                    .collect()
            })
            .collect(),
        notes: None,
    }
}

/// go-cli-ui's text table: columns padded to their widest cell and separated by two spaces on a
/// terminal; rows only, tab-separated, otherwise. Empty cells print as `-`.
fn text_table(table: &Table, tty: bool) -> String {
    let visible: Vec<usize> = (0..table.headers.len())
        .filter(|i| !table.headers[*i].hidden)
        .collect();
    let cell = |row: &Vec<String>, i: usize| match row.get(i).map(String::as_str) {
        None | Some("") => "-".to_string(),
        Some(s) => s.to_string(),
    };
    let mut out = String::new();
    if !tty {
        for row in &table.rows {
            for &i in &visible {
                out.push_str(&cell(row, i));
                out.push('\t');
            }
            out.push('\n');
        }
        return out;
    }
    let mut lines: Vec<Vec<String>> = vec![visible.iter().map(|&i| table.headers[i].title.clone()).collect()];
    lines.extend(
        table
            .rows
            .iter()
            .map(|row| visible.iter().map(|&i| cell(row, i)).collect()),
    );
    let widths: Vec<usize> = (0..visible.len())
        .map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0))
        .collect();
    if !table.title.is_empty() {
        out.push_str(&table.title);
        out.push_str("\n\n");
    }
    for line in &lines {
        for (c, value) in line.iter().enumerate() {
            out.push_str(value);
            if c + 1 < line.len() {
                out.push_str(&" ".repeat(widths[c] - value.chars().count()));
            }
            out.push_str("  ");
        }
        out.push('\n');
    }
    if !table.content.is_empty() {
        out.push_str(&format!("\n{} {}\n", table.rows.len(), table.content));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(tty: bool, json: bool) -> UiFlags {
        UiFlags {
            tty,
            json,
            ..UiFlags::default()
        }
    }

    fn tags() -> Table {
        let mut digest = Header::new("Digest");
        digest.hidden = true;
        Table {
            title: "Tags".into(),
            content: "tags".into(),
            headers: vec![Header::new("Name"), digest],
            rows: vec![vec!["v2".into(), "".into()], vec!["v1".into(), "".into()]],
        }
    }

    #[test]
    fn imgpkg_status_lines_need_a_terminal_or_tty() {
        let quiet = Ui::captured(Voice::Imgpkg, &flags(false, false));
        quiet.line("Pushed 'x'");
        quiet.block("imgpkg version 1\n");
        quiet.succeeded();
        assert_eq!(quiet.take_output().0, "imgpkg version 1\n");

        let tty = Ui::captured(Voice::Imgpkg, &flags(true, false));
        tty.block("imgpkg version 1\n");
        tty.succeeded();
        assert_eq!(tty.take_output().0, "imgpkg version 1\n\nSucceeded\n");

        // Logger lines run together; a status line after them is set apart.
        let pkgr = Ui::captured(Voice::Pkgr, &flags(false, false));
        pkgr.log("Pulling bundle 'x'");
        pkgr.log("Extracting layer 'y'");
        pkgr.succeeded();
        assert_eq!(
            pkgr.take_output().0,
            "Pulling bundle 'x'\nExtracting layer 'y'\n\nSucceeded\n"
        );
    }

    #[test]
    fn json_document_has_imgpkg_shape() {
        let ui = Ui::captured(Voice::Imgpkg, &flags(false, true));
        ui.table(&tags());
        ui.succeeded();
        let (out, json) = ui.take_output();
        assert_eq!(out, "");
        assert_eq!(
            json.unwrap(),
            r#"{
    "Tables": [
        {
            "Content": "tags",
            "Header": {
                "name": "Name"
            },
            "Rows": [
                {
                    "name": "v1"
                },
                {
                    "name": "v2"
                }
            ],
            "Notes": null
        }
    ],
    "Blocks": null,
    "Lines": [
        "Succeeded"
    ]
}"#
        );
    }

    #[test]
    fn text_tables_on_a_terminal_and_in_a_pipe() {
        let mut table = tags();
        table.headers[1].hidden = false;
        table.rows[0][1] = "sha256:2".into();
        table.rows.sort();
        assert_eq!(
            text_table(&table, true),
            "Tags\n\nName  Digest  \nv1    -  \nv2    sha256:2  \n\n2 tags\n"
        );
        assert_eq!(text_table(&table, false), "v1\t-\t\nv2\tsha256:2\t\n");
    }

    #[test]
    fn columns_flag_hides_the_others() {
        let mut table = tags();
        table.headers[1].hidden = false;
        let ui = Ui::captured(
            Voice::Imgpkg,
            &UiFlags {
                json: true,
                columns: vec!["digest".into()],
                ..UiFlags::default()
            },
        );
        ui.table(&table);
        let (_, json) = ui.take_output();
        let json = json.unwrap();
        assert!(json.contains(r#""digest": "Digest""#), "{json}");
        assert!(!json.contains(r#""name""#), "{json}");
    }
}
