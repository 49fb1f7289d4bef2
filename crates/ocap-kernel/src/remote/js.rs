//! The bits of JavaScript string semantics the JS kernel's identity and OCAP URL code rely on,
//! reproduced so the same inputs give the same results here.

/// Whether `c` is whitespace to JavaScript's `String.prototype.trim` and `parseInt` (ECMA-262
/// `WhiteSpace` and `LineTerminator`). Differs from [`char::is_whitespace`]: U+FEFF counts,
/// U+0085 and U+001C–U+001F do not.
pub(crate) fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{a}' | '\u{b}' | '\u{c}' | '\u{d}' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

/// `s.trim()` as JavaScript does it.
pub(crate) fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

/// `parseInt(group, 16)` converted to a byte as a `Uint8Array` element assignment does
/// (`NaN` → 0, otherwise modulo 256), for a string given as UTF-16 code units. `parseInt`
/// skips leading whitespace, takes one optional sign and an optional `0x`/`0X`, then the
/// longest run of hex digits; no digits means `NaN`.
pub(crate) fn parse_int_hex_to_u8(units: &[u16]) -> u8 {
    let unit_is = |i: usize, set: &str| units.get(i).is_some_and(|&u| set.encode_utf16().any(|c| c == u));
    let mut i = 0;
    // Every JS whitespace character is in the BMP, so one code unit each.
    while units.get(i).is_some_and(|&u| char::from_u32(u32::from(u)).is_some_and(is_js_whitespace)) {
        i += 1;
    }
    let negative = unit_is(i, "-");
    if unit_is(i, "+-") {
        i += 1;
    }
    if unit_is(i, "0") && unit_is(i + 1, "xX") {
        i += 2;
    }
    let mut value: i64 = 0;
    let mut digits = 0;
    while let Some(d) = units.get(i).and_then(|&u| char::from_u32(u32::from(u))).and_then(|c| c.to_digit(16)) {
        // Wrapping keeps the low byte right however long the run (callers pass 2 units).
        value = value.wrapping_mul(16).wrapping_add(i64::from(d)) & 0xff;
        digits += 1;
        i += 1;
    }
    if digits == 0 {
        return 0;
    }
    let value = if negative { -value } else { value };
    // ToUint8: modulo 2^8, always non-negative.
    value.rem_euclid(256) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> u8 {
        parse_int_hex_to_u8(&s.encode_utf16().collect::<Vec<_>>())
    }

    #[test]
    fn parse_int_follows_js() {
        // Expected values from node: `new Uint8Array([parseInt(s, 16)])[0]`.
        assert_eq!(p("ff"), 255);
        assert_eq!(p("FF"), 255);
        assert_eq!(p("1g"), 1);
        assert_eq!(p("g1"), 0);
        assert_eq!(p(" 1"), 1);
        assert_eq!(p("-f"), 241);
        assert_eq!(p("-1"), 255);
        assert_eq!(p("+f"), 15);
        assert_eq!(p("0x"), 0);
        assert_eq!(p("0x1f"), 31);
        assert_eq!(p("-0x1"), 255);
        assert_eq!(p(""), 0);
        assert_eq!(p("\u{feff}c"), 12);
        assert_eq!(p("\u{85}d"), 0);
        assert_eq!(p("fff"), 255);
    }

    #[test]
    fn trim_follows_js() {
        assert_eq!(js_trim("  \u{feff}ko1\t\n\u{3000}"), "ko1");
        assert_eq!(js_trim("\u{85}ko1"), "\u{85}ko1");
    }
}
