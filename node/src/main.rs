//! `raftkv`: the replicated key-value store's binary. See `raftkv --help`.

fn main() {
    std::process::exit(node::cli::main());
}
