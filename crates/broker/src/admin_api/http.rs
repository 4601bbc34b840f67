//! The sliver of HTTP/1.1 the admin API needs: parse a request head with `httparse`
//! under fixed limits, and write a response. Pure functions over bytes, so malformed,
//! oversized and unsupported requests are unit-tested without sockets.

use std::fmt::Write;

/// Largest request head (request line and headers) accepted.
pub(crate) const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most headers accepted in one request.
pub(crate) const MAX_HEADERS: usize = 32;
/// Largest request body accepted (the API takes none; small bodies are read and
/// ignored so a keep-alive connection stays in step).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request the server answers with an error status and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpError {
    pub(crate) status: u16,
    pub(crate) message: String,
}

impl HttpError {
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The JSON body: `{"message": "...", "code": N}` (Redpanda's error shape).
    pub(crate) fn body(&self) -> String {
        serde_json::json!({ "message": self.message, "code": self.status }).to_string()
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) method: String,
    /// The path without the query string.
    pub(crate) path: String,
    /// Whether the connection may serve another request after this one.
    pub(crate) keep_alive: bool,
    /// Bytes of body that follow the head.
    pub(crate) content_length: usize,
}

/// What the buffered bytes hold so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole head, `len` bytes long.
    Complete { head: Head, len: usize },
    /// More bytes are needed.
    Partial,
}

/// Parses the head at the start of `buf`.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Parsed, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_HEAD_BYTES {
                Err(HttpError::new(431, "request head too large"))
            } else {
                Ok(Parsed::Partial)
            };
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpError::new(
                431,
                format!("more than {MAX_HEADERS} headers"),
            ));
        }
        Err(error) => return Err(HttpError::new(400, format!("malformed request: {error}"))),
    };
    if len > MAX_HEAD_BYTES {
        return Err(HttpError::new(431, "request head too large"));
    }
    let method = request.method.unwrap_or_default().to_owned();
    let target = request.path.unwrap_or_default();
    if !target.starts_with('/') {
        return Err(HttpError::new(
            400,
            "request target must be an absolute path",
        ));
    }
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    // HTTP/1.1 keeps the connection by default, HTTP/1.0 closes it.
    let mut keep_alive = request.version == Some(1);
    let mut content_length = 0usize;
    for header in request.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or_default().trim();
        if header.name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        } else if header.name.eq_ignore_ascii_case("content-length") {
            content_length = value
                .parse()
                .map_err(|_| HttpError::new(400, "invalid Content-Length"))?;
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::new(
                411,
                "chunked request bodies are not accepted",
            ));
        }
    }
    if content_length > MAX_BODY_BYTES {
        return Err(HttpError::new(413, "request body too large"));
    }
    Ok(Parsed::Complete {
        head: Head {
            method,
            path,
            keep_alive,
            content_length,
        },
        len,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A response ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
    /// Extra header lines (`Allow: GET`).
    pub(crate) headers: Vec<(&'static str, String)>,
}

/// Content-Type of JSON bodies.
pub(crate) const JSON: &str = "application/json";

impl Response {
    pub(crate) fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: JSON,
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn error(error: &HttpError) -> Self {
        let mut response = Self {
            status: error.status,
            content_type: JSON,
            body: error.body(),
            headers: Vec::new(),
        };
        if error.status == 405 {
            response.headers.push(("Allow", "GET".to_owned()));
        }
        response
    }

    /// The bytes on the wire.
    pub(crate) fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let mut head = String::new();
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" },
        );
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Head, usize) {
        match parse_head(buf).unwrap() {
            Parsed::Complete { head, len } => (head, len),
            Parsed::Partial => panic!("partial"),
        }
    }

    #[test]
    fn parses_a_get_and_strips_the_query() {
        let req = b"GET /v1/partitions?x=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /next";
        let (head, len) = complete(req);
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/v1/partitions");
        assert!(head.keep_alive);
        assert_eq!(head.content_length, 0);
        assert_eq!(&req[len..], b"GET /next");
    }

    #[test]
    fn connection_header_and_version_decide_keep_alive() {
        let (head, _) = complete(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(!head.keep_alive);
        let (head, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
        assert!(!head.keep_alive);
        let (head, _) = complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(head.keep_alive);
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert_eq!(parse_head(b"GET /v1/brokers HT").unwrap(), Parsed::Partial);
        assert_eq!(parse_head(b"").unwrap(), Parsed::Partial);
    }

    #[test]
    fn malformed_requests_are_400() {
        for bad in [
            &b"\x00\x01\x02\x03 garbage\r\n\r\n"[..],
            b"GET /\x7f HTTP/1.1\r\n\r\n",
            b"GET / HTTP/9.9\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET http://host/ HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        ] {
            let error = parse_head(bad).unwrap_err();
            assert_eq!(error.status, 400, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn oversized_heads_and_bodies_are_refused() {
        let mut long = b"GET /".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
        assert_eq!(parse_head(&long).unwrap_err().status, 431);
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend(format!("X-{i}: v\r\n").bytes());
        }
        many.extend(b"\r\n");
        assert_eq!(parse_head(&many).unwrap_err().status, 431);
        let big = format!(
            "GET / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(parse_head(big.as_bytes()).unwrap_err().status, 413);
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_head(chunked).unwrap_err().status, 411);
    }

    #[test]
    fn errors_are_json_with_message_and_code() {
        let response = Response::error(&HttpError::new(405, "method POST not allowed"));
        let text = String::from_utf8(response.to_bytes(false)).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text.contains("\r\nAllow: GET\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["code"], 405);
        assert_eq!(json["message"], "method POST not allowed");
        assert!(text.contains(&format!("Content-Length: {}\r\n", body.len())));
    }
}
