//! Hex text for memory, contexts, map keys and values.

use anyhow::{Context, Result, bail};

/// Parses hex bytes: whitespace anywhere is ignored, a leading `0x` is allowed ("00 01 ff",
/// "0001ff"). Non-ASCII or odd-length input is an error, never a panic.
pub fn parse(text: &str) -> Result<Vec<u8>> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if !digits.len().is_multiple_of(2) {
        bail!("`{}`: odd number of hex digits", text.trim());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            let pair = digits.get(i..i + 2).with_context(|| format!("`{}` is not hex", text.trim()))?;
            u8::from_str_radix(pair, 16).with_context(|| format!("`{pair}` is not a hex byte"))
        })
        .collect()
}

/// Lower-case hex, two digits per byte, no separators.
pub fn format(bytes: &[u8]) -> String {
    bytes.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_what_it_should_and_refuses_the_rest_without_panicking() {
        assert_eq!(super::parse("00 01 ff").unwrap(), [0, 1, 255]);
        assert_eq!(super::parse("0x0001ff").unwrap(), [0, 1, 255]);
        assert!(super::parse("abc").is_err());
        assert!(super::parse("éé").is_err());
        assert!(super::parse("zz").is_err());
        assert_eq!(super::format(&[0, 0xab]), "00ab");
    }
}
