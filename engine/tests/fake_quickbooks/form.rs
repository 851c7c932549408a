//! `application/x-www-form-urlencoded`, both ways: URL query strings and the token endpoint's
//! form body are decoded here (axum's `Form` is not among the workspace's features), and the
//! authorize endpoint's redirect is encoded here.

/// The name–value pairs of a query string or form body, decoded (`+` is a space, `%XX` a byte).
pub(crate) fn parse(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// The first value of `name` among `pairs`.
pub(crate) fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// `text` with every byte outside RFC 3986's unreserved set written `%XX`.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex));
        match (b, escaped) {
            (b'+', _) => out.push(b' '),
            (b'%', (Some(high), Some(low))) => {
                out.push(high * 16 + low);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_it_encodes() {
        let text = "select * from Invoice where MetaData.LastUpdatedTime >= '2026-01-01T00:00:00+01:00'";
        let pairs = parse(&format!("query={}&minorversion=75&flag", encode(text)));
        assert_eq!(get(&pairs, "query"), Some(text));
        assert_eq!(get(&pairs, "minorversion"), Some("75"));
        assert_eq!(get(&pairs, "flag"), Some(""));
        assert_eq!(parse("a=b+c%2")[0].1, "b c%2", "a broken escape stays as it is");
    }
}
