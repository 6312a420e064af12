//! `describe -o yaml`: the description written byte for byte as imgpkg writes it through Go's
//! `sigs.k8s.io/yaml` (go-yaml v2): keys in go-yaml's order, empty fields left out, references on
//! one line, digest keys unquoted.
use crate::bundle::describe::{Description, ImageInfo, ImageType, Layer};
use crate::registry::Digest;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// `sha: <digest>` then the description.
pub fn yaml(description: &Description) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    // Image references are long single words: one line each, never a `>-` block.
    let options = serde_saphyr::ser_options! {
        folded_wrap_chars: usize::MAX,
    };
    let body = serde_saphyr::to_string_with_options(&YamlDescription::from(description), options)
        .map_err(|e| format!("cannot write the description as YAML: {e}"))?;
    Ok(format!(
        "sha: {}\n{}",
        description.digest(),
        plain_digest_keys(&body)
    ))
}

/// serde_saphyr quotes every key holding a `:`; go-yaml leaves `sha256:<hex>` plain, and
/// scripts grep for it. A digest key is unambiguous unquoted, so only those lines change.
fn plain_digest_keys(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        let content = line.trim_end_matches('\n');
        let key = content.trim_start();
        let unquoted = key
            .strip_prefix('"')
            .and_then(|k| k.strip_suffix("\":"))
            .filter(|k| Digest::parse(k).is_ok());
        match unquoted {
            Some(digest) => {
                out.push_str(&content[..content.len() - key.len()]);
                out.push_str(digest);
                out.push(':');
                out.push_str(&line[content.len()..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// go-yaml v2's order of string map keys (its `keyList.Less`): letters after everything else,
/// and runs of digits compared as numbers, so `sha256:6e…` comes before `sha256:44…`. Exact for
/// ASCII keys; beyond ASCII, Rust's alphabetic and decimal-digit classes stand in for Go's
/// `unicode.IsLetter` and `unicode.IsDigit`.
fn go_key_cmp(a: &str, b: &str) -> Ordering {
    if go_key_less(a, b) {
        Ordering::Less
    } else if go_key_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn go_key_less(a: &str, b: &str) -> bool {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let digit = |c: char| c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric());
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        // Both digits or punctuation: compare the digit runs starting here as numbers (Go's
        // int64, wrapping as Go's does); a zero after other digits of the same run keeps them
        // apart by a leading 1, as go-yaml does.
        let (mut an, mut bn) = (0i64, 0i64);
        if (ar[i] == '0' || br[i] == '0')
            && ar[..i].iter().rev().take_while(|c| digit(**c)).any(|c| *c != '0')
        {
            (an, bn) = (1, 1);
        }
        let run = |r: &[char], mut n: i64| {
            let mut end = i;
            while end < r.len() && digit(r[end]) {
                n = n
                    .wrapping_mul(10)
                    .wrapping_add(i64::from(r[end] as u32) - i64::from('0' as u32));
                end += 1;
            }
            (end, n)
        };
        let (ai, an) = run(&ar, an);
        let (bi, bn) = run(&br, bn);
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

/// A map written in go-yaml's key order.
struct GoMap<V>(Vec<(String, V)>);

impl<V> GoMap<V> {
    fn new(entries: impl IntoIterator<Item = (String, V)>) -> GoMap<V> {
        let mut entries: Vec<_> = entries.into_iter().collect();
        entries.sort_by(|a, b| go_key_cmp(&a.0, &b.0));
        GoMap(entries)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V: Serialize> Serialize for GoMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

fn annotations(annotations: &BTreeMap<String, String>) -> GoMap<String> {
    GoMap::new(annotations.iter().map(|(k, v)| (k.clone(), v.clone())))
}

/// Field order is go-yaml's order of the field names (all letters: alphabetical).
#[derive(serde::Serialize)]
struct YamlDescription {
    #[serde(skip_serializing_if = "GoMap::is_empty")]
    annotations: GoMap<String>,
    content: YamlContent,
    image: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    layers: Vec<Layer>,
    metadata: GoMap<String>,
    origin: String,
}

#[derive(serde::Serialize)]
struct YamlContent {
    #[serde(skip_serializing_if = "GoMap::is_empty")]
    bundles: GoMap<YamlDescription>,
    #[serde(skip_serializing_if = "GoMap::is_empty")]
    images: GoMap<YamlImage>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct YamlImage {
    #[serde(skip_serializing_if = "GoMap::is_empty")]
    annotations: GoMap<String>,
    /// Why the entry has no image: a signature lookup the registry denied.
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    image: String,
    image_type: ImageType,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    layers: Vec<Layer>,
    #[serde(skip_serializing_if = "String::is_empty")]
    origin: String,
}

impl From<&Description> for YamlDescription {
    fn from(d: &Description) -> Self {
        YamlDescription {
            annotations: annotations(&d.annotations),
            content: YamlContent {
                bundles: GoMap::new(d.bundles.iter().map(|(k, b)| (k.clone(), b.into()))),
                images: GoMap::new(d.images.iter().map(|(k, i)| (k.clone(), i.into()))),
            },
            image: d.image.clone(),
            layers: d.layers.clone(),
            metadata: GoMap::new([]),
            origin: d.origin.clone(),
        }
    }
}

impl From<&ImageInfo> for YamlImage {
    fn from(i: &ImageInfo) -> Self {
        YamlImage {
            annotations: annotations(&i.annotations),
            error: i.error.clone(),
            image: i.image.clone(),
            image_type: i.image_type,
            layers: i.layers.clone(),
            origin: i.origin.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:6e266811faff0909d5a68e28a2e9adc7f5b81c54d09b80066ffaf951f755f593";
    const B: &str = "sha256:44f29a4308c855deab6a541c6d66ad729652472c257f5d9be5dfde94afd17327";
    const C: &str = "sha256:d319ff1d0d9e9377e7f0f668e0ba0321d26d8e4d02468f49c423ec90801cf730";
    const L: &str = "sha256:8028886fe744f06b1af92c603400a3e69c85aa4888e7d126e25a3f69ecbccba0";
    const TOP: &str = "sha256:87adbf651a96530b929dec319a0ec2cbf5389bff62910d9667270629baab48e4";
    const REG: &str = "registry.example.com:5000/some/long/repository/name";

    fn image(digest: &str, image_type: ImageType, annotations: &[(&str, &str)]) -> (String, ImageInfo) {
        let at = format!("{REG}@{digest}");
        let info = ImageInfo {
            image: at.clone(),
            origin: at,
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            image_type,
            error: String::new(),
            layers: vec![Layer {
                digest: C.into(),
                size: 1,
            }],
            size: 1,
        };
        (digest.to_string(), info)
    }

    #[test]
    fn go_yaml_orders_digit_runs_as_numbers_and_letters_last() {
        let mut keys = vec![
            C, TOP, B, A, L, "a10", "a9", "a_b", "aB", "a.b", "A", "b", "a01", "a1",
        ];
        keys.sort_by(|a, b| go_key_cmp(a, b));
        assert_eq!(
            keys,
            [
                "A", "a.b", "a_b", "a1", "a01", "a9", "a10", "aB", "b", A, B, TOP, L, C
            ]
        );
    }

    /// Each map's keys are in an order that differs from a byte-wise sort.
    #[test]
    fn the_description_is_written_as_go_yaml_writes_it() {
        let nested = Description {
            image: format!("{REG}@{TOP}"),
            origin: format!("{REG}@{TOP}"),
            annotations: BTreeMap::from([("what is this".to_string(), "nested".to_string())]),
            bundles: BTreeMap::new(),
            images: BTreeMap::from([
                image(B, ImageType::Image, &[]),
                image(A, ImageType::Internal, &[]),
            ]),
            layers: vec![],
        };
        let top = Description {
            image: format!("{REG}@{TOP}"),
            origin: format!("{REG}@{TOP}"),
            annotations: BTreeMap::new(),
            bundles: BTreeMap::from([(TOP.to_string(), nested)]),
            images: BTreeMap::from([
                image(TOP, ImageType::Signature, &[("tag", "sha256-x.sig")]),
                image(L, ImageType::Image, &[("a10", "x"), ("a9", "1")]),
            ]),
            layers: vec![],
        };
        let at = |d: &str| format!("{REG}@{d}");
        let expected = format!(
            "sha: {TOP}
content:
  bundles:
    {TOP}:
      annotations:
        what is this: nested
      content:
        images:
          {A}:
            image: {a}
            imageType: Internal
            layers:
            - digest: {C}
            origin: {a}
          {B}:
            image: {b}
            imageType: Image
            layers:
            - digest: {C}
            origin: {b}
      image: {top}
      metadata: {{}}
      origin: {top}
  images:
    {TOP}:
      annotations:
        tag: sha256-x.sig
      image: {top}
      imageType: Signature
      layers:
      - digest: {C}
      origin: {top}
    {L}:
      annotations:
        a9: \"1\"
        a10: x
      image: {l}
      imageType: Image
      layers:
      - digest: {C}
      origin: {l}
image: {top}
metadata: {{}}
origin: {top}
",
            a = at(A),
            b = at(B),
            l = at(L),
            top = at(TOP),
        );
        assert_eq!(yaml(&top).unwrap(), expected);
    }
}
