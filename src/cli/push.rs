//! `pkgr push`.
use super::CommandResult;

#[derive(clap::Args, Debug)]
pub struct PushArgs {}

pub async fn run(args: PushArgs) -> CommandResult {
    Err(format!("pkgr push is not built yet ({args:?})").into())
}
