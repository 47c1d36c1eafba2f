//! `raftkv`: the replicated key-value store's binary. See `raftkv --help`.

/// mimalloc instead of glibc malloc: allocation was the largest single item of
/// the CPU profile under load (see PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(node::cli::main());
}
