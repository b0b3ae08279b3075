/// What this binary is: its version (the command line's `--version`, the metrics' build info)
/// and the Swift compiler that built it.
public enum BuildInfo {
    public static let version = "0.1.0"

    /// The compiler's major.minor version (Swift cannot name the patch level at compile time).
    public static let swiftVersion: String = {
        #if compiler(>=6.4)
        return "6.4+"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #elseif compiler(>=6.1)
        return "6.1"
        #else
        return "6.0"
        #endif
    }()
}
