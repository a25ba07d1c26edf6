//! The `mirror` binary: everything lives in the library; see `mirror::cli`.

fn main() -> std::process::ExitCode {
    mirror::cli::main()
}
