//! kbld's `kbld.k14s.io/images` annotation: the record kbld writes on every resource whose image
//! references it rewrote. kapp-controller's relocation step is kbld, so the Packages it stores
//! carry this annotation; pkgr writes the same text.
//!
//! Each rewritten reference gives one entry, sorted by URL: the lock entry's own origins
//! (`kbld.carvel.dev/origins`, decoded as kbld's `Origin` type) followed by a `preresolved`
//! origin, printed as `sigs.k8s.io/yaml` prints it (sorted keys, go-yaml v2 layout and quoting).
use super::gojson::{self, Field, GoStruct, Ty};
use crate::bundle::lock::LockedImage;
use serde_json::{Map, Value, json};

/// The annotation kbld writes on a resource whose images it rewrote.
pub const KBLD_IMAGES_ANNOTATION: &str = "kbld.k14s.io/images";
/// The ImagesLock annotation holding where an image came from (a YAML list of origins).
pub const KBLD_ORIGINS_ANNOTATION: &str = "kbld.carvel.dev/origins";

static ORIGIN_GIT: GoStruct = GoStruct {
    name: "OriginGit",
    fields: &[
        Field::kept("remoteURL", Ty::String),
        Field::kept("sha", Ty::String),
        Field::kept("dirty", Ty::Bool),
        Field::value("tags", Ty::List(&Ty::String)),
    ],
};

static ORIGIN_LOCAL: GoStruct = GoStruct {
    name: "OriginLocal",
    fields: &[Field::kept("path", Ty::String)],
};

static ORIGIN_RESOLVED: GoStruct = GoStruct {
    name: "OriginResolved",
    fields: &[Field::kept("url", Ty::String), Field::value("tag", Ty::String)],
};

static ORIGIN_TAGGED: GoStruct = GoStruct {
    name: "OriginTagged",
    fields: &[Field::value("tags", Ty::List(&Ty::String))],
};

static ORIGIN_PRERESOLVED: GoStruct = GoStruct {
    name: "OriginPreresolved",
    fields: &[Field::kept("url", Ty::String)],
};

static ORIGIN_PLATFORM: GoStruct = GoStruct {
    name: "OriginPlatformSelected",
    fields: &[
        Field::value("index", Ty::String),
        Field::value("os", Ty::String),
        Field::value("architecture", Ty::String),
        Field::value("variant", Ty::String),
    ],
};

static ORIGIN: GoStruct = GoStruct {
    name: "Origin",
    fields: &[
        Field::pointer("git", Ty::Struct(&ORIGIN_GIT)),
        Field::pointer("local", Ty::Struct(&ORIGIN_LOCAL)),
        Field::pointer("resolved", Ty::Struct(&ORIGIN_RESOLVED)),
        Field::pointer("tagged", Ty::Struct(&ORIGIN_TAGGED)),
        Field::pointer("preresolved", Ty::Struct(&ORIGIN_PRERESOLVED)),
        Field::pointer("platformSelected", Ty::Struct(&ORIGIN_PLATFORM)),
    ],
};

/// The origins recorded on a lock entry. Unknown origin kinds are dropped, as kbld drops them;
/// an annotation that does not parse gives none (the origins are diagnostics, the rewrite does
/// not depend on them).
fn lock_origins(entry: &LockedImage) -> Vec<Value> {
    let Some(text) = entry.annotations.get(KBLD_ORIGINS_ANNOTATION) else {
        return Vec::new();
    };
    let Ok(parsed) = serde_saphyr::from_str::<Value>(text) else {
        return Vec::new();
    };
    static ORIGINS: Ty = Ty::List(&Ty::Struct(&ORIGIN));
    let decoded = gojson::normalise(&ORIGINS, parsed, "");
    if !decoded.errors.is_empty() {
        return Vec::new();
    }
    match decoded.value {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

/// The annotation's value for a resource in which `rewritten` (one per rewritten reference)
/// replaced its image references.
pub(crate) fn images_annotation(rewritten: &[&LockedImage]) -> String {
    let mut entries: Vec<(&str, Value)> = rewritten
        .iter()
        .map(|entry| {
            let mut origins = lock_origins(entry);
            origins.push(json!({"preresolved": {"url": entry.image}}));
            (
                entry.image.as_str(),
                json!({"origins": origins, "url": entry.image}),
            )
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let list = Value::Array(entries.into_iter().map(|(_, v)| v).collect());
    let mut out = String::new();
    emit(&list, 0, &mut out);
    out
}

/// go-yaml v2's block layout: a sequence under a key is not indented, a mapping is indented by
/// two, keys are sorted.
fn emit(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&" ".repeat(indent));
                out.push_str("- ");
                emit_inline_start(item, indent + 2, out);
            }
        }
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in sorted(map) {
                out.push_str(&" ".repeat(indent));
                emit_entry(key, child, indent, out);
            }
        }
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

/// A sequence item's content, starting right after `- `.
fn emit_inline_start(item: &Value, indent: usize, out: &mut String) {
    match item {
        Value::Array(items) if !items.is_empty() => {
            // `- - x`: the nested sequence starts on the same line.
            let mut first = true;
            for inner in items {
                if !first {
                    out.push_str(&" ".repeat(indent));
                }
                first = false;
                out.push_str("- ");
                emit_inline_start(inner, indent + 2, out);
            }
        }
        Value::Object(map) if !map.is_empty() => {
            for (i, (key, child)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(&" ".repeat(indent));
                }
                emit_entry(key, child, indent, out);
            }
        }
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

fn emit_entry(key: &str, child: &Value, indent: usize, out: &mut String) {
    out.push_str(&string_text(key));
    match child {
        Value::Array(items) if !items.is_empty() => {
            out.push_str(":\n");
            emit(child, indent, out);
        }
        Value::Object(map) if !map.is_empty() => {
            out.push_str(":\n");
            emit(child, indent + 2, out);
        }
        scalar => {
            out.push_str(": ");
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

fn sorted(map: &Map<String, Value>) -> Vec<(&str, &Value)> {
    let mut entries: Vec<(&str, &Value)> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => string_text(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
        other => other.to_string(),
    }
}

/// A string as go-yaml v2 prints it: plain when it reads back as the same string, double-quoted
/// when plain text would read as another type, single-quoted when it holds YAML indicators.
fn string_text(s: &str) -> String {
    if resolves_to_non_string(s) || s.chars().any(|c| c.is_control()) {
        return Value::String(s.to_string()).to_string();
    }
    if plain_allowed(s) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// YAML 1.1 as go-yaml v2 resolves plain scalars: null, booleans, integers, floats, base 60.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true",
        "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", ".inf", ".Inf",
        ".INF", "-.inf", "-.Inf", "-.INF", "+.inf", "+.Inf", "+.INF", ".nan", ".NaN", ".NAN",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if let Some(hex) = unsigned.strip_prefix("0x") {
        return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit() || b == b'_');
    }
    if let Some(bin) = unsigned.strip_prefix("0b") {
        return !bin.is_empty() && bin.bytes().all(|b| b == b'0' || b == b'1' || b == b'_');
    }
    if digits(unsigned) {
        return true;
    }
    // Base 60 (`1:20`), which go-yaml v2 still quotes.
    if unsigned.contains(':') {
        let mut parts = unsigned.split(':');
        let first = parts.next().unwrap_or_default();
        let first_ok = !first.is_empty() && first.as_bytes()[0].is_ascii_digit() && digits(first);
        if first_ok && parts.all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit())) {
            return true;
        }
    }
    // [0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)? or \.[0-9]+(...)?
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (whole.is_empty() && digits(fraction))
                || (digits(whole) && (fraction.is_empty() || digits(fraction)))
        }
        None => false,
    } || (exponent.is_some() && digits(mantissa));
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// libyaml's check of whether a scalar can be written plain in block context.
fn plain_allowed(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    let space_after = |i: usize| b.get(i + 1).is_none_or(|c| *c == b' ');
    if b"#,[]{}&*!|>'\"%@`".contains(&first) {
        return false;
    }
    if (first == b'-' || first == b'?' || first == b':') && space_after(0) {
        return false;
    }
    if first == b' ' || b[b.len() - 1] == b' ' {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        if c == b':' && space_after(i) {
            return false;
        }
        if c == b'#' && i > 0 && b[i - 1] == b' ' {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(image: &str, origins: Option<&str>) -> LockedImage {
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert("kbld.carvel.dev/id".to_string(), "x".to_string());
        if let Some(o) = origins {
            annotations.insert(KBLD_ORIGINS_ANNOTATION.to_string(), o.to_string());
        }
        LockedImage {
            image: image.to_string(),
            annotations,
        }
    }

    #[test]
    fn entries_are_sorted_by_url_with_the_lock_origins_then_preresolved() {
        let a = entry(
            "index.docker.io/library/nginx@sha256:f798",
            Some("- resolved:\n    tag: 1.14.2\n    url: nginx:1.14.2\n"),
        );
        let b = entry(
            "index.docker.io/library/nginx@sha256:4a55",
            Some("- resolved:\n    tag: \"1.15\"\n    url: nginx:1.15\n- unknownKind: {a: 1}\n"),
        );
        assert_eq!(
            images_annotation(&[&a, &b]),
            "- origins:\n  - resolved:\n      tag: \"1.15\"\n      url: nginx:1.15\n  - {}\n  - preresolved:\n      url: index.docker.io/library/nginx@sha256:4a55\n  url: index.docker.io/library/nginx@sha256:4a55\n\
             - origins:\n  - resolved:\n      tag: 1.14.2\n      url: nginx:1.14.2\n  - preresolved:\n      url: index.docker.io/library/nginx@sha256:f798\n  url: index.docker.io/library/nginx@sha256:f798\n"
        );
    }

    #[test]
    fn git_origins_keep_their_fields_in_go_order_sorted() {
        let a = entry(
            "reg/app@sha256:11",
            Some(
                "- git:\n    sha: \"1234567\"\n    remoteURL: git@github.com:org/repo.git\n    dirty: false\n    tags: [v1]\n- local:\n    path: ./src\n",
            ),
        );
        assert_eq!(
            images_annotation(&[&a]),
            "- origins:\n  - git:\n      dirty: false\n      remoteURL: git@github.com:org/repo.git\n      sha: \"1234567\"\n      tags:\n      - v1\n  - local:\n      path: ./src\n  - preresolved:\n      url: reg/app@sha256:11\n  url: reg/app@sha256:11\n"
        );
    }

    #[test]
    fn strings_are_quoted_as_go_yaml_quotes_them() {
        for (s, text) in [
            ("nginx:1.14.2", "nginx:1.14.2"),
            ("1.14.2", "1.14.2"),
            ("1.15", "\"1.15\""),
            ("123", "\"123\""),
            ("yes", "\"yes\""),
            ("", "\"\""),
            ("1e3", "\"1e3\""),
            ("1:20", "\"1:20\""),
            ("0x1F", "\"0x1F\""),
            ("a: b", "'a: b'"),
            ("*x", "'*x'"),
            ("-x", "-x"),
            ("it's", "it's"),
        ] {
            assert_eq!(string_text(s), text, "{s:?}");
        }
    }
}
