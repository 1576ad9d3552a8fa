//! Test support: near-misses of real JSON texts, for the proptests that hold the fast
//! scanners to serde (`openai::fast_chunk`, the whole-answer decoder).

use proptest::prelude::*;

/// One of `bases` with up to three characters of `alphabet` inserted, removed or replaced.
pub(crate) fn near_miss(
    bases: &'static [&'static str],
    alphabet: &'static [char],
) -> impl Strategy<Value = String> {
    let edit = (
        any::<prop::sample::Index>(),
        0..3u8,
        prop::sample::select(alphabet),
    );
    (
        prop::sample::select(bases),
        prop::collection::vec(edit, 0..4),
    )
        .prop_map(|(base, edits)| {
            let mut chars: Vec<char> = base.chars().collect();
            for (at, op, c) in edits {
                let i = at.index(chars.len() + 1);
                match op {
                    0 => chars.insert(i, c),
                    1 if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ if i < chars.len() => chars[i] = c,
                    _ => chars.push(c),
                }
            }
            chars.into_iter().collect()
        })
}

/// The characters the JSON near-misses are made of: structure, digits, the letters of
/// `null`, whitespace, escapes, control bytes and multi-byte UTF-8.
pub(crate) const JSON_ALPHABET: &[char] = &[
    '{', '}', '[', ']', '"', ':', ',', '0', '1', '9', 'n', 'u', 'l', 'x', ' ', '\\', '\n', '\t',
    '\u{1}', '\u{7f}', 'é', '🦀',
];
