//! Telling an HTTP request from raw bytes by the first bytes a client sends,
//! so one TCP port can answer `curl` with JSON and `nc` with an echo.

/// Request lines (and the HTTP/2 preface) that mark a connection as HTTP.
const HTTP_STARTS: &[&[u8]] = &[
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PRI * HTTP/2.0",
];

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// An HTTP/1 request line or the HTTP/2 prior-knowledge preface.
    Http,
    /// Anything else.
    Raw,
    /// Too few bytes to tell yet.
    NeedMore,
}

/// Classifies the bytes seen so far.
pub fn sniff(seen: &[u8]) -> Sniffed {
    if seen.is_empty() {
        return Sniffed::NeedMore;
    }
    let mut could_be = false;
    for start in HTTP_STARTS {
        if seen.starts_with(start) {
            return Sniffed::Http;
        }
        if start.starts_with(seen) {
            could_be = true;
        }
    }
    if could_be {
        Sniffed::NeedMore
    } else {
        Sniffed::Raw
    }
}

/// The longest prefix [`sniff`] may need.
pub const SNIFF_LEN: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_first_bytes() {
        let cases: &[(&[u8], Sniffed)] = &[
            (b"", Sniffed::NeedMore),
            (b"G", Sniffed::NeedMore),
            (b"GET", Sniffed::NeedMore),
            (b"GET / HTTP/1.1\r\n", Sniffed::Http),
            (b"DELETE /x", Sniffed::Http),
            (b"PRI * HTTP/2.0\r\n", Sniffed::Http),
            (b"PRI * HT", Sniffed::NeedMore),
            (b"GETX", Sniffed::Raw),
            (b"hello", Sniffed::Raw),
            (b"get / HTTP/1.1", Sniffed::Raw),
            (b"\x16\x03\x01", Sniffed::Raw),
        ];
        for (input, want) in cases {
            assert_eq!(sniff(input), *want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn sniff_len_covers_every_start() {
        assert!(HTTP_STARTS.iter().all(|s| s.len() <= SNIFF_LEN));
    }
}
