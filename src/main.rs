//! The `pkgr` binary: parse the command line and hand off to the library.
fn main() -> std::process::ExitCode {
    pkgr::cli::main()
}
