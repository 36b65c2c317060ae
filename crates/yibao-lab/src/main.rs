/// The same allocator as `yibao`, so that the in-process benchmarks measure what is served.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    yibao_lab::cli::main()
}
