//! The `frameloop` command. Everything it does lives in the library's `cli`
//! module, so that a binary of your own can serve your handler with the same
//! flags (see `frameloop::cli`).

fn main() -> std::process::ExitCode {
    frameloop::cli::main()
}
