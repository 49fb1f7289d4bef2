//! `findAll(source, needles)`: every position of every needle in a source
//! text, for SES's source checks (our patch to `ses/src/transforms.js`,
//! `js/patches/ses+2.3.0.patch`): they look for their patterns' literal
//! anchors (`import`, `eval`, `<!--`, `-->`) before running the patterns.
//!
//! Why native: QuickJS's `String.prototype.indexOf` is a plain loop, ~1 ms
//! per anchor over a 300 KB vat bundle, 8 % of launching a vat (perf of
//! `ocap bench launch-100`); `memchr`'s `memmem` takes a few microseconds.

/// The positions, in UTF-16 code units (JavaScript string indices), ascending,
/// of every occurrence of every needle in `source`; overlapping occurrences
/// count. Empty needles are skipped.
pub(crate) fn find_all(source: &str, needles: &[String]) -> Vec<u32> {
    let mut bytes: Vec<usize> = Vec::new();
    for needle in needles.iter().filter(|n| !n.is_empty()) {
        bytes.extend(memchr::memmem::find_iter(source.as_bytes(), needle.as_bytes()));
    }
    bytes.sort_unstable();
    bytes.dedup();
    if source.is_ascii() {
        return bytes.into_iter().map(|b| b as u32).collect();
    }
    // Byte offsets to UTF-16 indices: one walk over the text up to the last one.
    let mut out = Vec::with_capacity(bytes.len());
    let (mut byte, mut unit) = (0usize, 0u32);
    let mut chars = source.char_indices().peekable();
    for target in bytes {
        while byte < target {
            match chars.next() {
                Some((at, ch)) => {
                    byte = at + ch.len_utf8();
                    unit += ch.len_utf16() as u32;
                }
                None => break,
            }
        }
        out.push(unit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::find_all;

    fn needles(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn positions_are_utf16_indices_in_order_across_needles() {
        assert_eq!(find_all("a import(eval) import", &needles(&["import", "eval"])), vec![2, 9, 15]);
        // é is one UTF-16 unit (two UTF-8 bytes); 😀 is two units (four bytes).
        assert_eq!(find_all("é😀import", &needles(&["import"])), vec![3]);
        assert_eq!(find_all("<!-->", &needles(&["<!--", "-->"])), vec![0, 2]);
        assert_eq!(find_all("nothing here", &needles(&["eval", ""])), Vec::<u32>::new());
    }
}
