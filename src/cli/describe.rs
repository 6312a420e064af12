//! `describe -b REF`: a bundle's images and nested bundles, in imgpkg's text or YAML layout.
use super::CommandResult;
use super::describe_yaml;
use super::ui::ui;
use crate::bundle::describe::{DescribeOptions, Description, ImageType, Layer, describe};
use crate::registry::{Client, Reference, RegistryAuthFlags};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputType {
    Text,
    Yaml,
}

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    /// Bundle to describe (tag or digest).
    #[arg(short = 'b', long = "bundle", value_name = "REF", required = true)]
    bundle: String,
    /// Output layout.
    #[arg(short = 'o', long = "output-type", value_enum, default_value = "text")]
    output_type: OutputType,
    /// Also list every image's layers (one more request per image).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    layers: bool,
    /// List cosign signatures (`sha256-<hex>.sig` tags) of the bundles and images.
    #[arg(long = "cosign-artifacts", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    cosign_artifacts: bool,
    /// Requests in flight (accepted for imgpkg's scripts).
    #[arg(long, default_value_t = 5, value_name = "N")]
    concurrency: usize,
    #[command(flatten)]
    registry: RegistryAuthFlags,
}

pub async fn run(args: DescribeArgs) -> CommandResult {
    let reference = Reference::parse(&args.bundle)?;
    let client = Client::new(args.registry.client_options()?)?;
    let options = DescribeOptions {
        layers: args.layers,
        cosign_artifacts: args.cosign_artifacts,
    };
    let description = describe(&client, &reference, options).await?;
    let ui = ui();
    match args.output_type {
        OutputType::Text => ui.block(&text(&description)),
        OutputType::Yaml => ui.block(&describe_yaml::yaml(&description)?),
    }
    ui.succeeded();
    Ok(ExitCode::SUCCESS)
}

/// imgpkg's text layout: `Bundle SHA`, then `Images:` with one indented entry per image,
/// nested bundles' images one level deeper, bundles separated by a blank line.
pub fn text(description: &Description) -> String {
    let mut out = format!("Bundle SHA: {}\n\n", description.digest());
    contents(description, 0, true, &mut out);
    out
}

fn contents(description: &Description, level: usize, top: bool, out: &mut String) {
    if description.bundles.is_empty() && description.images.is_empty() {
        return;
    }
    let entry = "  ".repeat(level + 1);
    let header = if top { String::new() } else { entry.clone() };
    let _ = writeln!(out, "{header}Images:");
    for (i, bundle) in description.bundles.values().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{entry}- Image: {}", bundle.image);
        let _ = writeln!(out, "{entry}  Type: Bundle");
        let _ = writeln!(out, "{entry}  Origin: {}", bundle.origin);
        layers(&bundle.layers, &entry, out);
        annotations(&bundle.annotations, &entry, out);
        contents(bundle, level + 1, false, out);
    }
    for image in description.images.values() {
        let _ = writeln!(out, "{entry}- Image: {}", image.image);
        let _ = writeln!(out, "{entry}  Type: {}", type_name(image.image_type));
        if image.image_type == ImageType::Image {
            let _ = writeln!(out, "{entry}  Origin: {}", image.origin);
        }
        layers(&image.layers, &entry, out);
        annotations(&image.annotations, &entry, out);
    }
}

fn layers(layers: &[Layer], entry: &str, out: &mut String) {
    if !layers.is_empty() {
        let _ = writeln!(out, "{entry}  Layers:");
        for layer in layers {
            let _ = writeln!(out, "{entry}    - Digest: {}", layer.digest);
        }
    }
}

fn annotations(annotations: &BTreeMap<String, String>, entry: &str, out: &mut String) {
    if !annotations.is_empty() {
        let _ = writeln!(out, "{entry}  Annotations:");
        for (key, value) in annotations {
            let _ = writeln!(out, "{entry}    {key}: {value}");
        }
    }
}

fn type_name(image_type: ImageType) -> &'static str {
    match image_type {
        ImageType::Image => "Image",
        ImageType::Bundle => "Bundle",
        ImageType::Internal => "Internal",
        ImageType::Signature => "Signature",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::describe::ImageInfo;

    fn image(image: &str, origin: &str, image_type: ImageType) -> ImageInfo {
        ImageInfo {
            image: image.into(),
            origin: origin.into(),
            annotations: BTreeMap::new(),
            image_type,
            layers: vec![],
            size: 0,
            error: String::new(),
        }
    }

    fn sample() -> Description {
        let nested = Description {
            image: "reg/new@sha256:b".into(),
            origin: "reg/nested@sha256:b".into(),
            annotations: BTreeMap::from([("what".to_string(), "nested".to_string())]),
            bundles: BTreeMap::new(),
            images: BTreeMap::from([(
                "sha256:i1".to_string(),
                image("reg/new@sha256:i1", "reg/img1@sha256:i1", ImageType::Image),
            )]),
            layers: vec![],
        };
        Description {
            image: "reg/new@sha256:a".into(),
            origin: "reg/new@sha256:a".into(),
            annotations: BTreeMap::new(),
            bundles: BTreeMap::from([("sha256:b".to_string(), nested)]),
            images: BTreeMap::from([
                (
                    "sha256:i1".to_string(),
                    image("reg/new@sha256:i1", "reg/img1@sha256:i1", ImageType::Image),
                ),
                (
                    "sha256:l".to_string(),
                    image("reg/new@sha256:l", "reg/new@sha256:l", ImageType::Internal),
                ),
            ]),
            layers: vec![],
        }
    }

    #[test]
    fn text_layout_matches_imgpkg() {
        assert_eq!(
            text(&sample()),
            "Bundle SHA: sha256:a

Images:
  - Image: reg/new@sha256:b
    Type: Bundle
    Origin: reg/nested@sha256:b
    Annotations:
      what: nested
    Images:
    - Image: reg/new@sha256:i1
      Type: Image
      Origin: reg/img1@sha256:i1
  - Image: reg/new@sha256:i1
    Type: Image
    Origin: reg/img1@sha256:i1
  - Image: reg/new@sha256:l
    Type: Internal
"
        );
    }
}
