//! Property tests of the domain's parsers (`auth_domain::types`) and pure policies
//! (`auth_domain::policy`).
//!
//! Every property is stated against an oracle written here, independently of the code
//! under test (a character rule, a length in `chars()`, a hand-written base64url decoder, a
//! duration computed in `i128`), or against a model of the documented rule, so that each can
//! fail. Each parser also gets "never panics on any string" and "parsing its own output
//! gives it back" (normalization is stable).
//!
//! Case counts are modest (256 for the cheap properties, fewer for zxcvbn) so the file runs
//! in a few seconds in a debug build. No failure is persisted to disk: a failing case is
//! printed, minimal, by the runner; keep it as a named `#[test]` below.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use auth_domain::policy::{
    AttemptState, LockoutPolicy, OutboxPolicy, PasswordPolicy, RateLimit, gcra,
};
use auth_domain::types::{
    BlindIndex, Email, Invalid, Password, PersonName, PhoneNumber, PlainToken, SessionId,
    Timestamp, UserId, Username,
};
use chrono::{TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::Config;
use sha2::{Digest, Sha256};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// `cases` cases, nothing written to disk.
fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

fn ms(n: i64) -> TimeDelta {
    TimeDelta::milliseconds(n)
}

/// Unicode `White_Space`, spelled out (the oracle of `str::trim`).
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{d}'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

fn trimmed(raw: &str) -> &str {
    raw.trim_matches(is_space)
}

const DIGITS: &str = "0123456789";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn ascii_letter_or_digit(c: char) -> bool {
    DIGITS.contains(c) || LOWER.contains(c) || UPPER.contains(c)
}

/// Strings that stress a text parser: any Unicode, ASCII with the punctuation parsers care
/// about, and Unicode white space around.
fn noisy_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        "[\\t \u{a0}\u{3000}]{0,2}[a-zA-Z0-9_.@+() -]{0,40}[\\t \u{a0}\u{3000}]{0,2}",
    ]
}

// ---------------------------------------------------------------------------------------
// Username
// ---------------------------------------------------------------------------------------

/// The documented rule: trimmed, 3–32 characters of ASCII letters, digits, `_`, `.`, `-`,
/// starting with a letter or a digit.
fn username_oracle(raw: &str) -> Option<String> {
    let t = trimmed(raw);
    let len = t.chars().count();
    let allowed = |c: char| ascii_letter_or_digit(c) || c == '_' || c == '.' || c == '-';
    let ok = (3..=32).contains(&len)
        && t.chars().all(allowed)
        && t.chars().next().is_some_and(ascii_letter_or_digit);
    ok.then(|| t.to_owned())
}

fn username_like() -> impl Strategy<Value = String> {
    prop_oneof![
        noisy_text(),
        "[ \u{a0}]{0,2}[a-zA-Z0-9_.\\-]{0,35}[ \u{a0}]{0,2}",
        // Right at the 3 and 32 character limits.
        (
            prop::sample::select(vec![2usize, 3, 32, 33]),
            "[a-zA-Z0-9]",
            "[a-z0-9_.\\-]"
        )
            .prop_map(|(n, first, rest)| format!("{first}{}", rest.repeat(n - 1))),
        // Letters and digits that are alphanumeric but not ASCII.
        "[a-zA-Z0-9_.\\-éÅß٣Ⅻ]{2,34}",
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Username::parse accepts exactly what the character rule accepts, keeps it as typed
    /// (trimmed), never panics, and reads its own output back unchanged.
    #[test]
    fn username_parse_matches_the_character_rule(raw in username_like()) {
        let parsed = Username::parse(&raw);
        let expected = username_oracle(&raw);
        prop_assert_eq!(parsed.as_ref().ok().map(Username::as_str), expected.as_deref());
        if let Ok(name) = parsed {
            prop_assert_eq!(Username::parse(name.as_str()), Ok(name.clone()), "idempotent");
            prop_assert_eq!(name.normalized(), name.as_str().to_ascii_lowercase());
        } else if trimmed(&raw).is_empty() {
            prop_assert_eq!(parsed, Err(Invalid("is required")));
        }
    }

    /// Two spellings that differ only in ASCII case are the same account.
    #[test]
    fn username_normalized_ignores_ascii_case(raw in "[a-zA-Z0-9][a-zA-Z0-9_.\\-]{2,31}") {
        let lower = Username::parse(&raw.to_ascii_lowercase()).expect("valid");
        let upper = Username::parse(&raw.to_ascii_uppercase()).expect("valid");
        prop_assert_eq!(lower.normalized(), upper.normalized());
    }
}

// ---------------------------------------------------------------------------------------
// Password
// ---------------------------------------------------------------------------------------

/// Strings whose length in characters and in bytes is near the limits (8, 128 characters;
/// 1024 bytes), with characters of 1 to 4 bytes.
fn password_like() -> impl Strategy<Value = String> {
    let unit = prop_oneof![
        Just('a'),
        Just(' '),
        Just('é'),
        Just('€'),
        Just('😀'),
        any::<char>()
    ];
    prop_oneof![
        proptest::collection::vec(unit.clone(), 0..=140).prop_map(String::from_iter),
        proptest::collection::vec(unit, 240..=1100).prop_map(String::from_iter),
        // Right at the 8 and 128 character limits, in characters of 1 to 4 bytes.
        (
            prop::sample::select(vec![0usize, 1, 7, 8, 9, 127, 128, 129]),
            prop::sample::select(vec!['a', 'é', '€', '😀'])
        )
            .prop_map(|(n, c)| c.to_string().repeat(n)),
        // Right at the 1024-byte limit of a presented password.
        (1015usize..=1030).prop_map(|n| "a".repeat(n)),
        (505usize..=515, any::<bool>())
            .prop_map(|(n, odd)| { format!("{}{}", "é".repeat(n), if odd { "a" } else { "" }) }),
        noisy_text(),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// Password::parse: 8–128 characters (not bytes), nothing trimmed or changed.
    #[test]
    fn password_parse_counts_characters(raw in password_like()) {
        let chars = raw.chars().count();
        match Password::parse(&raw) {
            Ok(p) => {
                prop_assert!((8..=128).contains(&chars), "{chars} characters accepted");
                prop_assert_eq!(p.expose(), raw.as_str(), "kept exactly as typed");
                prop_assert_eq!(format!("{p:?}"), "Password(***)");
                prop_assert!(Password::parse(p.expose()).is_ok(), "idempotent");
            }
            Err(why) => {
                prop_assert!(!(8..=128).contains(&chars), "{chars} characters refused: {why}");
                prop_assert_eq!(why == Invalid("is required"), raw.is_empty());
            }
        }
    }

    /// Password::presented (login): anything from 1 to 1024 bytes; and every password that
    /// can be set can be presented.
    #[test]
    fn password_presented_counts_bytes_and_accepts_every_settable_password(
        raw in password_like(),
    ) {
        let presented = Password::presented(&raw);
        prop_assert_eq!(presented.is_ok(), (1..=1024).contains(&raw.len()));
        if let Ok(p) = presented {
            prop_assert_eq!(p.expose(), raw.as_str());
        }
        if Password::parse(&raw).is_ok() {
            prop_assert!(Password::presented(&raw).is_ok());
        }
    }
}

// ---------------------------------------------------------------------------------------
// PersonName
// ---------------------------------------------------------------------------------------

/// Control characters (Unicode general category Cc), spelled out.
fn is_cc(c: char) -> bool {
    let n = u32::from(c);
    n < 0x20 || (0x7f..=0x9f).contains(&n)
}

proptest! {
    #![proptest_config(config(256))]

    /// PersonName::parse: trimmed, 1–100 characters, no control character; idempotent.
    #[test]
    fn person_name_parse_matches_its_rule(
        raw in prop_oneof![
            noisy_text(),
            proptest::collection::vec(
                prop_oneof![
                    8 => Just('a'),
                    1 => Just('É'),
                    2 => Just(' '),
                    1 => Just('\u{7}'),
                    1 => Just('\u{85}'),
                    1 => Just('\u{9b}'),
                    1 => Just('\u{7f}'),
                ],
                0..=105,
            )
            .prop_map(String::from_iter),
        ],
    ) {
        let t = trimmed(&raw);
        let expected = (1..=100).contains(&t.chars().count()) && !t.chars().any(is_cc);
        match PersonName::parse(&raw) {
            Ok(name) => {
                prop_assert!(expected, "accepted {raw:?}");
                prop_assert_eq!(name.as_str(), t);
                prop_assert!(PersonName::parse(name.as_str()) == Ok(name.clone()), "idempotent");
                prop_assert_eq!(format!("{name:?}"), "PersonName(***)");
            }
            Err(_) => prop_assert!(!expected, "refused {raw:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// PhoneNumber
// ---------------------------------------------------------------------------------------

fn phone_oracle(raw: &str) -> Option<String> {
    let compact: String = trimmed(raw)
        .chars()
        .filter(|c| !" -.()".contains(*c))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    let ok =
        (7..=15).contains(&digits.chars().count()) && digits.chars().all(|c| DIGITS.contains(c));
    ok.then_some(compact)
}

/// Digits (7–15, sometimes fewer or more), an optional `+`, and separators sprinkled in.
fn phone_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[0-9]",
        1 => "[ .()\\-]{1,2}",
        1 => Just("+".to_owned()),
        1 => "[a-z٣\\t]",
    ];
    prop_oneof![
        proptest::collection::vec(piece, 0..=24).prop_map(|v| v.concat()),
        // Around the 7 and 15 digit limits.
        "[ (]{0,2}\\+?[0-9]{5,17}[ )]{0,2}",
        noisy_text(),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// PhoneNumber::parse: separators dropped, optional leading `+`, 7–15 ASCII digits;
    /// never panics; idempotent.
    #[test]
    fn phone_parse_matches_its_rule(raw in phone_like()) {
        let parsed = PhoneNumber::parse(&raw);
        let expected = phone_oracle(&raw);
        prop_assert_eq!(parsed.as_ref().ok().map(PhoneNumber::as_str), expected.as_deref());
        if let Ok(phone) = parsed {
            prop_assert!(PhoneNumber::parse(phone.as_str()) == Ok(phone.clone()), "idempotent");
        }
    }

    /// Separators anywhere do not change the normalized number.
    #[test]
    fn phone_separators_do_not_matter(
        plus in any::<bool>(),
        digits in "[0-9]{7,15}",
        seps in proptest::collection::vec("[ .()\\-]{0,2}", 17),
    ) {
        let bare = format!("{}{digits}", if plus { "+" } else { "" });
        let mut spaced = seps[0].clone();
        if plus {
            spaced.push('+');
        }
        for (i, d) in digits.chars().enumerate() {
            spaced.push_str(&seps[i + 1]);
            spaced.push(d);
        }
        spaced.push_str(&seps[16]);
        let a = PhoneNumber::parse(&bare).expect("valid");
        let b = PhoneNumber::parse(&spaced).expect("valid with separators");
        prop_assert_eq!(a.as_str(), bare.as_str());
        prop_assert_eq!(b.as_str(), bare.as_str());
    }
}

// ---------------------------------------------------------------------------------------
// Email
// ---------------------------------------------------------------------------------------

const LOCAL_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789.!#$%&'*+/=?^_`{|}~-";

/// The documented rule for ASCII input without `[`: trimmed, lower-cased, at most 254
/// characters; the HTML5 address syntax: a local part of 1–64 of [`LOCAL_CHARS`], `@`,
/// and DNS labels of 1–63 letters, digits or inner hyphens, the domain at most 255.
fn ascii_email_oracle(raw: &str) -> Option<String> {
    let n = trimmed(raw).to_ascii_lowercase();
    if n.is_empty() || n.chars().count() > 254 {
        return None;
    }
    let (local, domain) = n.rsplit_once('@')?;
    let local_ok =
        (1..=64).contains(&local.len()) && local.chars().all(|c| LOCAL_CHARS.contains(c));
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars()
                .all(|c| DIGITS.contains(c) || LOWER.contains(c) || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let domain_ok = domain.len() <= 255 && domain.split('.').all(label_ok);
    (local_ok && domain_ok).then_some(n)
}

/// ASCII strings around the address syntax: noise, near-valid addresses, long ones.
fn ascii_email_like() -> impl Strategy<Value = String> {
    let local = "[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~\\-]{0,66}";
    let label = prop_oneof![
        4 => "[a-zA-Z0-9]([a-zA-Z0-9\\-]{0,8}[a-zA-Z0-9])?",
        1 => "[a-zA-Z0-9\\-_]{0,66}",
        1 => "-?[a-z0-9]{1,4}-?",
    ];
    let domain = proptest::collection::vec(label, 1..=5).prop_map(|labels| labels.join("."));
    prop_oneof![
        "[a-zA-Z0-9.@_+\\- ]{0,40}",
        (" {0,2}", local, "@{1,2}", domain, " {0,2}")
            .prop_map(|(a, l, at, d, b)| format!("{a}{l}{at}{d}{b}")),
        // Simple addresses whose labels may start or end with a hyphen.
        "[a-z0-9]{1,8}@(-?[a-z0-9]{1,5}-?\\.){0,2}[a-z]{2,4}",
        // Around the 64-character limit of the local part.
        "[a-z]{63,65}@example\\.com",
        // 253 to 255 characters, otherwise valid.
        (60usize..=64, 253usize..=255).prop_map(|(n, total)| {
            let last = total - n - 1 - 2 * 63 - 2 - 4;
            format!(
                "{}@{}.{}.{}.com",
                "l".repeat(n),
                "d".repeat(63),
                "d".repeat(63),
                "d".repeat(last)
            )
        }),
        // Around the 254-character limit, otherwise valid.
        ("[a-z]{50,64}", proptest::collection::vec("[a-z]{60,63}", 3))
            .prop_map(|(l, labels)| format!("{l}@{}.co", labels.join("."))),
    ]
}

/// Addresses whose domain is not ASCII (the IDNA path of the validator).
fn unicode_email_like() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z0-9._+\\-]{1,10}",
        "[a-zA-Zéüßǅİ΅ΣЖ日ｅＡ\u{301}\\-]{1,12}",
        "(com|ORG|de)",
    )
        .prop_map(|(local, label, tld)| format!("{local}@{label}.{tld}"))
}

proptest! {
    #![proptest_config(config(256))]

    /// Email::parse never panics on any string, and whatever it accepts is trimmed,
    /// lower-case, at most 254 characters, has an `@`, and parses back to itself.
    #[test]
    fn email_parse_never_panics_and_normalizes_stably(
        raw in prop_oneof![noisy_text(), ascii_email_like(), unicode_email_like()],
    ) {
        if let Ok(email) = Email::parse(&raw) {
            let s = email.as_str();
            prop_assert_eq!(s, trimmed(s), "trimmed");
            prop_assert_eq!(s.to_lowercase(), s, "lower-case");
            prop_assert!(s.chars().count() <= 254);
            prop_assert!(s.contains('@'));
            prop_assert_eq!(Email::parse(s).ok(), Some(email.clone()), "idempotent");
            let (local, domain) = s.rsplit_once('@').expect("an @");
            let first: String = local.chars().take(1).collect();
            prop_assert_eq!(email.masked(), format!("{first}***@{domain}"));
            prop_assert_eq!(format!("{email:?}"), format!("Email({})", email.masked()));
        }
    }

    /// On ASCII input, Email::parse accepts exactly the documented syntax.
    #[test]
    fn email_parse_matches_the_html5_rule_on_ascii(raw in ascii_email_like()) {
        let expected = ascii_email_oracle(&raw);
        let parsed = Email::parse(&raw);
        prop_assert_eq!(
            parsed.as_ref().ok().map(Email::as_str),
            expected.as_deref(),
            "{:?}", raw
        );
    }

    /// ASCII case and surrounding white space never make two accounts.
    #[test]
    fn email_ignores_ascii_case_and_padding(
        raw in ascii_email_like(),
        pad in "[ \\t\u{a0}]{0,3}",
    ) {
        let padded_upper = format!("{pad}{}{pad}", raw.to_ascii_uppercase());
        prop_assert_eq!(Email::parse(&raw).ok(), Email::parse(&padded_upper).ok());
    }
}

// ---------------------------------------------------------------------------------------
// PlainToken, TokenHash, BlindIndex
// ---------------------------------------------------------------------------------------

const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Decodes unpadded base64url by hand; `None` on any other character, a bad length, or
/// non-zero trailing bits (the canonical form only).
fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let values: Vec<u32> = text
        .chars()
        .map(|c| B64URL.find(c).and_then(|i| u32::try_from(i).ok()))
        .collect::<Option<_>>()?;
    if values.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in values {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
        acc &= (1 << bits) - 1;
    }
    (acc == 0).then_some(out)
}

/// Token-shaped strings: real tokens with one character changed, a length off by a few,
/// and padding around.
fn token_like() -> impl Strategy<Value = String> {
    let real = any::<[u8; 32]>().prop_map(|b| PlainToken::from_bytes(&b).expose().to_owned());
    prop_oneof![
        real.clone(),
        (real, 0..43usize, "[A-Za-z0-9_\\-+/=! ]").prop_map(|(t, at, c)| {
            let mut chars: Vec<char> = t.chars().collect();
            chars[at] = c.chars().next().unwrap_or('A');
            chars.into_iter().collect()
        }),
        "[A-Za-z0-9_\\-]{40,46}",
        ("[ \\t\\n]{0,2}", "[A-Za-z0-9_\\-]{43}", "[ \\t\\n]{0,2}")
            .prop_map(|(a, t, b)| format!("{a}{t}{b}")),
        noisy_text(),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// A fresh token is 43 base64url characters that decode to its bytes; presenting it
    /// gives the same hash, which is SHA-256 of its text.
    #[test]
    fn plain_token_round_trips(bytes in any::<[u8; 32]>()) {
        let token = PlainToken::from_bytes(&bytes);
        let text = token.expose();
        prop_assert_eq!(text.len(), 43);
        prop_assert_eq!(b64url_decode(text), Some(bytes.to_vec()));
        let again = PlainToken::presented(text).expect("our own shape");
        prop_assert_eq!(again.expose(), text);
        prop_assert_eq!(again.hash(), token.hash());
        let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        prop_assert_eq!(token.hash().0, digest);
        prop_assert_eq!(format!("{token:?}"), "PlainToken(***)");
    }

    /// Different bytes give different tokens and different hashes.
    #[test]
    fn plain_tokens_of_different_bytes_differ(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
        prop_assume!(a != b);
        let (ta, tb) = (PlainToken::from_bytes(&a), PlainToken::from_bytes(&b));
        prop_assert_ne!(ta.expose(), tb.expose());
        prop_assert_ne!(ta.hash(), tb.hash());
    }

    /// PlainToken::presented accepts exactly the (trimmed) canonical base64url of 32
    /// bytes, never panics, and keeps the trimmed text.
    #[test]
    fn plain_token_presented_accepts_exactly_our_shape(raw in token_like()) {
        let t = trimmed(&raw);
        let expected = b64url_decode(t).is_some_and(|b| b.len() == 32);
        match PlainToken::presented(&raw) {
            Ok(token) => {
                prop_assert!(expected, "accepted {raw:?}");
                prop_assert_eq!(token.expose(), t);
                prop_assert_eq!(PlainToken::presented(token.expose()).ok().map(|p| p.hash()),
                    Some(token.hash()), "idempotent");
            }
            Err(_) => prop_assert!(!expected, "refused {raw:?}"),
        }
    }

    /// BlindIndex::to_hex: two lower-case hex digits per byte, decoding back to the bytes.
    #[test]
    fn blind_index_hex_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let hex = BlindIndex(bytes.clone()).to_hex();
        prop_assert_eq!(hex.len(), 2 * bytes.len());
        prop_assert!(hex.chars().all(|c| "0123456789abcdef".contains(c)));
        let back: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        prop_assert_eq!(back, bytes);
    }
}

// ---------------------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// An id's text parses back to it, in either case; the text is the canonical
    /// hyphenated lower-case form.
    #[test]
    fn ids_round_trip_through_text(n in any::<u128>()) {
        let user = UserId(Uuid::from_u128(n));
        let text = user.to_string();
        prop_assert_eq!(text.len(), 36);
        prop_assert!(text.chars().all(|c| c == '-' || "0123456789abcdef".contains(c)));
        prop_assert_eq!(UserId::parse(&text), Ok(user));
        prop_assert_eq!(UserId::parse(&text.to_uppercase()), Ok(user));
        let session = SessionId(Uuid::from_u128(n));
        prop_assert_eq!(SessionId::parse(&session.to_string()), Ok(session));
    }

    /// Id parsing never panics, and what it accepts prints to a form that parses to it.
    #[test]
    fn id_parse_never_panics(raw in prop_oneof![noisy_text(), "[0-9a-fA-F\\-{}]{30,40}"]) {
        if let Ok(id) = SessionId::parse(&raw) {
            prop_assert_eq!(SessionId::parse(&id.to_string()), Ok(id));
        }
    }
}

// ---------------------------------------------------------------------------------------
// GCRA rate limit
// ---------------------------------------------------------------------------------------

/// A limit whose arithmetic in whole milliseconds is exact enough to keep the documented
/// burst: `limit² <= window_ms` (true of every limit up to 244 a minute, the defaults
/// included). Beyond that, see `gcra_a_limit_of_249_a_minute_allows_a_burst_of_249`.
fn small_limit() -> impl Strategy<Value = RateLimit> {
    (1i64..=3600)
        .prop_flat_map(|secs| {
            let window_ms = secs * 1000;
            let max_limit = (1..).take_while(|l| l * l <= window_ms).last().unwrap_or(1);
            (Just(secs), 1..=max_limit)
        })
        .prop_map(|(secs, limit)| RateLimit {
            name: "prop",
            limit: u32::try_from(limit).expect("small"),
            window: TimeDelta::seconds(secs),
        })
}

/// A limit whose window is a whole number of intervals (`window / limit` exact in ms).
fn exact_limit() -> impl Strategy<Value = RateLimit> {
    (1u32..=60, 1i64..=60_000).prop_map(|(limit, interval_ms)| RateLimit {
        name: "prop",
        limit,
        window: ms(interval_ms * i64::from(limit)),
    })
}

/// Any stored state near `now`: none, in the past, or up to two windows ahead.
fn stored_tat(policy: RateLimit) -> impl Strategy<Value = Option<Timestamp>> {
    let w = policy.window.num_milliseconds();
    prop_oneof![
        Just(None),
        (-w..=2 * w).prop_map(|off| Some(t0() + ms(off))),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// From a fresh key, requests at one instant: exactly `limit` are allowed, `remaining`
    /// counts down to 0, and every later one is refused.
    #[test]
    fn gcra_burst_is_exactly_the_limit(policy in small_limit(), extra in 1u32..=3) {
        let limit = policy.limit;
        let mut tat = None;
        let mut allowed = 0u32;
        for i in 0..limit + extra {
            let (next, d) = gcra(policy, tat, t0());
            if d.allowed {
                allowed += 1;
                prop_assert_eq!(Some(d.remaining), limit.checked_sub(i + 1), "remaining counts down");
                prop_assert_eq!(d.retry_after_secs, 0);
            }
            prop_assert!(d.remaining < limit, "remaining {} of {limit}", d.remaining);
            prop_assert!(d.reset_after_secs <= u64::try_from(policy.window.num_seconds()).expect("positive"));
            tat = Some(next);
        }
        prop_assert_eq!(allowed, limit);
    }

    /// A refused request changes nothing: the stored state comes back as it was, and the
    /// same request again gets the same answer. `Retry-After` is at least 1 s and enough.
    #[test]
    fn gcra_a_refused_hit_changes_nothing(
        (policy, tat) in small_limit().prop_flat_map(|p| (Just(p), stored_tat(p))),
        later_ms in 0i64..=5_000,
    ) {
        let now = t0() + ms(later_ms);
        let (next, d) = gcra(policy, tat, now);
        if d.allowed {
            let base = tat.filter(|t| *t > now).unwrap_or(now);
            prop_assert!(next > base, "an allowed hit moves the state forward");
            prop_assert!(next - now <= policy.window, "by at most one window ahead");
        } else {
            prop_assert_eq!(Some(next), tat, "state unchanged");
            prop_assert_eq!(gcra(policy, tat, now), (next, d), "same answer again");
            prop_assert_eq!(d.remaining, 0);
            prop_assert!(d.retry_after_secs >= 1);
            let retry = TimeDelta::seconds(i64::try_from(d.retry_after_secs).expect("small"));
            prop_assert!(gcra(policy, tat, now + retry).1.allowed, "Retry-After is enough");
        }
    }

    /// Over any run of requests from a fresh key, the number allowed in the first `D`
    /// milliseconds is at most `limit + D * limit / window` (the burst plus the rate), and a
    /// client that waits `window / limit` between requests is never refused.
    #[test]
    fn gcra_allowed_count_is_bounded_by_the_rate(
        policy in exact_limit(),
        gaps in proptest::collection::vec(0u32..=2_000, 1..200),
    ) {
        let window = policy.window.num_milliseconds();
        let interval = window / i64::from(policy.limit);
        let mut tat = None;
        let mut now = t0();
        let mut allowed = 0i64;
        for gap in gaps {
            // Gaps in thousandths of an interval, up to two intervals.
            now += ms(interval * i64::from(gap) / 1000);
            let (next, d) = gcra(policy, tat, now);
            tat = Some(next);
            if d.allowed {
                allowed += 1;
            }
            let elapsed = (now - t0()).num_milliseconds();
            let bound = i64::from(policy.limit) + elapsed * i64::from(policy.limit) / window;
            prop_assert!(allowed <= bound, "{allowed} allowed within {elapsed} ms, bound {bound}");
        }
    }

    /// A client that keeps to the rate is never refused.
    #[test]
    fn gcra_a_client_keeping_to_the_rate_is_never_refused(
        policy in prop_oneof![small_limit(), exact_limit()],
        slack in proptest::collection::vec(0i64..=10_000, 1..100),
    ) {
        let window = policy.window.num_milliseconds();
        let interval_ceil = (window + i64::from(policy.limit) - 1) / i64::from(policy.limit);
        let mut tat = None;
        let mut now = t0();
        for s in slack {
            let (next, d) = gcra(policy, tat, now);
            prop_assert!(d.allowed);
            tat = Some(next);
            now += ms(interval_ceil + s);
        }
    }
}

/// Regression: a real bug found by `gcra_burst_is_exactly_the_limit` when it ran over every
/// limit a minute (`RATE_LIMIT_IP` / `RATE_LIMIT_IDENTIFIER` accept any integer >= 1 and
/// the window is one minute): the interval is `window_ms / limit` rounded down, and the
/// burst was measured against the whole window, so when the remainder reached the quotient
/// one request more got through. 249 a minute gave a burst of 250 (and `remaining` started
/// at 249); 7000 a minute gave 7500. Fixed in `gcra` and the Redis script alike: the burst
/// spans `interval × limit`.
#[test]
fn gcra_a_limit_of_249_a_minute_allows_a_burst_of_249() {
    let policy = RateLimit {
        name: "ip",
        limit: 249,
        window: TimeDelta::minutes(1),
    };
    let mut tat = None;
    let mut allowed = 0;
    let mut first_remaining = None;
    for _ in 0..300 {
        let (next, d) = gcra(policy, tat, t0());
        if d.allowed {
            allowed += 1;
            first_remaining.get_or_insert(d.remaining);
        }
        tat = Some(next);
    }
    assert_eq!(
        first_remaining,
        Some(248),
        "RateLimit r after the first request"
    );
    assert_eq!(allowed, 249, "a burst of the limit, as documented");
}

// ---------------------------------------------------------------------------------------
// Lockout
// ---------------------------------------------------------------------------------------

/// Policies as configuration can make them: whole seconds, a threshold of at least 1.
fn lockout_policy() -> impl Strategy<Value = LockoutPolicy> {
    (
        1u32..=10,
        // Short first locks too, where 16 doublings stay below the cap.
        prop_oneof![1i64..=60, 1i64..=2 * 86_400],
        0i64..=30 * 86_400,
        1i64..=86_400,
        1i64..=7 * 86_400,
    )
        .prop_map(|(threshold, base, extra, window, memory)| LockoutPolicy {
            threshold,
            base_lock: TimeDelta::seconds(base),
            max_lock: TimeDelta::seconds(base + extra),
            failure_window: TimeDelta::seconds(window),
            memory: TimeDelta::seconds(memory),
        })
}

/// [`lockout_policy`] where 16 doublings reach the cap (see
/// `lockout_with_a_one_second_base_reaches_the_24_hour_cap` for the others).
fn capped_lockout_policy() -> impl Strategy<Value = LockoutPolicy> {
    lockout_policy().prop_map(|p| LockoutPolicy {
        max_lock: p.max_lock.min(p.base_lock * 65_536),
        ..p
    })
}

/// Lock time at a level, computed without shifts that can overflow:
/// `min(base * 2^(level - 1), max)`.
fn lock_oracle(policy: &LockoutPolicy, level: u32) -> i128 {
    let base = i128::from(policy.base_lock.num_milliseconds());
    let max = i128::from(policy.max_lock.num_milliseconds());
    let mut d = base;
    for _ in 1..level {
        d = (d * 2).min(max);
    }
    d.min(max)
}

/// A model of the documented lockout, in milliseconds.
#[derive(Debug, Default, Clone, Copy)]
struct LockModel {
    failures: u32,
    last_failure: Option<i64>,
    level: u32,
    locked_until: Option<i64>,
}

impl LockModel {
    fn fail(&mut self, p: &LockoutPolicy, t: i64) {
        if self
            .last_failure
            .is_none_or(|l| t - l > p.failure_window.num_milliseconds())
        {
            self.failures = 0;
        }
        if self
            .locked_until
            .is_none_or(|u| t - u > p.memory.num_milliseconds())
        {
            self.level = 0;
        }
        self.failures += 1;
        self.last_failure = Some(t);
        if self.failures >= p.threshold {
            self.level += 1;
            let d = i64::try_from(lock_oracle(p, self.level)).expect("fits");
            self.locked_until = Some(t + d);
            self.failures = 0;
        }
    }
}

fn millis_of(t: Timestamp) -> i64 {
    (t - t0()).num_milliseconds()
}

#[derive(Debug, Clone)]
enum Attempt {
    /// A failure after this many milliseconds.
    Failure(i64),
    /// A success after this many milliseconds.
    Success(i64),
}

/// Attempts spaced from nothing to a few days apart, mostly failures, with gaps right at
/// the policy's boundaries (the failure window; a lock's end plus the memory).
fn attempts(p: &LockoutPolicy) -> impl Strategy<Value = Vec<Attempt>> + use<> {
    let window = p.failure_window.num_milliseconds();
    let forget_base = (p.base_lock + p.memory).num_milliseconds();
    let forget_max = (p.max_lock + p.memory).num_milliseconds();
    let gap = prop_oneof![
        3 => 0i64..=60_000,
        2 => 0i64..=3_600_000,
        1 => 0i64..=3 * 86_400_000,
        2 => prop::sample::select(vec![
            window,
            window + 1,
            forget_base,
            forget_base + 1,
            forget_max,
            forget_max + 1,
        ]),
    ];
    let attempt = prop_oneof![
        6 => gap.clone().prop_map(Attempt::Failure),
        1 => gap.prop_map(Attempt::Success),
    ];
    proptest::collection::vec(attempt, 0..40)
}

proptest! {
    #![proptest_config(config(256))]

    /// Lock times: level 1 is the base (capped), each level doubles the one before up to
    /// the cap, they never decrease and never exceed the cap.
    #[test]
    fn lockout_durations_double_up_to_the_cap(policy in lockout_policy()) {
        let mut previous = TimeDelta::zero();
        for level in 1..=40u32 {
            let d = policy.lock_duration(level);
            prop_assert!(d >= previous, "level {level}: {d} < {previous}");
            prop_assert!(d <= policy.max_lock);
            // Up to level 17 for every policy; beyond, where 16 doublings reach the cap
            // (see `lockout_with_a_one_second_base_reaches_the_24_hour_cap`).
            if level <= 17 || policy.max_lock <= policy.base_lock * 65_536 {
                prop_assert_eq!(i128::from(d.num_milliseconds()), lock_oracle(&policy, level),
                    "level {}", level);
            }
            previous = d;
        }
        prop_assert_eq!(policy.lock_duration(1), policy.base_lock.min(policy.max_lock));
    }

    /// Any run of failures and successes matches the model of the documented rule: counts
    /// up, locks exactly at the threshold-th failure within the window (for the lock time
    /// of `lock_oracle`), escalates while a past lock is remembered, and a success only
    /// forgets the failures.
    #[test]
    fn lockout_follows_the_documented_rule(
        (policy, run) in capped_lockout_policy().prop_flat_map(|p| (Just(p), attempts(&p))),
    ) {
        let mut state = AttemptState::default();
        let mut model = LockModel::default();
        let mut now = t0();
        for attempt in run {
            match attempt {
                Attempt::Failure(gap) => {
                    now += ms(gap);
                    let before = state;
                    state = policy.after_failure(state, now);
                    model.fail(&policy, millis_of(now));
                    if model.failures == 0 {
                        // The threshold-th failure: a lock from now, for the level's time.
                        prop_assert!(state.level >= 1);
                        let d = i64::try_from(lock_oracle(&policy, state.level)).expect("fits");
                        prop_assert_eq!(state.locked_at(now), Some(now + ms(d)));
                    } else {
                        prop_assert_eq!(state.locked_until, before.locked_until, "no lock below the threshold");
                        prop_assert!((1..policy.threshold).contains(&state.failures));
                    }
                }
                Attempt::Success(gap) => {
                    now += ms(gap);
                    let before = state;
                    state = policy.after_success(state);
                    model.failures = 0;
                    model.last_failure = None;
                    prop_assert_eq!(state.failures, 0);
                    prop_assert_eq!(state.last_failure, None);
                    prop_assert_eq!(state.level, before.level, "the level is kept");
                    prop_assert_eq!(state.locked_until, before.locked_until, "a lock is kept");
                }
            }
            prop_assert_eq!(state.failures, model.failures);
            prop_assert_eq!(state.last_failure.map(millis_of), model.last_failure);
            prop_assert_eq!(state.level, model.level);
            prop_assert_eq!(state.locked_until.map(millis_of), model.locked_until);
        }
    }

    /// From a clean key, `threshold - 1` failures close together never lock and the next
    /// one locks for the first lock time exactly.
    #[test]
    fn lockout_locks_at_the_threshold_not_before(
        policy in lockout_policy(),
        gaps in proptest::collection::vec(0i64..=1_000_000, 10),
    ) {
        let mut state = AttemptState::default();
        let mut now = t0();
        let window = policy.failure_window.num_milliseconds();
        for i in 0..policy.threshold {
            now += ms(gaps[i as usize] % (window + 1));
            state = policy.after_failure(state, now);
            if i + 1 < policy.threshold {
                prop_assert_eq!(state.locked_at(now), None, "failure {} of {}", i + 1, policy.threshold);
                prop_assert_eq!(state.failures, i + 1);
            }
        }
        prop_assert_eq!(state.locked_at(now), Some(now + policy.base_lock.min(policy.max_lock)));
        prop_assert_eq!(state.level, 1);
    }

    /// A success clears the failures: the threshold counts again from zero.
    #[test]
    fn lockout_success_resets_the_count(policy in lockout_policy(), before in 0u32..10) {
        let mut state = AttemptState::default();
        for _ in 0..before.min(policy.threshold.saturating_sub(1)) {
            state = policy.after_failure(state, t0());
        }
        state = policy.after_success(state);
        for i in 1..policy.threshold {
            state = policy.after_failure(state, t0());
            prop_assert_eq!(state.locked_at(t0()), None, "failure {} after a success", i);
        }
    }

    /// Keeping a state for `retention` is enough: a failure after it behaves as on a
    /// clean key (the counter may drop the state then).
    #[test]
    fn lockout_retention_keeps_everything_that_matters(
        (policy, run) in lockout_policy().prop_flat_map(|p| (Just(p), attempts(&p))),
        after in 0i64..=86_400_000,
    ) {
        let mut state = AttemptState::default();
        let mut now = t0();
        for attempt in run {
            match attempt {
                Attempt::Failure(gap) => {
                    now += ms(gap);
                    state = policy.after_failure(state, now);
                }
                Attempt::Success(gap) => {
                    now += ms(gap);
                    state = policy.after_success(state);
                }
            }
        }
        now += ms(after % 10_000);
        let retention = policy.retention(&state, now);
        prop_assert!(retention >= policy.failure_window.max(TimeDelta::seconds(1)));
        if let Some(until) = state.locked_until {
            prop_assert!(now + retention >= until + policy.memory);
        }
        let later = now + retention + ms(1);
        let kept = policy.after_failure(state, later);
        let fresh = policy.after_failure(AttemptState::default(), later);
        prop_assert_eq!(kept.failures, fresh.failures);
        prop_assert_eq!(kept.level, fresh.level);
        prop_assert_eq!(kept.last_failure, fresh.last_failure);
        prop_assert_eq!(kept.locked_at(later), fresh.locked_at(later));
    }
}

/// Regression: found by `lockout_durations_double_up_to_the_cap` when it checked every
/// level: `lock_duration` stopped doubling after 16 doublings (an overflow guard), so with
/// `LOCKOUT_DURATION=1` the lock stayed at 65 536 s (18.2 h) from level 17 on instead of
/// reaching the documented 24 h cap. Fixed in `lock_duration` and the Redis script alike.
#[test]
fn lockout_with_a_one_second_base_reaches_the_24_hour_cap() {
    let policy = LockoutPolicy {
        base_lock: TimeDelta::seconds(1),
        ..LockoutPolicy::default()
    };
    assert_eq!(policy.lock_duration(18), TimeDelta::hours(24));
}

// ---------------------------------------------------------------------------------------
// Outbox backoff
// ---------------------------------------------------------------------------------------

/// Policies as configuration can make them: a first delay of whole seconds, at most the
/// longest delay (up to 30 days).
fn outbox_policy() -> impl Strategy<Value = OutboxPolicy> {
    (1i64..=86_400, 0i64..=30 * 86_400).prop_map(|(first, extra)| OutboxPolicy {
        first_retry: TimeDelta::seconds(first),
        max_retry: TimeDelta::seconds(first + extra),
        ..OutboxPolicy::default()
    })
}

fn backoff_oracle(policy: &OutboxPolicy, attempts: u32) -> i128 {
    let first = i128::from(policy.first_retry.num_milliseconds());
    let max = i128::from(policy.max_retry.num_milliseconds());
    let mut d = first;
    for _ in 1..attempts.max(1) {
        d = (d * 2).min(max);
    }
    d.min(max)
}

fn jitter() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0f64..=1.0,
        1 => Just(0.0),
        1 => Just(1.0),
        1 => -10.0f64..10.0,
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// The delay is `first * 2^(attempts - 1)` up to the longest, never decreasing, always
    /// within [first, longest].
    #[test]
    fn outbox_backoff_doubles_up_to_the_longest(policy in outbox_policy(), attempts in 0u32..200) {
        let d = policy.backoff(attempts);
        prop_assert_eq!(i128::from(d.num_milliseconds()), backoff_oracle(&policy, attempts));
        prop_assert!(d >= policy.first_retry && d <= policy.max_retry);
        prop_assert!(policy.backoff(attempts + 1) >= d, "non-decreasing");
    }

    /// With jitter, the delay is between half and all of the backoff (to the ms), grows
    /// with the jitter and the attempts, and jitter outside [0, 1] counts as its bound.
    #[test]
    fn outbox_jitter_stays_between_half_and_all(
        policy in outbox_policy(),
        attempts in 0u32..40,
        j in jitter(),
        k in jitter(),
    ) {
        let full = policy.backoff(attempts).num_milliseconds();
        let d = policy.backoff_with_jitter(attempts, j).num_milliseconds();
        prop_assert!(d >= full / 2 && d <= full, "{d} ms not within [{}, {full}]", full / 2);
        let (lo, hi) = if j <= k { (j, k) } else { (k, j) };
        prop_assert!(
            policy.backoff_with_jitter(attempts, lo) <= policy.backoff_with_jitter(attempts, hi),
            "non-decreasing in jitter"
        );
        prop_assert!(
            policy.backoff_with_jitter(attempts + 1, j) >= policy.backoff_with_jitter(attempts, j),
            "non-decreasing in attempts"
        );
        let clamped = j.clamp(0.0, 1.0);
        prop_assert_eq!(
            policy.backoff_with_jitter(attempts, j),
            policy.backoff_with_jitter(attempts, clamped)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Password strength
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(48))]

    /// The user's own words only help an attacker: a password refused without them is
    /// refused with them; empty inputs are ignored; a password that is one of the user's
    /// own inputs is refused.
    #[test]
    fn password_strength_counts_the_users_words_against_it(
        password in prop_oneof![
            "[a-z]{8,14}",
            "[A-Za-z0-9!_-]{8,24}",
            "[a-z]{4,8}[0-9]{2,4}[A-Z][a-z]{3,6}",
        ],
        inputs in proptest::collection::vec("[a-z0-9@.]{0,12}", 0..3),
    ) {
        let policy = PasswordPolicy::default();
        let p = Password::parse(&password).expect("8 to 128 characters");
        let words: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let without = policy.check(&p, &[]);
        let with = policy.check(&p, &words);
        if without.is_err() {
            prop_assert!(with.is_err(), "refused alone, accepted with {words:?}");
        }
        let mut padded = words.clone();
        padded.push("");
        prop_assert_eq!(policy.check(&p, &padded), with, "empty inputs ignored");
        let mut own = words.clone();
        own.push(&password);
        prop_assert!(policy.check(&p, &own).is_err(), "the user's own word is refused");
        let lenient = PasswordPolicy { min_score: 0 };
        prop_assert!(lenient.check(&p, &own).is_ok(), "score 0 accepts anything");
    }
}
