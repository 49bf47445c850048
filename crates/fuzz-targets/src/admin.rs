//! The admin port's HTTP request head parser, which faces anyone who can reach that port before
//! the bearer token is checked.

/// Parses `data` as a request head (everything before the blank line).
pub fn admin_http(data: &[u8]) {
    conclave_server::http::fuzz_parse_head(data);
}

pub(crate) fn seeds() -> Vec<Vec<u8>> {
    vec![
        b"GET /status?verbose=1 HTTP/1.1\r\nHost: 127.0.0.1:7300\r\nAuthorization: Bearer s3cret"
            .to_vec(),
        b"POST /members HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 27".to_vec(),
    ]
}
