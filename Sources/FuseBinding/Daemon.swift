import CFuse

extension FuseSession {
    /// Detach from the terminal unless `foreground` (`fuse_daemonize`): fork, new
    /// session, standard streams to /dev/null. Call after mounting, so mount errors
    /// still reach the terminal, and before starting any thread.
    public static func daemonize(foreground: Bool) throws(FuseError) {
        guard fuse_daemonize(foreground ? 1 : 0) == 0 else {
            throw FuseError("cannot daemonize")
        }
    }
}
