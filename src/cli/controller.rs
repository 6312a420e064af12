//! `pkgr controller`.
use super::CommandResult;

#[derive(clap::Args, Debug)]
pub struct ControllerArgs {}

pub async fn run(args: ControllerArgs) -> CommandResult {
    Err(format!("pkgr controller is not built yet ({args:?})").into())
}
