fn main() -> std::process::ExitCode {
    yibao::cli::main()
}
