fn main() {
    // Piping into `head` must end quietly, as with any Unix tool, not panic on EPIPE.
    #[cfg(unix)]
    // SAFETY: restoring the default SIGPIPE disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(gapbench::cli::main());
}
