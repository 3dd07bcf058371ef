fn main() {
    std::process::exit(gapbench::cli::main());
}
