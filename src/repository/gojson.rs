//! Go's `encoding/json` applied to a parsed document: decode it into a described Go type and
//! encode it back, as kapp-controller does to every Package and PackageMetadata it applies.
//!
//! Decoding refuses what Go refuses (a number where a string belongs, a string where a list
//! belongs, a duration `time.ParseDuration` rejects, a time that is not RFC 3339) and drops what
//! Go drops (fields the type does not have). Encoding prints what Go prints: durations as
//! `Duration.String`, times in UTC, `omitempty` fields left out when empty. Where Go would print
//! `null` (a nil pointer, a zero `metav1.Time`, an empty `RawExtension`) the field is left out:
//! the API server prunes nulls from a custom resource, so that is what gets stored.
use crate::gotime::{self, UnixSeconds};
use serde_json::{Map, Value};

/// A Go type, as far as its JSON form goes.
#[derive(Debug)]
pub(crate) enum Ty {
    /// `string`
    String,
    /// `bool`
    Bool,
    /// `metav1.Duration`: a string `time.ParseDuration` accepts.
    Duration,
    /// `metav1.Time`: an RFC 3339 string, or null for the zero time.
    Time,
    /// `runtime.RawExtension` stored in a field the CRD types as an object.
    RawObject,
    /// `map[string]string`
    StringMap,
    /// `[]T`
    List(&'static Ty),
    /// A struct; every field of the types described here is `omitempty`.
    Struct(&'static GoStruct),
}

/// A Go struct: its name (for messages) and its JSON fields in declaration order.
#[derive(Debug)]
pub(crate) struct GoStruct {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// One JSON field of a struct.
#[derive(Debug)]
pub(crate) struct Field {
    pub json: &'static str,
    pub ty: Ty,
    /// `*T`: null and absence are nil, and a nil pointer is left out.
    pub pointer: bool,
    /// No `omitempty`: `""` and `false` are printed.
    pub keep_empty: bool,
}

impl Field {
    pub(crate) const fn value(json: &'static str, ty: Ty) -> Field {
        Field {
            json,
            ty,
            pointer: false,
            keep_empty: false,
        }
    }

    pub(crate) const fn pointer(json: &'static str, ty: Ty) -> Field {
        Field {
            json,
            ty,
            pointer: true,
            keep_empty: false,
        }
    }

    /// A value field without `omitempty`.
    pub(crate) const fn kept(json: &'static str, ty: Ty) -> Field {
        Field {
            json,
            ty,
            pointer: false,
            keep_empty: true,
        }
    }
}

impl Ty {
    /// What a person should write, for messages.
    pub(crate) fn expected(&self) -> String {
        match self {
            Ty::String => "a string".into(),
            Ty::Bool => "true or false".into(),
            Ty::Duration => "a Go duration such as 30s, 5m or 1h30m".into(),
            Ty::Time => "an RFC 3339 time such as 2021-05-05T18:57:06Z".into(),
            Ty::RawObject => "an object (an OpenAPI v3 schema)".into(),
            Ty::StringMap => "a map of names to strings".into(),
            Ty::List(Ty::String) => "a list of strings".into(),
            Ty::List(elem) => format!("a list of {}", elem.plural()),
            Ty::Struct(s) => format!("an object ({})", s.name),
        }
    }

    fn plural(&self) -> String {
        match self {
            Ty::Struct(s) => format!("objects ({})", s.name),
            other => other.expected(),
        }
    }

    /// Go's notation for the type, for tables and messages (`[]string`, `*metav1.Duration`).
    pub(crate) fn go_name(&self) -> String {
        match self {
            Ty::String => "string".into(),
            Ty::Bool => "bool".into(),
            Ty::Duration => "metav1.Duration".into(),
            Ty::Time => "metav1.Time".into(),
            Ty::RawObject => "runtime.RawExtension".into(),
            Ty::StringMap => "map[string]string".into(),
            Ty::List(elem) => format!("[]{}", elem.go_name()),
            Ty::Struct(s) => s.name.into(),
        }
    }
}

/// A field whose value Go refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TypeError {
    /// Path from the document root, with keys as written: `spec.template.spec.fetch[0].git.url`.
    pub field: String,
    pub expected: String,
    pub found: String,
}

/// The result of decoding and re-encoding one value.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// The value as Go would encode it (`None`: nothing would be stored).
    pub value: Option<Value>,
    /// Type errors, in document order.
    pub errors: Vec<TypeError>,
    /// Paths of fields the type does not have, which Go drops without a word.
    pub dropped: Vec<String>,
}

/// Decode `input` (found at `path`) as a value of type `ty` and encode it again. The input is
/// taken by value so that strings and raw objects move through without copies.
pub(crate) fn normalise(ty: &Ty, input: Value, path: &str) -> Decoded {
    let mut decoder = Decoder::default();
    let mut path = path.to_string();
    let go = decoder.decode(ty, false, input, zero(ty), &mut path);
    Decoded {
        value: encode(ty, go),
        errors: decoder.errors,
        dropped: decoder.dropped,
    }
}

/// A decoded Go value.
#[derive(Clone, Debug)]
enum Go {
    Str(String),
    Bool(bool),
    Duration(i64),
    /// `None`: Go's zero time.
    Time(Option<UnixSeconds>),
    /// `None`: no raw bytes (null or absent).
    Raw(Option<Value>),
    Map(Option<Map<String, Value>>),
    List(Option<Vec<Go>>),
    /// One value per field, in declaration order.
    Struct(Vec<Go>),
    /// A nil pointer.
    Nil,
}

fn zero(ty: &Ty) -> Go {
    match ty {
        Ty::String => Go::Str(String::new()),
        Ty::Bool => Go::Bool(false),
        // Only reachable as a value type; Go's zero Duration prints as "0s".
        Ty::Duration => Go::Duration(0),
        Ty::Time => Go::Time(None),
        Ty::RawObject => Go::Raw(None),
        Ty::StringMap => Go::Map(None),
        Ty::List(_) => Go::List(None),
        Ty::Struct(s) => zero_struct(s),
    }
}

fn zero_struct(s: &GoStruct) -> Go {
    Go::Struct(
        s.fields
            .iter()
            .map(|f| if f.pointer { Go::Nil } else { zero(&f.ty) })
            .collect(),
    )
}

/// How a JSON value reads in a message.
fn found(value: &Value) -> String {
    let shown = |v: &Value| {
        let text = v.to_string();
        if text.chars().count() > 60 {
            format!("{}...", text.chars().take(57).collect::<String>())
        } else {
            text
        }
    };
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(_) => format!("a number ({})", shown(value)),
        Value::String(_) => format!("a string ({})", shown(value)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Go's `encoding/json` field matching: the exact name, else the first field whose name
/// matches ignoring case.
fn field_index(s: &GoStruct, key: &str) -> Option<usize> {
    s.fields
        .iter()
        .position(|f| f.json == key)
        .or_else(|| s.fields.iter().position(|f| f.json.eq_ignore_ascii_case(key)))
}

/// `a.b` for a name that reads as one, `a["x.y"]` otherwise.
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push_str(&format!("[{}]", Value::String(key.to_string())));
    }
}

#[derive(Default)]
struct Decoder {
    errors: Vec<TypeError>,
    dropped: Vec<String>,
}

impl Decoder {
    fn refuse(&mut self, path: &str, ty: &Ty, value: &Value) {
        self.errors.push(TypeError {
            field: path.to_string(),
            expected: ty.expected(),
            found: found(value),
        });
    }

    /// Decode `input` into `into` (Go decodes into the existing value: a repeated key merges
    /// into a struct and overwrites a scalar).
    fn decode(&mut self, ty: &Ty, pointer: bool, input: Value, into: Go, path: &mut String) -> Go {
        if pointer {
            if input.is_null() {
                return Go::Nil;
            }
            let target = match into {
                Go::Nil => zero(ty),
                existing => existing,
            };
            return self.decode(ty, false, input, target, path);
        }
        match (ty, input) {
            // Null leaves a value type as it was (Go's rule for non-pointer, non-slice types),
            // except the types whose UnmarshalJSON handles null.
            (Ty::Time, Value::Null) => Go::Time(None),
            (Ty::List(_), Value::Null) => Go::List(None),
            (Ty::StringMap, Value::Null) => Go::Map(None),
            (Ty::Duration, Value::Null) => {
                // metav1.Duration parses null as "": time.ParseDuration refuses it.
                self.refuse(path, ty, &Value::Null);
                into
            }
            (_, Value::Null) => into,
            (Ty::String, Value::String(s)) => Go::Str(s),
            (Ty::Bool, Value::Bool(b)) => Go::Bool(b),
            (Ty::Duration, Value::String(s)) => match gotime::parse_duration_nanos(&s) {
                Ok(nanos) => Go::Duration(nanos),
                Err(reason) => {
                    self.errors.push(TypeError {
                        field: path.clone(),
                        expected: ty.expected(),
                        found: format!("{} ({reason})", Value::String(s)),
                    });
                    into
                }
            },
            (Ty::Time, Value::String(s)) => match gotime::parse_rfc3339(&s) {
                Ok(t) => Go::Time(Some(t)),
                Err(_) => {
                    self.errors.push(TypeError {
                        field: path.clone(),
                        expected: ty.expected(),
                        found: Value::String(s).to_string(),
                    });
                    into
                }
            },
            (Ty::RawObject, raw @ Value::Object(_)) => Go::Raw(Some(raw)),
            (Ty::StringMap, Value::Object(entries)) => {
                let mut map = match into {
                    Go::Map(Some(existing)) => existing,
                    _ => Map::new(),
                };
                for (key, value) in entries {
                    let len = path.len();
                    push_key(path, &key);
                    match value {
                        Value::String(_) => {
                            map.insert(key, value);
                        }
                        // A null entry becomes the element type's zero value.
                        Value::Null => {
                            map.insert(key, Value::String(String::new()));
                        }
                        other => self.refuse(path, &Ty::String, &other),
                    }
                    path.truncate(len);
                }
                Go::Map(Some(map))
            }
            (Ty::List(elem), Value::Array(items)) => {
                let mut list = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    list.push(self.decode(elem, false, item, zero(elem), path));
                    path.truncate(len);
                }
                Go::List(Some(list))
            }
            (Ty::Struct(s), object @ Value::Object(_)) => self.decode_struct(s, object, into, path),
            (ty, other) => {
                self.refuse(path, ty, &other);
                into
            }
        }
    }

    fn decode_struct(&mut self, s: &'static GoStruct, input: Value, into: Go, path: &mut String) -> Go {
        let Value::Object(entries) = input else {
            if !input.is_null() {
                self.errors.push(TypeError {
                    field: path.clone(),
                    expected: Ty::Struct(s).expected(),
                    found: found(&input),
                });
            }
            return into;
        };
        let mut values = match into {
            Go::Struct(values) => values,
            _ => match zero_struct(s) {
                Go::Struct(values) => values,
                _ => unreachable!("zero_struct makes a struct"),
            },
        };
        for (key, value) in entries {
            let len = path.len();
            push_key(path, &key);
            match field_index(s, &key) {
                Some(i) => {
                    let field = &s.fields[i];
                    let current = std::mem::replace(&mut values[i], Go::Nil);
                    values[i] = self.decode(&field.ty, field.pointer, value, current, path);
                }
                None => self.dropped.push(path.clone()),
            }
            path.truncate(len);
        }
        Go::Struct(values)
    }
}

/// Go's encoding of a value (`None`: null, which is not stored).
fn encode(ty: &Ty, go: Go) -> Option<Value> {
    match (ty, go) {
        (_, Go::Nil) => None,
        (_, Go::Str(s)) => Some(Value::String(s)),
        (_, Go::Bool(b)) => Some(Value::Bool(b)),
        (_, Go::Duration(n)) => Some(Value::String(gotime::format_duration_nanos(n))),
        (_, Go::Time(t)) => t.and_then(gotime::format_rfc3339_utc).map(Value::String),
        (_, Go::Raw(raw)) => raw,
        (_, Go::Map(map)) => map.map(Value::Object),
        (Ty::List(elem), Go::List(list)) => list.map(|items| {
            Value::Array(
                items
                    .into_iter()
                    // An element Go prints as null is kept as null: a list keeps its length.
                    .map(|item| encode(elem, item).unwrap_or(Value::Null))
                    .collect(),
            )
        }),
        (Ty::Struct(s), go @ Go::Struct(_)) => encode_struct(s, go),
        _ => None,
    }
}

fn encode_struct(s: &GoStruct, go: Go) -> Option<Value> {
    let Go::Struct(values) = go else {
        return None;
    };
    let mut out = Map::new();
    for (field, value) in s.fields.iter().zip(values) {
        if is_empty(field, &value) {
            continue;
        }
        if let Some(encoded) = encode(&field.ty, value) {
            // A struct value that holds nothing but nulls: what Go prints (`{"spec":null}`)
            // is pruned to `{}` by the API server; leave the field out instead.
            if !field.pointer
                && matches!(field.ty, Ty::Struct(_))
                && encoded.as_object().is_some_and(Map::is_empty)
            {
                continue;
            }
            out.insert(field.json.to_string(), encoded);
        }
    }
    Some(Value::Object(out))
}

/// Go's `omitempty`: false, "", a nil pointer, a nil or empty slice or map.
fn is_empty(field: &Field, value: &Go) -> bool {
    match value {
        Go::Nil => true,
        Go::Str(s) => s.is_empty() && !field.pointer && !field.keep_empty,
        Go::Bool(b) => !b && !field.pointer && !field.keep_empty,
        Go::Map(m) => m.as_ref().is_none_or(Map::is_empty),
        Go::List(l) => l.as_ref().is_none_or(Vec::is_empty),
        Go::Duration(_) | Go::Time(_) | Go::Raw(_) | Go::Struct(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static INNER: GoStruct = GoStruct {
        name: "Inner",
        fields: &[Field::value("name", Ty::String)],
    };
    static OUTER: GoStruct = GoStruct {
        name: "Outer",
        fields: &[
            Field::value("text", Ty::String),
            Field::value("flag", Ty::Bool),
            Field::pointer("period", Ty::Duration),
            Field::value("when", Ty::Time),
            Field::value("list", Ty::List(&Ty::String)),
            Field::value("items", Ty::List(&Ty::Struct(&INNER))),
            Field::pointer("ref", Ty::Struct(&INNER)),
            Field::value("value", Ty::Struct(&INNER)),
            Field::value("paths", Ty::StringMap),
            Field::value("schema", Ty::RawObject),
        ],
    };

    fn run(input: Value) -> Decoded {
        normalise(&Ty::Struct(&OUTER), input, "spec")
    }

    #[test]
    fn empty_values_are_left_out_as_omitempty_does() {
        let out = run(json!({
            "text": "", "flag": false, "period": null, "when": null, "list": [],
            "items": [], "ref": null, "value": {"name": ""}, "paths": {}, "schema": null
        }));
        assert_eq!(out.value, Some(json!({})));
        assert!(out.errors.is_empty() && out.dropped.is_empty());
    }

    #[test]
    fn a_present_pointer_and_list_elements_are_kept_even_when_empty() {
        let out = run(json!({"ref": {}, "items": [{}, {"name": ""}, null], "list": ["", null]}));
        assert_eq!(
            out.value,
            Some(json!({"list": ["", ""], "items": [{}, {}, {}], "ref": {}}))
        );
    }

    #[test]
    fn values_are_printed_as_go_prints_them_in_field_order() {
        let out = run(json!({
            "schema": {"type": "object", "x": null}, "when": "2021-05-05T18:57:06+02:00",
            "period": "90s", "text": "t", "paths": {"a.yml": "x", "b": null}
        }));
        assert_eq!(
            serde_json::to_string(&out.value.unwrap()).unwrap(),
            r#"{"text":"t","period":"1m30s","when":"2021-05-05T16:57:06Z","paths":{"a.yml":"x","b":""},"schema":{"type":"object","x":null}}"#
        );
    }

    #[test]
    fn unknown_fields_are_dropped_and_names_match_ignoring_case() {
        let out = run(json!({"Text": "a", "textt": "b", "REF": {"Name": "n", "extra": 1}}));
        assert_eq!(out.value, Some(json!({"text": "a", "ref": {"name": "n"}})));
        assert_eq!(out.dropped, ["spec.textt", "spec.REF.extra"]);
    }

    #[test]
    fn a_repeated_key_merges_into_a_struct_as_go_does() {
        let input: Value = serde_json::from_str(r#"{"ref": {"name": "a"}, "Ref": {}}"#).unwrap();
        assert_eq!(run(input).value, Some(json!({"ref": {"name": "a"}})));
    }

    #[test]
    fn every_wrong_type_is_reported_with_its_path() {
        let out = run(json!({
            "text": 5, "flag": "yes", "period": "5 minutes", "when": "2021-05-05",
            "list": "config/", "items": [{"name": ["x"]}], "ref": "r", "paths": {"a.yml": 1},
            "schema": "s"
        }));
        let fields: Vec<_> = out.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.text",
                "spec.flag",
                "spec.period",
                "spec.when",
                "spec.list",
                "spec.items[0].name",
                "spec.ref",
                "spec.paths[\"a.yml\"]",
                "spec.schema"
            ]
        );
        assert_eq!(out.errors[0].expected, "a string");
        assert_eq!(out.errors[0].found, "a number (5)");
        assert_eq!(
            out.errors[2].found,
            "\"5 minutes\" (time: unknown unit \" minutes\" in duration \"5 minutes\")"
        );
        assert_eq!(out.errors[4].expected, "a list of strings");
        assert_eq!(out.errors[6].expected, "an object (Inner)");
    }
}
