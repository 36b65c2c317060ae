fn main() -> std::process::ExitCode {
    yibao_lab::cli::main()
}
