//! `pkgr copy`.
use super::CommandResult;

#[derive(clap::Args, Debug)]
pub struct CopyArgs {}

pub async fn run(args: CopyArgs) -> CommandResult {
    Err(format!("pkgr copy is not built yet ({args:?})").into())
}
