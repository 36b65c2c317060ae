/// mimalloc instead of glibc's malloc: the server allocates and frees small buffers per request on
/// many threads, where glibc's spent about a fifth of its CPU (BENCHMARKS.md, issue 14).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    yibao::cli::main()
}
