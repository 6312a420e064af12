//! `pkgr crd`: print the CustomResourceDefinitions generated from the API types.
use super::CommandResult;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CrdArgs {}

pub async fn run(_args: CrdArgs) -> CommandResult {
    let yaml = crate::api::crds_yaml().map_err(|e| format!("cannot render the CRDs as YAML: {e}"))?;
    std::io::stdout()
        .write_all(yaml.as_bytes())
        .map_err(|e| format!("cannot write the CRDs to standard output: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
