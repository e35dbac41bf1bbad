//! Detectors: a regex plus a cheap pre-check and an optional validation, and the code that masks
//! their findings in one text without allocating when nothing is found.

use regex::{Captures, Regex};

/// The built-in kinds of secrets and personal data, in the order they are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `scheme://user:password@host`.
    UrlCredentials,
    /// `Authorization: Basic <base64>`, and a bare `Basic <base64>` whose decoding is `user:pass`.
    BasicAuth,
    /// `Authorization: Bearer <token>` and a bare `bearer <token>` of 8 characters or more.
    Bearer,
    /// A labelled AWS secret key: `aws_secret_access_key=...`, `"SecretAccessKey": "..."`.
    AwsSecretKey,
    /// An AWS access key id: `AKIA` or `ASIA` and 16 uppercase letters or digits.
    AwsAccessKeyId,
    /// An e-mail address.
    Email,
    /// A payment card number of 13 to 19 digits that passes the Luhn check.
    Card,
}

impl Kind {
    /// Every kind, in the order they are applied: the URL and header forms go before e-mail
    /// addresses (`user:pass@host.com` looks like one) and card numbers go last.
    pub const ALL: [Kind; 7] = [
        Kind::UrlCredentials,
        Kind::BasicAuth,
        Kind::Bearer,
        Kind::AwsSecretKey,
        Kind::AwsAccessKeyId,
        Kind::Email,
        Kind::Card,
    ];

    /// The kind's name, as used in masks and counters.
    pub fn name(self) -> &'static str {
        match self {
            Kind::UrlCredentials => "url_credentials",
            Kind::BasicAuth => "basic_auth",
            Kind::Bearer => "bearer",
            Kind::AwsSecretKey => "aws_secret_key",
            Kind::AwsAccessKeyId => "aws_access_key_id",
            Kind::Email => "email",
            Kind::Card => "card",
        }
    }

    /// The kind's regex. When it has capture groups, the first group that took part in a match
    /// is what gets masked (the secret), and the rest of the match (a label) is kept.
    ///
    /// Keywords are `(?i-u:...)` and word boundaries ASCII (`(?-u:\b)`): the lazy DFA handles
    /// those on any text, while a Unicode `\b` makes it give up on non-ASCII text.
    fn pattern(self) -> &'static str {
        // An optional quote after a label and after its separator, escaped or not, so that
        // `Authorization: Bearer x`, `"authorization":"Bearer x"` and `\"authorization\": ...`
        // (JSON inside a JSON string) all match.
        match self {
            Kind::UrlCredentials => {
                r#"[A-Za-z][A-Za-z0-9+.\-]*://(?P<userinfo>[^\s/?#@:"'<>\\]+:[^\s/?#"'<>\\]+)@"#
            }
            Kind::BasicAuth => concat!(
                r#"(?i-u:authorization)(?:\\?["'])?[ \t]*[:=][ \t]*(?:\\?["'])?(?i-u:basic)[ \t]+"#,
                r#"(?P<labelled>[A-Za-z0-9+/]+=*)"#,
                r#"|(?-u:\b)(?i-u:basic)[ \t]+(?P<bare>[A-Za-z0-9+/]{8,}={0,2})"#,
            ),
            Kind::Bearer => concat!(
                r#"(?i-u:authorization)(?:\\?["'])?[ \t]*[:=][ \t]*(?:\\?["'])?(?i-u:bearer)[ \t]+"#,
                r#"(?P<labelled>[A-Za-z0-9\-._~+/]+=*)"#,
                r#"|(?-u:\b)(?i-u:bearer)[ \t]+(?P<bare>[A-Za-z0-9\-._~+/]{8,}=*)"#,
            ),
            Kind::AwsSecretKey => concat!(
                r#"(?i-u:(?:aws[_\-]?)?secret[_\-]?access[_\-]?key|aws[_\-]?secret[_\-]?key)"#,
                r#"(?:\\?["'])?[ \t]*[:=][ \t]*(?:\\?["'])?(?P<secret>[A-Za-z0-9/+=]+)"#,
            ),
            Kind::AwsAccessKeyId => r"(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}(?-u:\b)",
            Kind::Email => {
                // Letters and digits of any script in the local part and the domain labels
                // (`jörg@münchen.de`), so that no part of an address is left visible.
                r"[\w.%+\-]+@\w(?:[\w\-]*\w)?(?:\.\w(?:[\w\-]*\w)?)*\.[A-Za-z]{2,}"
            }
            Kind::Card => r"(?-u:\b)[0-9](?:[ \-]?[0-9]){12,18}(?-u:\b)",
        }
    }

    /// What a text needs before the regex is worth running.
    fn gate(self) -> Gate {
        match self {
            Kind::UrlCredentials => Gate::Flags(HAS_SCHEME | HAS_AT),
            Kind::BasicAuth => Gate::Flags(HAS_BASIC),
            Kind::Bearer => Gate::Flags(HAS_BEARER),
            Kind::AwsSecretKey => Gate::Flags(HAS_SECRET | HAS_SEPARATOR),
            Kind::AwsAccessKeyId => Gate::Flags(HAS_AWS_ID),
            Kind::Email => Gate::Flags(HAS_AT),
            Kind::Card => Gate::Flags(HAS_DIGIT_RUN),
        }
    }

    /// A check of each finding beyond the regex.
    fn validation(self) -> Option<Validation> {
        match self {
            // Group 1 is the labelled form; a bare `Basic xyz` must decode to `user:pass`.
            Kind::BasicAuth => Some(|group, secret| group == 1 || is_basic_credentials(secret)),
            Kind::Card => Some(|_, number| is_card_number(number)),
            _ => None,
        }
    }

    /// The detector for this kind, with its findings replaced by `mask`.
    pub fn detector(self, mask: String) -> Detector {
        let regex = Regex::new(self.pattern())
            .unwrap_or_else(|error| panic!("built-in pattern {}: {error}", self.name()));
        Detector {
            mask_secret_group: regex.captures_len() > 1,
            regex,
            replacement: Replacement::Literal(mask),
            gate: self.gate(),
            validation: self.validation(),
        }
    }
}

/// A check of a finding: the index of the capture group that matched (0 for the whole match)
/// and its text.
type Validation = fn(usize, &str) -> bool;

/// What replaces a finding.
#[derive(Debug)]
pub enum Replacement {
    /// This text.
    Literal(String),
    /// This template, with `$1`, `${name}` expanded from the match's capture groups.
    Expand(String),
}

impl Replacement {
    /// A literal text unless it refers to capture groups.
    pub fn new(text: String) -> Self {
        if text.contains('$') {
            Replacement::Expand(text)
        } else {
            Replacement::Literal(text)
        }
    }
}

/// One detector: what to look for, what to check before and after, and what to put instead.
#[derive(Debug)]
pub struct Detector {
    regex: Regex,
    /// Mask the first capture group that took part in the match instead of the whole match.
    mask_secret_group: bool,
    replacement: Replacement,
    gate: Gate,
    validation: Option<Validation>,
}

impl Detector {
    /// A detector for a user pattern: the whole match is replaced.
    pub fn custom(regex: Regex, replacement: Replacement) -> Self {
        Detector {
            regex,
            mask_secret_group: false,
            replacement,
            gate: Gate::Always,
            validation: None,
        }
    }

    /// Whether the text may hold a finding, judged from its [`Hints`].
    pub fn admits(&self, hints: &Hints) -> bool {
        self.gate.admits(hints)
    }

    /// Masks every finding in `text`: the new text and how many findings were masked, or `None`
    /// (without allocating) when there was none.
    pub fn apply(&self, text: &str) -> Option<(String, u64)> {
        let mut masked = Masked::new(text);
        if self.mask_secret_group || matches!(self.replacement, Replacement::Expand(_)) {
            for captures in self.regex.captures_iter(text) {
                let (group, found) = if self.mask_secret_group {
                    (1..captures.len())
                        .find_map(|group| captures.get(group).map(|found| (group, found)))
                        .unwrap_or((0, captures.get(0).expect("group 0 always matches")))
                } else {
                    (0, captures.get(0).expect("group 0 always matches"))
                };
                self.replace(&mut masked, group, found, Some(&captures));
            }
        } else {
            for found in self.regex.find_iter(text) {
                self.replace(&mut masked, 0, found, None);
            }
        }
        masked.finish()
    }

    fn replace(
        &self,
        masked: &mut Masked<'_>,
        group: usize,
        found: regex::Match<'_>,
        captures: Option<&Captures<'_>>,
    ) {
        // An empty match (a user pattern like `x*`) has nothing to hide.
        if found.is_empty() {
            return;
        }
        if let Some(valid) = self.validation
            && !valid(group, found.as_str())
        {
            return;
        }
        let out = masked.start_replacement(found.start());
        match (&self.replacement, captures) {
            (Replacement::Expand(template), Some(captures)) => captures.expand(template, out),
            (Replacement::Expand(template), None) | (Replacement::Literal(template), _) => {
                out.push_str(template)
            }
        }
        masked.end_replacement(found.end());
    }
}

/// A text being masked: built only once the first finding is replaced.
struct Masked<'t> {
    text: &'t str,
    out: Option<String>,
    /// End of the last replaced finding in `text`.
    copied: usize,
    count: u64,
}

impl<'t> Masked<'t> {
    fn new(text: &'t str) -> Self {
        Masked {
            text,
            out: None,
            copied: 0,
            count: 0,
        }
    }

    /// Copies the text up to `start` and returns the output, to push the replacement onto.
    fn start_replacement(&mut self, start: usize) -> &mut String {
        let text = self.text;
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(text.len() + 16));
        out.push_str(&text[self.copied..start]);
        out
    }

    fn end_replacement(&mut self, end: usize) {
        self.copied = end;
        self.count += 1;
    }

    fn finish(self) -> Option<(String, u64)> {
        let mut out = self.out?;
        out.push_str(&self.text[self.copied..]);
        Some((out, self.count))
    }
}

/// What a text holds of the bytes and keywords each built-in regex needs, so that a regex runs
/// only on texts that may hold a finding. Finding out costs one pass over the text (and a search
/// for `://` in texts with both `@` and `:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    /// Which of the `HAS_*` facts hold.
    flags: u16,
}

/// An `@`.
const HAS_AT: u16 = 1;
/// A `:` or `=` (between a label and its value).
const HAS_SEPARATOR: u16 = 2;
/// `://`.
const HAS_SCHEME: u16 = 4;
/// `bearer`, in any case.
const HAS_BEARER: u16 = 8;
/// `basic`, in any case.
const HAS_BASIC: u16 = 16;
/// `secret`, in any case.
const HAS_SECRET: u16 = 32;
/// `AKIA` or `ASIA`.
const HAS_AWS_ID: u16 = 64;
/// [`CARD_MIN_DIGITS`] digits or more in a row, where a single space or dash between two digits
/// continues the row (a card number's shape, as in the card regex).
const HAS_DIGIT_RUN: u16 = 128;

/// Byte classes for the first pass.
const DIGIT: u8 = 1;
const AT: u8 = 2;
const COLON: u8 = 4;
const EQUALS: u8 = 8;
/// `b`, `B`, `c`, `C`: letters of `bearer`, `basic` and `secret` that keywords are looked for from.
const KEYWORD_START: u8 = 16;
/// `A`, the first letter of `AKIA` and `ASIA`.
const CAPITAL_A: u8 = 32;
/// A space or a dash, which may separate the digit groups of a card number.
const SPACE_OR_DASH: u8 = 64;

static CLASSES: [u8; 256] = {
    let mut classes = [0u8; 256];
    let mut byte = b'0';
    while byte <= b'9' {
        classes[byte as usize] = DIGIT;
        byte += 1;
    }
    classes[b'@' as usize] = AT;
    classes[b':' as usize] = COLON;
    classes[b'=' as usize] = EQUALS;
    classes[b'b' as usize] = KEYWORD_START;
    classes[b'B' as usize] = KEYWORD_START;
    classes[b'c' as usize] = KEYWORD_START;
    classes[b'C' as usize] = KEYWORD_START;
    classes[b'A' as usize] = CAPITAL_A;
    classes[b' ' as usize] = SPACE_OR_DASH;
    classes[b'-' as usize] = SPACE_OR_DASH;
    classes
};

/// The shortest digit run [`HAS_DIGIT_RUN`] stands for.
const CARD_MIN_DIGITS: u32 = 13;

impl Hints {
    /// The hints of `text`.
    pub fn of(text: &str) -> Self {
        let bytes = text.as_bytes();
        // One pass: which classes of bytes occur, the longest digit run, and the keywords,
        // looked for only at the few bytes that can start one.
        let (mut seen, mut flags) = (0u8, 0u16);
        let (mut run, mut longest_run, mut after_digit) = (0u32, 0u32, false);
        for (at, &byte) in bytes.iter().enumerate() {
            let class = CLASSES[byte as usize];
            if class == DIGIT {
                run += 1;
                longest_run = longest_run.max(run);
                after_digit = true;
                continue;
            }
            if class == SPACE_OR_DASH && after_digit {
                after_digit = false;
                continue;
            }
            run = 0;
            after_digit = false;
            if class & (KEYWORD_START | CAPITAL_A) != 0 {
                flags |= keyword_at(bytes, at);
            }
            seen |= class;
        }
        if seen & AT != 0 {
            flags |= HAS_AT;
            if seen & COLON != 0 && text.contains("://") {
                flags |= HAS_SCHEME;
            }
        }
        if seen & (COLON | EQUALS) != 0 {
            flags |= HAS_SEPARATOR;
        }
        if longest_run >= CARD_MIN_DIGITS {
            flags |= HAS_DIGIT_RUN;
        }
        Hints { flags }
    }
}

/// The keyword around `bytes[at]` (one of `b`, `B`, `c`, `C`, `A`), as a `HAS_*` flag (0 for
/// none). The first four letters of a keyword are enough for a pre-check; `secret` is looked for
/// from its `c`, a rarer letter than `s`.
fn keyword_at(bytes: &[u8], at: usize) -> u16 {
    const fn word(letters: &[u8; 4]) -> u32 {
        u32::from_le_bytes(*letters)
    }
    /// Four bytes from `start`, with ASCII letters lowercase (setting bit 5 of each byte lowercases
    /// letters and maps no other byte to a letter).
    fn folded(bytes: &[u8], start: usize) -> Option<u32> {
        let four = bytes.get(start..)?.first_chunk::<4>()?;
        Some(word(four) | 0x2020_2020)
    }
    match bytes[at] {
        b'A' => match bytes[at..].first_chunk::<4>() {
            Some(b"AKIA" | b"ASIA") => HAS_AWS_ID,
            _ => 0,
        },
        b'c' | b'C' => match at.checked_sub(2).and_then(|start| folded(bytes, start)) {
            Some(four) if four == word(b"secr") => HAS_SECRET,
            _ => 0,
        },
        _ => match folded(bytes, at) {
            Some(four) if four == word(b"bear") => HAS_BEARER,
            Some(four) if four == word(b"basi") => HAS_BASIC,
            _ => 0,
        },
    }
}

/// What a text needs for a detector to run: a superset of what its regex needs.
#[derive(Clone, Copy, Debug)]
enum Gate {
    /// Nothing: user patterns.
    Always,
    /// All of these `HAS_*` flags.
    Flags(u16),
}

impl Gate {
    fn admits(self, hints: &Hints) -> bool {
        match self {
            Gate::Always => true,
            Gate::Flags(flags) => hints.flags & flags == flags,
        }
    }
}

/// The Luhn check over the digits of `number`, ignoring spaces and dashes; false when it holds
/// anything else or no digit.
pub fn luhn(number: &str) -> bool {
    let (mut sum, mut digits) = (0u32, 0u32);
    for byte in number.bytes().rev() {
        let digit = match byte {
            b'0'..=b'9' => u32::from(byte - b'0'),
            b' ' | b'-' => continue,
            _ => return false,
        };
        // Every second digit from the right is doubled; a two-digit result adds its digits.
        sum += if digits % 2 == 1 {
            digit * 2 - if digit > 4 { 9 } else { 0 }
        } else {
            digit
        };
        digits += 1;
    }
    digits > 0 && sum % 10 == 0
}

/// A payment card number: 13 to 19 digits (spaces and dashes aside), a first digit from 2 to 6
/// (Mir, Visa, Mastercard, American Express, Discover, JCB, Diners, UnionPay, Maestro: this
/// leaves out epoch timestamps in milliseconds or nanoseconds, which start with 1) and a valid
/// Luhn check digit.
pub fn is_card_number(number: &str) -> bool {
    let digits = number.bytes().filter(u8::is_ascii_digit).count();
    (13..=19).contains(&digits)
        && matches!(number.as_bytes().first(), Some(b'2'..=b'6'))
        && luhn(number)
}

/// Whether `encoded` is base64 for printable `user:password` text.
fn is_basic_credentials(encoded: &str) -> bool {
    let (mut bits, mut bit_count, mut colon) = (0u32, 0u32, false);
    for byte in encoded.trim_end_matches('=').bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return false,
        };
        bits = (bits << 6) | u32::from(sextet);
        bit_count += 6;
        if bit_count >= 8 {
            bit_count -= 8;
            let decoded = (bits >> bit_count) as u8;
            bits &= (1 << bit_count) - 1;
            match decoded {
                b':' => colon = true,
                b' '..=b'~' => {}
                _ => return false,
            }
        }
    }
    colon
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_valid_numbers() {
        for number in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "5500-0000-0000-0004",
            "378282246310005",
            "6011111111111117",
            "79927398713",
            "0",
        ] {
            assert!(luhn(number), "{number}");
        }
    }

    #[test]
    fn luhn_rejects_invalid_numbers() {
        for number in [
            "4111111111111112",
            "1234567890123456",
            "79927398710",
            "4111x1111",
            "",
            " - ",
        ] {
            assert!(!luhn(number), "{number}");
        }
    }

    #[test]
    fn card_numbers_need_length_prefix_and_luhn() {
        assert!(is_card_number("4111 1111 1111 1111"));
        assert!(is_card_number("5500-0000-0000-0004"));
        assert!(is_card_number("4222222222222")); // 13 digits
        assert!(!is_card_number("1234567890123456")); // fails Luhn
        assert!(!is_card_number("79927398713")); // too short
        assert!(!is_card_number("1718035200000000001")); // nanosecond timestamp, Luhn-valid
        assert!(luhn("1718035200000000001"));
    }

    #[test]
    fn basic_credentials_decode_to_user_and_password() {
        assert!(is_basic_credentials("dXNlcjpwYXNz")); // user:pass
        assert!(is_basic_credentials("QWxhZGRpbjpvcGVuIHNlc2FtZQ==")); // Aladdin:open sesame
        assert!(!is_basic_credentials("authentication"));
        assert!(!is_basic_credentials("aGVsbG8gd29ybGQ=")); // hello world
    }

    #[test]
    fn hints_find_bytes_keywords_and_digit_runs() {
        assert_eq!(Hints::of("plain text, 12 words 12345678901").flags, 0);
        let hints = Hints::of("https://u:p@h Bearer x BASIC y Secret=z ASIA");
        assert_eq!(
            hints.flags,
            HAS_AT | HAS_SEPARATOR | HAS_SCHEME | HAS_BEARER | HAS_BASIC | HAS_SECRET | HAS_AWS_ID
        );
        assert_eq!(Hints::of("a 4111 1111-1111 1111").flags, HAS_DIGIT_RUN);
        assert_eq!(Hints::of("x 4111111111111").flags, HAS_DIGIT_RUN);
        assert_eq!(Hints::of("4111  1111 1111 1111").flags, 0);
        assert_eq!(Hints::of("4111 -1111 1111 1111 1").flags, HAS_DIGIT_RUN);
        assert_eq!(Hints::of("4111 -1111 1111 1111").flags, 0);
        assert_eq!(Hints::of("bea bas AKI ASI akia SEC cret b c A").flags, 0);
        // Four letters of a keyword are enough, in any case but for AWS ids.
        assert_eq!(Hints::of("BeAr").flags, HAS_BEARER);
        assert_eq!(Hints::of("xbasis").flags, HAS_BASIC);
        assert_eq!(Hints::of("SeCrEcy").flags, HAS_SECRET);
        assert_eq!(Hints::of("xAKIA").flags, HAS_AWS_ID);
    }

    #[test]
    fn ordinary_log_lines_run_no_regex() {
        for line in [
            "GET /api/v1/orders/12345 200 12ms user_agent=Mozilla/5.0 (X11; Linux x86_64) \
             trace=4bf92f3577b34da6a3ce929d0e0e4736",
            "payment service: processed batch of 512 events in 34.2ms, queue depth 17, shard=eu-1a",
            "Connection pool stats: active=12 idle=4 max=32 timeout=30000 host=db.internal port=5432",
            "Überprüfung abgeschlossen: 42 Einträge für Kunde 8812, Zeitstempel 2026-11-23T10:00:00Z",
            r#"{"level":"info","msg":"request completed","method":"POST","status":201,"ms":87}"#,
        ] {
            let hints = Hints::of(line);
            let gated: Vec<Kind> = Kind::ALL
                .into_iter()
                .filter(|kind| kind.gate().admits(&hints))
                .collect();
            assert_eq!(gated, [], "{line}: {hints:?}");
        }
    }

    #[test]
    fn built_in_patterns_compile() {
        for kind in Kind::ALL {
            let _ = kind.detector(String::new());
        }
    }
}
