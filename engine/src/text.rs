//! Text for people and shells: quoting for command lines printed to be pasted, and making text from tests
//! and services safe to print (no terminal escape sequences) and bounded in size.

/// `text` as one shell word: as it is when it is plain, else in single quotes.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=".contains(c)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// `text` with every control character (escape sequences, carriage returns, bells, newlines) written as a
/// visible escape such as `\u{1b}`, so that text from a test or a service cannot drive the terminal.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// `text` without its terminal colour and cursor sequences (`ESC [ … m`, and other CSI and OSC sequences):
/// what a service's log says, without how its terminal would have shown it.
pub fn without_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            // CSI: parameters and intermediates, then one final byte in @..~.
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ESC \.
            Some(']') => {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// At most `most` bytes of `text` (cut at a character boundary), with how much was left out.
pub fn bounded(text: &str, most: usize) -> String {
    if text.len() <= most {
        return text.to_string();
    }
    let mut end = most;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
}

/// An error and its causes on one line, leaving out a cause the text already says (for messages that wrap
/// their cause's text, as `Error::Io` does).
pub fn error_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_and_others_are_single_quoted() {
        assert_eq!(shell_quote("cinema/src:1"), "cinema/src:1");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn d17_escape_sequences_are_made_visible_and_cannot_reach_the_terminal() {
        let hostile = "\u{1b}]0;PWNED\u{7}\u{1b}[2J\u{1b}[31mFAKE\r\nnext";
        let shown = printable(hostile);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(shown, "\\u{1b}]0;PWNED\\u{7}\\u{1b}[2J\\u{1b}[31mFAKE\\r\\nnext");
        assert_eq!(printable("plain text, é"), "plain text, é");
    }

    #[test]
    fn bounded_text_is_cut_at_a_character_boundary_and_says_how_much_is_missing() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("ééé", 3), "é… (4 more bytes)");
    }
}
