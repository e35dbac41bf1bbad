//! Turns a log body into Drain's tokens: split on whitespace, with the variable parts masked
//! first (numbers, hex strings, ids, IP addresses, UUIDs, dates), so that lines differing only
//! in such values share a template from the first line on.
//!
//! Masking works token by token, without regular expressions:
//! - punctuation around a token (`(`, `[`, `"`, `,`, `.`, `:`...) is kept as it is;
//! - in `key=value`, the key is kept and the value masked;
//! - a whole value that is a UUID, an IPv4 address (with an optional `:port` or `/prefix`), a
//!   `0x` hex number or an ISO-8601 date becomes `<UUID>`, `<IP>`, `<HEX>` or `<TS>`;
//! - otherwise each run of letters and digits is looked at alone: all digits (with decimals)
//!   becomes `<NUM>`, digits with a unit (`5ms`, `2GB`) `<NUM>ms`, a hex string of 4 or more
//!   characters with a digit `<HEX>`, and any other run of 12 or more characters mixing
//!   letters and digits `<ID>`. Words, and short ones like `user42`, stay: Drain's own
//!   wildcard merging takes care of them.

use std::ops::Range;

/// Units that may follow a number in the same token.
const UNITS: [&str; 23] = [
    "ns", "us", "ms", "s", "sec", "m", "min", "h", "d", "b", "kb", "mb", "gb", "tb", "kib", "mib",
    "gib", "k", "x", "st", "nd", "rd", "th",
];

/// Punctuation kept before a token's masked part.
const LEADING: &[u8] = b"([{\"'";

/// Punctuation kept after a token's masked part.
const TRAILING: &[u8] = b")]}\"',;:.!?";

/// Reusable buffers that turn bodies into token lists.
#[derive(Debug, Default)]
pub struct Tokenizer {
    text: String,
    ranges: Vec<Range<usize>>,
}

/// The masked tokens of one line.
#[derive(Clone, Copy, Debug)]
pub struct Line<'a> {
    text: &'a str,
    ranges: &'a [Range<usize>],
}

impl<'a> Line<'a> {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// The tokens in order.
    pub fn tokens(&self) -> impl Iterator<Item = &'a str> + 'a {
        let text: &'a str = self.text;
        self.ranges.iter().map(move |range| &text[range.clone()])
    }
}

impl Tokenizer {
    /// Masks and splits `body`, reading at most `max_bytes` bytes and `max_tokens` tokens.
    pub fn tokenize(&mut self, body: &str, max_bytes: usize, max_tokens: usize) -> Line<'_> {
        self.text.clear();
        self.ranges.clear();
        for token in cut(body, max_bytes)
            .split_ascii_whitespace()
            .take(max_tokens)
        {
            let start = self.text.len();
            // Every mask needs a digit: most tokens, words, are copied as they are.
            if token.bytes().any(|byte| byte.is_ascii_digit()) {
                mask_token(token, &mut self.text);
            } else {
                self.text.push_str(token);
            }
            self.ranges.push(start..self.text.len());
        }
        Line {
            text: &self.text,
            ranges: &self.ranges,
        }
    }
}

/// `text` cut to at most `max_bytes` bytes, on a character boundary.
pub fn cut(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Appends the masked form of one whitespace-free token.
fn mask_token(token: &str, out: &mut String) {
    // The punctuation is ASCII, so these cuts fall on character boundaries.
    let bytes = token.as_bytes();
    let mut core_start = 0;
    while core_start < bytes.len() && LEADING.contains(&bytes[core_start]) {
        core_start += 1;
    }
    let mut core_end = bytes.len();
    while core_end > core_start && TRAILING.contains(&bytes[core_end - 1]) {
        core_end -= 1;
    }
    let core = &token[core_start..core_end];
    out.push_str(&token[..core_start]);
    match core.bytes().position(|byte| byte == b'=') {
        Some(equals) if equals > 0 => {
            out.push_str(&core[..=equals]);
            mask_value(&core[equals + 1..], out);
        }
        _ => mask_value(core, out),
    }
    out.push_str(&token[core_end..]);
}

/// Appends the masked form of a value.
fn mask_value(value: &str, out: &mut String) {
    if value.is_empty() {
        return;
    }
    if let Some(placeholder) = whole_mask(value) {
        out.push_str(placeholder);
        return;
    }
    let bytes = value.as_bytes();
    let is_word = |byte: u8| byte.is_ascii_alphanumeric() || !byte.is_ascii();
    let mut index = 0;
    while index < bytes.len() {
        if !is_word(bytes[index]) {
            // A single ASCII byte: a separator.
            out.push(bytes[index] as char);
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && is_word(bytes[index]) {
            index += 1;
        }
        let run = &value[start..index];
        let digits = run.bytes().take_while(u8::is_ascii_digit).count();
        if digits == run.len() {
            // Decimals (`3.25`) stay one number.
            while bytes.get(index) == Some(&b'.')
                && bytes.get(index + 1).is_some_and(u8::is_ascii_digit)
            {
                let mut end = index + 1;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                if end < bytes.len() && is_word(bytes[end]) {
                    break;
                }
                index = end;
            }
            out.push_str("<NUM>");
        } else if digits > 0 && is_unit(&run[digits..]) {
            out.push_str("<NUM>");
            out.push_str(&run[digits..]);
        } else if run.len() >= 4
            && run.bytes().all(|byte| byte.is_ascii_hexdigit())
            && run.bytes().any(|byte| byte.is_ascii_digit())
        {
            out.push_str("<HEX>");
        } else if run.len() >= 12
            && run.bytes().all(|byte| byte.is_ascii_alphanumeric())
            && run.bytes().any(|byte| byte.is_ascii_digit())
            && run.bytes().any(|byte| byte.is_ascii_alphabetic())
        {
            out.push_str("<ID>");
        } else {
            out.push_str(run);
        }
    }
}

fn is_unit(text: &str) -> bool {
    text.len() <= 3 && UNITS.iter().any(|unit| unit.eq_ignore_ascii_case(text))
}

/// The placeholder of a value that is masked whole.
fn whole_mask(value: &str) -> Option<&'static str> {
    let bytes = value.as_bytes();
    if is_uuid(bytes) {
        return Some("<UUID>");
    }
    if is_ipv4(value) {
        return Some("<IP>");
    }
    if let Some(hex) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
        && !hex.is_empty()
        && hex.bytes().all(|byte| byte.is_ascii_hexdigit())
    {
        return Some("<HEX>");
    }
    let digits = |range: Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    if bytes.len() >= 10
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
    {
        return Some("<TS>");
    }
    None
}

fn is_uuid(bytes: &[u8]) -> bool {
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => *byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

fn is_ipv4(value: &str) -> bool {
    let address = value
        .split_once([':', '/'])
        .filter(|(_, suffix)| !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()))
        .map_or(value, |(address, _)| address);
    let mut parts = 0;
    for part in address.split('.') {
        parts += 1;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    parts == 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(body: &str) -> Vec<String> {
        let mut tokenizer = Tokenizer::default();
        let line = tokenizer.tokenize(body, 2048, 64);
        line.tokens().map(str::to_owned).collect()
    }

    #[test]
    fn masks_variable_parts() {
        assert_eq!(
            masked("GET /api/v1/orders/8812 200 5ms 3.25 took=17ms"),
            [
                "GET",
                "/api/v1/orders/<NUM>",
                "<NUM>",
                "<NUM>ms",
                "<NUM>",
                "took=<NUM>ms"
            ]
        );
        assert_eq!(
            masked("from 10.0.0.12:5432 (req 3f2a9c1e-0b4d-4e5f-8a9b-1c2d3e4f5a6b), id=0x1F"),
            ["from", "<IP>", "(req", "<UUID>),", "id=<HEX>"]
        );
        assert_eq!(
            masked("cart 7f3a priced at 2026-11-23T10:00:00Z by user42 tok aZ81kq0Lm2Pq9x"),
            [
                "cart", "<HEX>", "priced", "at", "<TS>", "by", "user42", "tok", "<ID>"
            ]
        );
        // Words, short codes and versions in words stay.
        assert_eq!(
            masked("retry on e2e v2 deadbeef face"),
            ["retry", "on", "e2e", "v2", "deadbeef", "face"]
        );
        assert_eq!(masked("  "), Vec::<String>::new());
        assert_eq!(masked("x=  =5"), ["x=", "=<NUM>"]);
    }

    #[test]
    fn cuts_lines_and_tokens() {
        let mut tokenizer = Tokenizer::default();
        let line = tokenizer.tokenize("a b c d e", 2048, 3);
        assert_eq!(line.tokens().collect::<Vec<_>>(), ["a", "b", "c"]);
        let line = tokenizer.tokenize("aaaa bbbb", 6, 10);
        assert_eq!(line.tokens().collect::<Vec<_>>(), ["aaaa", "b"]);
        assert_eq!(cut("é", 1), "");
    }
}
