//! `pkgr render`.
use super::CommandResult;

#[derive(clap::Args, Debug)]
pub struct RenderArgs {}

pub async fn run(args: RenderArgs) -> CommandResult {
    Err(format!("pkgr render is not built yet ({args:?})").into())
}
