import ArgumentParser
import Configuration
import Foundation
import Web

struct Passwd: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set the web dashboard's password (stored as a scrypt hash in web.password_file).",
        discussion: """
            Asks twice on a terminal; with --password-stdin reads one line from standard input \
            instead (for scripts). The file is replaced atomically with mode 0600, owned by the \
            owner of its directory (the service's user under /var/lib/tproxy-relay). A running \
            relay takes the new password at the next login; sessions already open stay.
            """)

    @OptionGroup var options: ConfigOptions

    @Option(name: .customLong("file"), help: "Where to store the hash (default: web.password_file from the configuration).")
    var file: String?

    @Flag(name: .customLong("password-stdin"), help: "Read the password from standard input (one line).")
    var passwordStdin = false

    func run() throws {
        let path: String
        if let file {
            path = file
        } else {
            do {
                path = try ConfigurationParser.load(path: options.config).web.passwordFile
            } catch {
                print("error: \(error)")
                throw ExitCode(1)
            }
        }
        let password: String
        if passwordStdin {
            guard let line = readLine(strippingNewline: true) else {
                print("error: no password on standard input")
                throw ExitCode(1)
            }
            password = line
        } else {
            guard isatty(0) == 1 else {
                print("error: standard input is not a terminal: use --password-stdin")
                throw ExitCode(1)
            }
            let first = Self.readHidden("New password: ")
            let second = Self.readHidden("Again: ")
            guard first == second else {
                print("error: the two passwords differ; nothing changed")
                throw ExitCode(1)
            }
            password = first
        }
        guard password.count >= PasswordHash.minimumLength else {
            print("error: a password has at least \(PasswordHash.minimumLength) characters; nothing changed")
            throw ExitCode(1)
        }
        guard password.utf8.count <= PasswordHash.maximumLength else {
            print("error: a password has at most \(PasswordHash.maximumLength) bytes; nothing changed")
            throw ExitCode(1)
        }
        do {
            let hash = try PasswordHash.make(password)
            try hash.store(path: path)
        } catch {
            print("error: \(error)")
            throw ExitCode(1)
        }
        // The service reads the file as its own user: give it to the directory's owner.
        var directory = stat()
        if stat((path as NSString).deletingLastPathComponent, &directory) == 0, directory.st_uid != geteuid() {
            _ = chown(path, directory.st_uid, directory.st_gid)
        }
        print("password set in \(path); the dashboard asks for it at the next login")
    }

    /// A line read from the terminal with echo off.
    static func readHidden(_ prompt: String) -> String {
        print(prompt, terminator: "")
        fflush(stdout)
        var old = termios()
        tcgetattr(0, &old)
        var quiet = old
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(0, TCSAFLUSH, &quiet)
        defer {
            tcsetattr(0, TCSAFLUSH, &old)
            print("")
        }
        return readLine(strippingNewline: true) ?? ""
    }
}
