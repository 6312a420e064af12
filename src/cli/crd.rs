//! `pkgr crd`.
use super::CommandResult;

#[derive(clap::Args, Debug)]
pub struct CrdArgs {}

pub async fn run(args: CrdArgs) -> CommandResult {
    Err(format!("pkgr crd is not built yet ({args:?})").into())
}
