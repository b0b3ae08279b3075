import Testing
@testable import Rules

/// The Lists page's format guess: the shape of most rule lines, or "mixed".
@Suite struct ListFormatTests {
    @Test(arguments: [
        ("! comment\n||ads.example^\n||track.example^$important\n@@||ok.example^\n", "adblock"),
        ("# hosts\n0.0.0.0 ads.example\n127.0.0.1 track.example\n::1 v6.example\n", "hosts"),
        ("ads.example\ntrack.example\n# a comment\n\n", "domains"),
        ("address=/ads.example/#\nserver=/corp.example/10.0.0.1\n", "dnsmasq"),
        ("local-zone: \"ads.example.\" always_null\n", "unbound"),
        ("*.ads.example\n*.track.example\n", "wildcard"),
        ("/^ad[0-9]+\\./\n", "regex"),
        ("||ads.example^\n0.0.0.0 track.example\nplain.example\n", "mixed"),
        ("# only comments\n! and more\n\n", "empty"),
        ("", "empty"),
        // The last line cut off by the 64 KiB window is left out.
        ("ads.example\ntrack.example\n0.0.0.0 cut-of", "domains"),
    ] as [(String, String)])
    func guesses(text: String, expected: String) {
        #expect(ListFormat.guess(text: Array(text.utf8)[...]) == expected)
    }

    @Test func aMissingFileIsUnreadable() {
        #expect(ListFormat.guess(path: "/nonexistent/list.txt") == "unreadable")
    }
}
