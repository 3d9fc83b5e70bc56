import Foundation

/// Asks the person at the terminal for what a command needs, or reads it from a pipe.
enum Prompt {
    /// Reads a secret without echoing it, from the controlling terminal; nil when there is
    /// no terminal to ask on.
    static func hidden(_ prompt: String) -> String? {
        getpass(prompt).map { String(cString: $0) }
    }

    /// Asks for a line of text, the prompt on standard error so that standard output stays
    /// clean for scripts; nil at the end of input.
    static func line(_ prompt: String) -> String? {
        FileHandle.standardError.write(Data(prompt.utf8))
        return readLine(strippingNewline: true)
    }

    /// One line of standard input, for secrets piped in by scripts (`--password-stdin`).
    static func standardInputLine() -> String? {
        readLine(strippingNewline: true)
    }
}
