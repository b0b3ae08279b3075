/// The pages, script and style sheet, embedded in the binary at build time (SwiftPM's
/// `embedInCode`; the files are in Assets/): no CDN, no toolchain but the Swift one, nothing
/// read from disk at run time.
enum Assets {
    struct Asset {
        var type: String
        var bytes: [UInt8]
    }

    /// The dashboard itself (behind the session).
    static var index: [UInt8] { PackageResources.index_html }

    /// The public files by path: the login page and what the pages load.
    static func named(_ path: String) -> Asset? {
        switch path {
        case "/login", "/login.html": return Asset(type: "text/html; charset=utf-8", bytes: PackageResources.login_html)
        case "/assets/style.css": return Asset(type: "text/css; charset=utf-8", bytes: PackageResources.style_css)
        case "/assets/app.js": return Asset(type: "text/javascript; charset=utf-8", bytes: PackageResources.app_js)
        case "/assets/login.js": return Asset(type: "text/javascript; charset=utf-8", bytes: PackageResources.login_js)
        case "/favicon.ico", "/assets/icon.svg": return Asset(type: "image/svg+xml", bytes: PackageResources.icon_svg)
        default: return nil
        }
    }
}
