//! Numbers and words out of console lines, for tests' assertions: each takes what follows the
//! first `key` in a line (after any spaces) and panics, naming the key and the line, if there
//! is none.

/// The decimal integer right after `key` in `line` (`"lost after 3012 ms"`, key `"lost
/// after"`: 3012); digits up to the first non-digit.
pub fn number_after(line: &str, key: &str) -> u64 {
    let digits: String = rest_after(line, key)
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key:?} in {line:?}"))
}

/// The decimal number, with a fraction or not, right after `key` in `line`
/// (`"stun 12.5 us"`, key `"stun"`: 12.5).
pub fn decimal_after(line: &str, key: &str) -> f64 {
    let number: String = rest_after(line, key)
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key:?} in {line:?}"))
}

/// The hexadecimal number right after `key` in `line`, with or without `0x` (`"CR2=0x1f"`
/// and `"CR2=1f"`, key `"CR2="`: 0x1f).
pub fn hex_after(line: &str, key: &str) -> u64 {
    let rest = rest_after(line, key);
    let rest = rest.strip_prefix("0x").unwrap_or(rest);
    let digits: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    u64::from_str_radix(&digits, 16)
        .unwrap_or_else(|_| panic!("no hexadecimal number after {key:?} in {line:?}"))
}

/// The word right after `key` in `line`: up to a space, `)`, `,` or `;`.
pub fn word_after<'a>(line: &'a str, key: &str) -> &'a str {
    rest_after(line, key)
        .split(|c: char| c.is_whitespace() || matches!(c, ')' | ',' | ';'))
        .next()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| panic!("nothing after {key:?} in {line:?}"))
}

/// What follows the first `key` in `line`, leading spaces dropped.
fn rest_after<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_once(key)
        .map(|(_, rest)| rest.trim_start())
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOOK: &str = "ft: backup took over at epoch 41 (primary silent for 3000 ms), \
                        memory digest 9f3a; stun 12.5 us";

    #[test]
    fn numbers_and_words_after_a_key() {
        assert_eq!(number_after(TOOK, "at epoch"), 41);
        assert_eq!(number_after(TOOK, "silent for"), 3000);
        assert_eq!(decimal_after(TOOK, "stun"), 12.5);
        assert_eq!(decimal_after(TOOK, "epoch"), 41.0);
        assert_eq!(word_after(TOOK, "memory digest"), "9f3a");
        assert_eq!(word_after(TOOK, "at epoch"), "41");
        assert_eq!(hex_after("error=0x3 RIP=ffff8000", "error="), 3);
        assert_eq!(hex_after("error=0x3 RIP=ffff8000", "RIP="), 0xFFFF_8000);
    }

    #[test]
    #[should_panic(expected = "no number after \"(primary\"")]
    fn a_missing_number_names_the_key_and_line() {
        number_after(TOOK, "(primary");
    }

    #[test]
    #[should_panic(expected = "no \"absent\" in")]
    fn a_missing_key_names_the_key_and_line() {
        word_after(TOOK, "absent");
    }
}
