//! `tag list` and `tag resolve`, with imgpkg's flags and output.
use super::CommandResult;
use super::ui::{Header, Table, ui};
use crate::registry::{Client, Reference, RegistryAuthFlags, RegistryError};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum TagCommand {
    /// List the tags of a repository (internal `.imgpkg` tags hidden unless asked for).
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Resolve a tag to its digest, printed as repository@sha256:….
    Resolve(ResolveArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Repository whose tags to list (a tag or digest in it is ignored).
    #[arg(short = 'i', long = "image", value_name = "REPO", required = true)]
    image: String,
    /// Also resolve each tag to its digest (one request per tag).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    digests: bool,
    /// Include the `*.imgpkg` tags that push and copy write for their own use.
    #[arg(long = "imgpkg-internal-tags", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    imgpkg_internal_tags: bool,
    #[command(flatten)]
    registry: RegistryAuthFlags,
}

#[derive(clap::Args, Debug)]
pub struct ResolveArgs {
    /// Image reference whose tag to resolve (repo:tag; a digest is checked and printed back).
    #[arg(short = 'i', long = "image", value_name = "REF", required = true)]
    image: String,
    #[command(flatten)]
    registry: RegistryAuthFlags,
}

pub async fn run(command: TagCommand) -> CommandResult {
    match command {
        TagCommand::List(args) => list(args).await,
        TagCommand::Resolve(args) => resolve(args).await,
    }
}

async fn list(args: ListArgs) -> CommandResult {
    let repository = Reference::parse_untagged(&args.image)?;
    let client = Client::new(args.registry.client_options()?)?;
    let mut rows = Vec::new();
    for tag in client.list_tags(&repository).await? {
        if tag.ends_with(".imgpkg") && !args.imgpkg_internal_tags {
            continue;
        }
        let digest = if args.digests {
            digest_of(&client, &repository.with_tag(&tag)).await?
        } else {
            String::new()
        };
        rows.push(vec![tag, digest]);
    }
    let mut digest = Header::new("Digest");
    digest.hidden = !args.digests;
    let ui = ui();
    ui.table(&Table {
        title: "Tags".to_string(),
        content: "tags".to_string(),
        headers: vec![Header::new("Name"), digest],
        rows,
    });
    ui.succeeded();
    Ok(ExitCode::SUCCESS)
}

async fn resolve(args: ResolveArgs) -> CommandResult {
    let reference = Reference::parse(&args.image)?;
    let client = Client::new(args.registry.client_options()?)?;
    let digest = digest_of(&client, &reference).await?;
    let ui = ui();
    // imgpkg prints the block without a newline; the UI ends it in pkgr's voice.
    ui.block(&format!("{}@{digest}", reference.repository_name()));
    ui.succeeded();
    Ok(ExitCode::SUCCESS)
}

/// The digest a reference points at: a HEAD, or the GET's error when there is nothing there
/// (so that the message names what is missing, as the registry put it).
async fn digest_of(client: &Client, reference: &Reference) -> Result<String, RegistryError> {
    match client.head_manifest(reference).await? {
        Some(head) => Ok(head.digest.to_string()),
        None => client.get_manifest(reference).await.map(|m| m.digest.to_string()),
    }
}
