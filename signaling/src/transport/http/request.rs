//! One request's bytes: collected as they arrive, the end of the header found once, and
//! the parsed header's fields read without case.

/// The most headers a request may have; more gets `431`.
pub(super) const MAX_HEADERS: usize = 48;

/// Collects the bytes of one HTTP request and finds where its header ends.
///
/// The search for the end of the header resumes where it stopped, so a client that sends its
/// request a byte at a time costs linear time, not quadratic.
#[derive(Debug, Default)]
pub(crate) struct RequestReader {
    pub(super) buf: Vec<u8>,
    /// Bytes before this offset hold no end of header.
    scanned: usize,
    /// The length of the header, including the blank line that ends it.
    pub(super) header_end: Option<usize>,
}

impl RequestReader {
    /// Appends bytes read from the connection.
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.header_end.is_none() {
            self.header_end = scan_header_end(&self.buf, self.scanned);
            // A line feed at the very end may still start "\n\r\n" or "\n\n".
            self.scanned = self.buf.len().saturating_sub(2);
        }
    }

    /// How many bytes have been collected.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
}

/// Finds the end of an HTTP header (a blank line: `\n\n` or `\n\r\n`) at or after `from`.
fn scan_header_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match (buf.get(i + 1), buf.get(i + 2)) {
                (Some(b'\n'), _) => return Some(i + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// A parsed request header.
pub(super) struct Request<'a> {
    pub(super) method: &'a str,
    pub(super) target: &'a str,
    /// The minor version: `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub(super) version: u8,
    pub(super) headers: &'a [httparse::Header<'a>],
}

impl Request<'_> {
    /// The value of the first header field called `name` (compared without case).
    pub(super) fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// All values of the header fields called `name`.
    pub(super) fn headers<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Whether any comma-separated token in the `name` header fields equals `token`
    /// (compared without case).
    pub(super) fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers(name).any(|value| {
            value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_end_is_found_across_pushes() {
        let mut reader = RequestReader::default();
        for &b in b"GET / HTTP/1.1\r\nHost: x\r\n\r" {
            reader.push(&[b]);
            assert_eq!(reader.header_end, None);
        }
        reader.push(b"\nextra");
        assert_eq!(reader.header_end, Some(27));
        let mut lf = RequestReader::default();
        lf.push(b"GET / HTTP/1.1\nHost: x\n");
        lf.push(b"\n");
        assert_eq!(lf.header_end, Some(24));
    }
}
