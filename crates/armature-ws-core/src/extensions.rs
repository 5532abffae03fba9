//! The `Sec-WebSocket-Extensions` header (RFC 6455 §9.1): a comma-separated list of
//! extensions, each a token with `;`-separated parameters whose values are tokens or quoted
//! strings.
//!
//! ```
//! use armature_ws_core::extensions::parse;
//!
//! let offers = parse("permessage-deflate; client_max_window_bits, permessage-deflate; x=\"10\"");
//! assert_eq!(offers.len(), 2);
//! assert_eq!(offers[0].name, "permessage-deflate");
//! assert_eq!(offers[0].params, [("client_max_window_bits".to_owned(), None)]);
//! assert_eq!(offers[1].params, [("x".to_owned(), Some("10".to_owned()))]);
//! ```

/// One element of an extension list: its name and its parameters, in the order sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The extension token, as sent.
    pub name: String,
    /// The parameters: name, and the value (a quoted string is unquoted) if one was given.
    pub params: Vec<(String, Option<String>)>,
}

impl Extension {
    /// One element, or `None` if it breaks the grammar.
    fn parse(element: &str) -> Option<Extension> {
        let mut parts = split_outside_quotes(element, b';').into_iter();
        let name = parts.next()?.trim();
        if !is_token(name) {
            return None;
        }
        let mut params = Vec::new();
        for part in parts {
            let part = part.trim();
            let (key, value) = match part.split_once('=') {
                None => (part, None),
                Some((key, value)) => (key.trim_end(), Some(parse_value(value.trim_start())?)),
            };
            if !is_token(key) {
                return None;
            }
            params.push((key.to_owned(), value));
        }
        Some(Extension {
            name: name.to_owned(),
            params,
        })
    }
}

/// The elements of an extension list, in order. Elements that break the grammar (a
/// parameter that is not a token, an unterminated quoted string, …) are left out: nothing in
/// them can be accepted. Empty elements (`a,,b`) are skipped, as RFC 7230 §7 asks.
pub fn parse(header: &str) -> Vec<Extension> {
    split_outside_quotes(header, b',')
        .into_iter()
        .map(str::trim)
        .filter(|element| !element.is_empty())
        .filter_map(Extension::parse)
        .collect()
}

/// `value` as a token or an unquoted quoted-string (RFC 7230 §3.2.6), or `None`.
fn parse_value(value: &str) -> Option<String> {
    if let Some(inner) = value.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    } else if is_token(value) {
        Some(value.to_owned())
    } else {
        None
    }
}

/// RFC 7230 §3.2.6: `token = 1*tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `s` cut at every `sep` that is not inside a quoted string.
fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if b == sep && !quoted => {
                parts.push(s.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(s.get(start..).unwrap_or_default());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, value: Option<&str>) -> (String, Option<String>) {
        (name.to_owned(), value.map(str::to_owned))
    }

    /// RFC 7692 §5.1's example offers, and Chromium's.
    #[test]
    fn rfc7692_offers() {
        let offers = parse(
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
             permessage-deflate; client_max_window_bits",
        );
        assert_eq!(offers.len(), 2);
        assert_eq!(
            offers[0].params,
            [
                p("client_max_window_bits", None),
                p("server_max_window_bits", Some("10"))
            ]
        );
        assert_eq!(offers[1].params, [p("client_max_window_bits", None)]);
        let chromium = parse("permessage-deflate; client_max_window_bits");
        assert_eq!(chromium[0].name, "permessage-deflate");
    }

    #[test]
    fn quoted_values_are_unquoted_and_may_hold_separators() {
        let offers = parse(r#"x; a="1,2;3"; b="q\"d", y"#);
        assert_eq!(offers.len(), 2);
        assert_eq!(
            offers[0].params,
            [p("a", Some("1,2;3")), p("b", Some("q\"d"))]
        );
        assert_eq!(offers[1].name, "y");
    }

    #[test]
    fn whitespace_and_empty_elements() {
        let offers = parse(" , a ;b = 1 ;  c ,, ");
        assert_eq!(offers.len(), 1);
        assert_eq!(offers[0].params, [p("b", Some("1")), p("c", None)]);
    }

    #[test]
    fn elements_breaking_the_grammar_are_left_out() {
        for bad in [
            "a; =1", "a; b=", "a; b=\"1", "a b", "a; b c", "\"a\"", "a; b=1=2",
        ] {
            assert_eq!(parse(bad), [], "{bad}");
        }
        let offers = parse("a; b=\"1, c");
        assert!(offers.is_empty(), "unterminated quote swallows the rest");
        assert_eq!(parse("bad b, good").len(), 1);
    }
}
