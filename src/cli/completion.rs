//! `pkgr completion bash|zsh|fish|powershell`: a shell completion script for the program under
//! the name it was invoked as (`imgpkg` scripts complete `imgpkg`), as imgpkg's cobra command
//! does. The script goes to stdout alone, with no `Succeeded`, so that it can be sourced.
use super::CommandResult;
use clap_complete::Shell;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "To load completions:\n\n  \
    Bash:        source <(PROGRAM completion bash)\n  \
    Zsh:         PROGRAM completion zsh > \"${fpath[1]}/_PROGRAM\"\n  \
    fish:        PROGRAM completion fish | source\n  \
    PowerShell:  PROGRAM completion powershell | Out-String | Invoke-Expression\n\n\
    (PROGRAM is pkgr, or imgpkg when installed under that name.)")]
pub struct CompletionArgs {
    /// The shell to write the script for.
    #[arg(value_enum, value_name = "SHELL")]
    shell: CompletionShell,
}

/// The shells imgpkg's `completion` accepts (clap_complete knows elvish too; imgpkg does not).
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

impl From<CompletionShell> for Shell {
    fn from(shell: CompletionShell) -> Shell {
        match shell {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
            CompletionShell::Powershell => Shell::PowerShell,
        }
    }
}

pub async fn run(args: CompletionArgs) -> CommandResult {
    let voice = super::ui::ui().voice();
    let program = voice.program();
    let mut command = super::command(voice);
    let mut bytes = Vec::new();
    clap_complete::generate(Shell::from(args.shell), &mut command, program, &mut bytes);
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&bytes).and_then(|()| stdout.flush()) {
        // `pkgr completion bash | head` closes the pipe early: nothing to report.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(format!("writing the completion script to stdout: {e}").into()),
        Ok(()) => {}
    }
    Ok(ExitCode::SUCCESS)
}
