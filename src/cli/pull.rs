//! `pkgr pull`.
use super::CommandResult;

#[derive(clap::Args, Debug)]
pub struct PullArgs {}

pub async fn run(args: PullArgs) -> CommandResult {
    Err(format!("pkgr pull is not built yet ({args:?})").into())
}
