//! Command line: flags, subcommands, and the hand-off to the library.
use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod controller;
mod copy;
mod crd;
mod pull;
mod push;
mod render;

/// Kubernetes controller and relocation tool for Carvel package repositories.
#[derive(Parser, Debug)]
#[command(name = "pkgr", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Push a directory as an imgpkg bundle (-b) or plain image (-i).
    Push(push::PushArgs),
    /// Pull a bundle or image into a directory, rewriting .imgpkg/images.yml as imgpkg does.
    Pull(pull::PullArgs),
    /// Copy bundles and images between registries, or through a tarball.
    Copy(copy::CopyArgs),
    /// Print the Packages and PackageMetadatas a repository would produce, without a cluster.
    Render(render::RenderArgs),
    /// Run the PackageRepository controller.
    Controller(controller::ControllerArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crd(crd::CrdArgs),
}

/// What a subcommand returns: its exit code, or an error to print with its causes.
pub type CommandResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The controller sets up its own logging (--log-format json).
    if !matches!(cli.command, Command::Controller(_)) {
        init_logging();
    }
    // The controller serves many repositories at once; every other command is one pipeline whose
    // heavy lifting (gzip, tar, hashing) runs on the blocking pool, so one async thread keeps
    // their memory small.
    let mut builder = if matches!(cli.command, Command::Controller(_)) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pkgr: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Push(args) => push::run(args).await,
            Command::Pull(args) => pull::run(args).await,
            Command::Copy(args) => copy::run(args).await,
            Command::Render(args) => render::run(args).await,
            Command::Controller(args) => controller::run(args).await,
            Command::Crd(args) => crd::run(args).await,
        }
    });
    // Background tasks (watches, the metrics server, a blocked credential helper) must not hold
    // the process open once the command is done.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{}", render_error(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// `pkgr: <error>` followed by each cause on its own indented line.
pub fn render_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = format!("pkgr: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    out
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PKGR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
