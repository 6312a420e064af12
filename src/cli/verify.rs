//! `pkgr verify`: is a bundle or image (and, with `--recursive`, everything its images.yml
//! lists) signed with cosign by one of the given public keys? From a registry, or straight from
//! a tarball before it is imported (no network).
use super::CommandResult;
use super::ui::{Header, Table, ui};
use crate::registry::{Client, Reference, RegistryAuthFlags};
use crate::relocate::{self, CopyOptions, Plan, Source};
use crate::verify::{self, PublicKey, SignatureSource, Subject, Verified, VerifyError};
use clap::ArgGroup;
use futures_util::StreamExt as _;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(group(ArgGroup::new("subject").required(true).args(["bundle", "image", "tar"])))]
pub struct VerifyArgs {
    /// Bundle to verify (tag or digest).
    #[arg(short = 'b', long = "bundle", value_name = "REF")]
    bundle: Option<String>,
    /// Plain image or image index to verify.
    #[arg(short = 'i', long = "image", value_name = "REF")]
    image: Option<String>,
    /// Tarball written by `copy --to-tar --cosign-signatures`, verified without any network.
    #[arg(long = "tar", value_name = "FILE")]
    tar: Option<PathBuf>,
    /// PEM public key (ECDSA P-256/P-384, RSA, Ed25519); repeat for several: one must verify.
    #[arg(long = "key", value_name = "FILE", required = true)]
    keys: Vec<PathBuf>,
    /// Also verify every image and nested bundle listed in the bundle's .imgpkg/images.yml.
    #[arg(short = 'r', long, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    recursive: bool,
    /// Annotation the signature's payload must carry (cosign's -a key=value); repeatable.
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE", value_parser = verify::parse_annotation)]
    annotations: Vec<(String, String)>,
    /// Signatures checked in parallel.
    #[arg(long, default_value_t = 5, value_name = "N")]
    concurrency: usize,
    #[command(flatten)]
    registry: Box<RegistryAuthFlags>,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Some subjects were not verified; each one's reason follows.
#[derive(Debug, thiserror::Error)]
#[error("{} of {checked} not verified:\n{}", .failures.len(), list(.failures))]
pub struct NotVerified {
    checked: usize,
    failures: Vec<VerifyError>,
}

fn list(failures: &[VerifyError]) -> String {
    let lines: Vec<String> = failures.iter().map(|f| format!("  - {f}")).collect();
    lines.join("\n")
}

pub async fn run(args: VerifyArgs) -> CommandResult {
    // Keys first: a bad key file is reported before any request.
    let keys = args
        .keys
        .iter()
        .map(|path| PublicKey::from_file(path))
        .collect::<Result<Vec<_>, _>>()?;
    let annotations: BTreeMap<String, String> = args.annotations.iter().cloned().collect();
    let client = Client::new(args.registry.client_options()?)?;
    let (subjects, plan) = subjects(&args, &client).await?;
    let source = match plan.as_ref().and_then(|p| p.tarball.as_deref()) {
        Some(reader) => SignatureSource::Tarball(reader),
        None => SignatureSource::Registry(&client),
    };
    let (keys, annotations) = (&keys, &annotations);
    let results: Vec<Result<Verified, VerifyError>> = futures_util::stream::iter(&subjects)
        .map(|s| verify::verify(source, s, keys, annotations))
        .buffered(args.concurrency.max(1))
        .collect()
        .await;
    report(&results);
    let checked = results.len();
    let failures: Vec<VerifyError> = results.into_iter().filter_map(Result::err).collect();
    if !failures.is_empty() {
        return Err(NotVerified { checked, failures }.into());
    }
    ui().succeeded();
    Ok(ExitCode::SUCCESS)
}

/// What to verify and, when one was read, the plan (a tarball's holds the reader).
async fn subjects(args: &VerifyArgs, client: &Client) -> Result<(Vec<Subject>, Option<Plan>), Failure> {
    let options = CopyOptions {
        concurrency: args.concurrency.max(1),
        ..CopyOptions::default()
    };
    if let Some(tar) = &args.tar {
        let plan = relocate::plan_from_tarball(tar, &options).await?;
        return Ok((verify::subjects(&plan, args.recursive), Some(plan)));
    }
    let (flag, text) = match (&args.bundle, &args.image) {
        (Some(b), _) => ("-b", b),
        (_, Some(i)) => ("-i", i),
        _ => unreachable!("clap requires one of -b, -i, --tar"),
    };
    let reference = Reference::parse(text)
        .map_err(|e| -> Failure { format!("pkgr verify: reading {flag} {text:?}: {e}").into() })?;
    if args.recursive && args.bundle.is_some() {
        let plan = relocate::plan_from_registry(client, &Source::Bundle(reference), &options).await?;
        return Ok((verify::subjects(&plan, true), Some(plan)));
    }
    if args.bundle.is_some() {
        // As copy and pull: -b must name a bundle (the manifest and its config's label).
        let resolved = crate::bundle::fetch::resolve_image(client, &reference).await?;
        if !resolved.is_bundle {
            return Err(relocate::RelocateError::NotABundle {
                reference: resolved.reference.to_string(),
            }
            .into());
        }
        let digest = resolved.reference.digest().expect("resolved").clone();
        return Ok((vec![Subject::in_registry(&reference, digest)], None));
    }
    let digest = match reference.digest() {
        Some(d) => d.clone(),
        None => match client.head_manifest(&reference).await? {
            Some(head) => head.digest,
            None => return Err(format!("pkgr verify: {reference} does not exist").into()),
        },
    };
    Ok((vec![Subject::in_registry(&reference, digest)], None))
}

/// One line per subject for people; one table (`--json`) for scripts.
fn report(results: &[Result<Verified, VerifyError>]) {
    let ui = ui();
    if ui.json() {
        let headers = ["Subject", "Digest", "Verified", "Signature", "Key", "Reason"];
        let rows = results
            .iter()
            .map(|r| match r {
                Ok(v) => vec![
                    v.subject.name.clone(),
                    v.subject.digest.to_string(),
                    "true".into(),
                    format!("{} #{}", v.tag, v.layer),
                    v.key.clone(),
                    String::new(),
                ],
                Err(e) => vec![
                    e.subject().name.clone(),
                    e.subject().digest.to_string(),
                    "false".into(),
                    String::new(),
                    String::new(),
                    e.reason(&super::CommandLine),
                ],
            })
            .collect();
        ui.table(&Table {
            title: "Signatures".into(),
            content: "subjects".into(),
            headers: headers.iter().map(|h| Header::new(h)).collect(),
            rows,
        });
        return;
    }
    for result in results {
        match result {
            Ok(v) => ui.log(&format!(
                "verified {}: {} signature {} by {} ({})",
                v.subject.name, v.tag, v.layer, v.key, v.key_kind
            )),
            Err(e) => ui.log(&format!(
                "NOT verified {}: {}",
                e.subject().name,
                e.reason(&super::CommandLine)
            )),
        }
    }
}
