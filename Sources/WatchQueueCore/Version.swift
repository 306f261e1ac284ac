/// The release of wqfs and wqcat: one constant, so both commands' `--version` agree.
public enum WQFSVersion {
    public static let string = "0.10.0"
}
