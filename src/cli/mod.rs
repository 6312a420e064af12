//! Command line: flags, subcommands, and the hand-off to the library.
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use std::process::ExitCode;

mod audience;
mod completion;
mod controller;
mod copy;
mod crd;
mod describe;
mod describe_yaml;
mod pull;
mod push;
mod refusals;
mod render;
mod tag;
pub mod ui;
mod verify;
pub mod voice;
pub use audience::CommandLine;

use ui::{Ui, UiFlags};
use voice::Voice;

/// Kubernetes controller and relocation tool for Carvel package repositories.
#[derive(Parser, Debug)]
// clap's own version flag prints `pkgr 0.1.0`; imgpkg's root `--version`/`-v` (cobra's) prints
// what `imgpkg version` prints, so the flag is pkgr's own and runs the `version` command.
#[command(name = "pkgr", version, about, long_about = None, disable_version_flag = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Print the version, as the `version` command does.
    #[arg(short = 'v', long = "version", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    version: bool,
    #[command(flatten)]
    ui: UiFlags,
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
    /// Describe a bundle: its images and nested bundles, where they are now and where they came from.
    Describe(describe::DescribeArgs),
    /// Verify cosign signatures of a bundle or image (and, with --recursive, of everything in it) with public keys.
    Verify(verify::VerifyArgs),
    /// List tags of a repository, or resolve a tag to its digest.
    #[command(subcommand)]
    Tag(tag::TagCommand),
    /// Print the client version (`pkgr version X`, or `imgpkg version X` when invoked as imgpkg).
    Version,
    /// Generate a shell completion script (bash, zsh, fish or powershell).
    Completion(completion::CompletionArgs),
}

/// What a subcommand returns: its exit code, or an error to print with its causes.
pub type CommandResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let voice = Voice::detect();
    let matches = match command(voice).try_get_matches() {
        Ok(matches) => matches,
        Err(e) => usage_error(voice, e),
    };
    // Before the arguments are read into `Cli`: one of imgpkg's refusals is a missing -o, which
    // `Cli` would reject in clap's words. Reported through the UI, so `--json` holds it.
    if voice == Voice::Imgpkg
        && let Some(message) = refusals::check(&matches)
    {
        let ui = Ui::install(voice, &UiFlags::from_arg_matches(&matches).unwrap_or_default());
        let error: Box<dyn std::error::Error + Send + Sync> = message.into();
        ui.error(error.as_ref());
        ui.finish();
        return ExitCode::FAILURE;
    }
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => usage_error(voice, e),
    };
    cli.command = match (cli.command.take(), cli.version) {
        (None, true) => Some(Command::Version),
        (Some(command), false) => Some(command),
        // As cobra: the root's --version belongs to the root alone.
        (Some(_), true) => usage_error(
            voice,
            command(voice).error(
                clap::error::ErrorKind::ArgumentConflict,
                "--version (-v) cannot be used with a subcommand; run `version` instead",
            ),
        ),
        // cobra answers a bare `imgpkg` with the help, successfully.
        (None, false) if voice == Voice::Imgpkg => {
            let _ = command(voice).print_help();
            std::process::exit(0);
        }
        (None, false) => usage_error(
            voice,
            command(voice).error(
                clap::error::ErrorKind::MissingSubcommand,
                "a subcommand is required (push, pull, copy, tag, describe, version, ...); see --help",
            ),
        ),
    };
    let root_version = cli.version;
    let Some(command) = cli.command else {
        unreachable!("set just above")
    };
    let ui = Ui::install(voice, &cli.ui);
    // The controller sets up its own logging (--log-format json).
    if !matches!(command, Command::Controller(_)) {
        init_logging(voice, &cli.ui);
    }
    // The controller serves many repositories at once; every other command is one pipeline whose
    // heavy lifting (gzip, tar, hashing) runs on the blocking pool, so one async thread keeps
    // their memory small.
    let mut builder = if matches!(command, Command::Controller(_)) {
        crate::controller::memory::limit_arenas();
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            ui.error(&e);
            ui.finish();
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Push(args) => push::run(args).await,
            Command::Pull(args) => pull::run(args).await,
            Command::Copy(args) => copy::run(args).await,
            Command::Render(args) => render::run(args).await,
            Command::Controller(args) => controller::run(args).await,
            Command::Crd(args) => crd::run(args).await,
            Command::Tag(command) => tag::run(command).await,
            Command::Describe(args) => describe::run(args).await,
            Command::Verify(args) => verify::run(args).await,
            Command::Completion(args) => completion::run(args).await,
            Command::Version => {
                ui.block(&format!("{}\n", voice.version_line()));
                // cobra answers the root's --version before imgpkg sets up its UI, so not even
                // --tty brings the final `Succeeded` there.
                if !(root_version && voice == Voice::Imgpkg) {
                    ui.succeeded();
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    // Background tasks (watches, the metrics server, a blocked credential helper) must not hold
    // the process open once the command is done.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let code = match result {
        Ok(code) => code,
        Err(error) => {
            ui.error(error.as_ref());
            ExitCode::FAILURE
        }
    };
    ui.finish();
    code
}

/// The command line in `voice`'s name. A flag given twice keeps its last value, as Go's flag
/// package (imgpkg's) does: scripts that append `--yes` to a call that has one still run.
pub fn command(voice: Voice) -> clap::Command {
    fn override_self(command: clap::Command) -> clap::Command {
        command.args_override_self(true).mut_subcommands(override_self)
    }
    let command = override_self(Cli::command().name(voice.program()).bin_name(voice.program()));
    match voice {
        // imgpkg's `describe --layers` is on unless turned off (its help says otherwise, its
        // code and its scripts do not); pkgr saves the request per image unless asked.
        Voice::Imgpkg => refusals::relax(command)
            .mut_subcommand("describe", |c| c.mut_arg("layers", |a| a.default_value("true"))),
        Voice::Pkgr => command,
    }
}

/// A command line that does not parse. As imgpkg: `imgpkg: Error: <what>` and exit 1, as its
/// scripts expect; as pkgr: clap's message with the usage, exit 2. Help and version are printed
/// as asked.
fn usage_error(voice: Voice, error: clap::Error) -> ! {
    if voice == Voice::Imgpkg && error.use_stderr() {
        let message = refusals::clap_error_message(&error)
            .unwrap_or_else(|| voice::clap_message(&error.render().to_string()));
        eprintln!("imgpkg: Error: {message}");
        std::process::exit(1);
    }
    error.exit()
}

/// The error text in pkgr's own voice: `pkgr: <error>` and each cause on an indented line.
pub fn render_error(error: &(dyn std::error::Error + 'static)) -> String {
    Voice::Pkgr.error_text(error)
}

/// `--debug` turns on the registry client's request and response dump, whatever PKGR_LOG says:
/// as pkgr on the tracing target `pkgr::registry::http`; as imgpkg in go-containerregistry's
/// shape, as imgpkg prints it.
/// Colours only on a terminal, and not with `--color=false`: logs piped to a file stay plain.
fn init_logging(voice: Voice, flags: &UiFlags) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_env("PKGR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if flags.debug && voice == Voice::Imgpkg {
        crate::registry::dump_like_go();
    } else if flags.debug {
        filter = filter.add_directive("pkgr::registry::http=debug".parse().expect("static directive"));
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(flags.color && std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
