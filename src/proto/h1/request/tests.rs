use super::*;

fn parse(raw: &[u8]) -> Result<Option<usize>, HeadError> {
    let mut h = RequestHead::default();
    parse_request(raw, 8192, &mut h)
}

fn head(raw: &[u8]) -> RequestHead {
    let mut h = RequestHead::default();
    parse_request(raw, 8192, &mut h).unwrap().unwrap();
    h
}

#[test]
fn parses_a_simple_get() {
    let h = head(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: Example.com:8080\r\nX-Id: 7\r\n\r\n");
    assert_eq!(h.method(), b"GET");
    assert_eq!(h.path(), "/a/b");
    assert_eq!(h.query(), Some(&b"x=1&y=2"[..]));
    assert_eq!(h.host(), b"Example.com");
    assert_eq!(h.header(b"x-id"), Some(&b"7"[..]));
    assert!(h.keep_alive);
    assert_eq!(h.body, BodyFraming::Empty);
}

#[test]
fn partial_heads_wait_for_more() {
    assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
}

#[test]
fn http10_closes_unless_keep_alive() {
    assert!(!head(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
    assert!(head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    assert!(!head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
}

#[test]
fn body_framing() {
    assert_eq!(
        head(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n").body,
        BodyFraming::Length(12)
    );
    assert_eq!(
        head(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").body,
        BodyFraming::Chunked
    );
    assert!(
        head(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
            .expect_continue
    );
}

#[test]
fn rejects_cl_and_te_together() {
    assert_eq!(parse(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), Err(HeadError::Malformed));
}

#[test]
fn rejects_repeated_or_malformed_content_length() {
    for cl in [
        "Content-Length: 5\r\nContent-Length: 5",
        "Content-Length: 5, 5",
        "Content-Length: -1",
        "Content-Length: +5",
        "Content-Length: 0x5",
        "Content-Length: ",
        "Content-Length: 99999999999999999999",
    ] {
        let raw = format!("POST / HTTP/1.1\r\nHost: a\r\n{cl}\r\n\r\n");
        assert_eq!(parse(raw.as_bytes()), Err(HeadError::Malformed), "{cl}");
    }
}

#[test]
fn rejects_transfer_encodings_other_than_chunked() {
    for te in ["gzip, chunked", "chunked, gzip", "chunkedx", "identity"] {
        let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(parse(raw.as_bytes()), Err(HeadError::Malformed), "{te}");
    }
    assert_eq!(parse(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), Err(HeadError::Malformed));
    assert_eq!(
        parse(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Err(HeadError::Malformed)
    );
}

#[test]
fn rejects_obs_fold() {
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n"),
        Err(HeadError::Malformed)
    );
}

#[test]
fn rejects_whitespace_before_colon() {
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n"),
        Err(HeadError::Malformed)
    );
}

#[test]
fn rejects_bare_cr() {
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"),
        Err(HeadError::Malformed)
    );
}

#[test]
fn rejects_missing_or_duplicate_host_on_http11() {
    assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Err(HeadError::Malformed));
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        Err(HeadError::Malformed)
    );
}

#[test]
fn rejects_absolute_form_and_non_ascii_targets() {
    assert_eq!(
        parse(b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"),
        Err(HeadError::Malformed)
    );
    assert_eq!(
        parse(b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n"),
        Err(HeadError::Malformed)
    );
}

#[test]
fn oversized_heads_are_431() {
    let mut h = RequestHead::default();
    let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n", "a".repeat(10_000));
    assert_eq!(
        parse_request(big.as_bytes(), 8192, &mut h),
        Err(HeadError::TooLarge)
    );
    let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
    let raw = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    assert_eq!(
        parse_request(raw.as_bytes(), 1 << 20, &mut h),
        Err(HeadError::TooLarge)
    );
}

fn from_parts(
    target: &[u8],
    fields: &[(&[u8], &[u8])],
    end: bool,
) -> Result<RequestHead, HeadError> {
    let mut h = RequestHead::default();
    h.from_parts(
        b"POST",
        target,
        b"api.example.com:8443",
        fields.iter().copied(),
        end,
    )?;
    Ok(h)
}

#[test]
fn a_head_from_http2_fields_reads_like_a_parsed_one() {
    let h = from_parts(
        b"/orders/7?full=1",
        &[
            (b"cookie", b"a=1"),
            (b"x-id", b"7"),
            (b"connection", b"close"),
            (b"cookie", b"b=2"),
            (b"content-length", b"5"),
        ],
        false,
    )
    .unwrap();
    assert_eq!(h.method(), b"POST");
    assert_eq!(h.path(), "/orders/7");
    assert_eq!(h.query(), Some(&b"full=1"[..]));
    assert_eq!(h.host(), b"api.example.com");
    assert_eq!(h.host_header(), b"api.example.com:8443");
    assert_eq!(h.header(b"x-id"), Some(&b"7"[..]));
    // cookie fields joined into one (RFC 9113 §8.2.3), connection-specific ones gone
    assert_eq!(h.header(b"cookie"), Some(&b"a=1; b=2"[..]));
    assert_eq!(h.header(b"connection"), None);
    assert_eq!(h.body, BodyFraming::Length(5));
    assert!(h.keep_alive);
    // the same head as text, parsed, says the same
    let text = head(b"POST /orders/7?full=1 HTTP/1.1\r\nhost: api.example.com:8443\r\nx-id: 7\r\ncontent-length: 5\r\ncookie: a=1; b=2\r\n\r\n");
    let fields = |h: &RequestHead| {
        let mut f: Vec<(Vec<u8>, Vec<u8>)> =
            h.headers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        f.sort();
        f
    };
    assert_eq!(fields(&h), fields(&text));
}

#[test]
fn an_http2_body_is_framed_by_its_length_or_chunked() {
    let no_length = from_parts(b"/", &[], false).unwrap();
    assert_eq!(no_length.body, BodyFraming::Chunked);
    let ended = from_parts(b"/", &[(b"content-length", b"9")], true).unwrap();
    assert_eq!(ended.body, BodyFraming::Empty);
    let zero = from_parts(b"/", &[(b"content-length", b"0")], false).unwrap();
    assert_eq!(zero.body, BodyFraming::Empty);
}

#[test]
fn an_http2_head_is_refused_where_a_parsed_one_would_be() {
    for target in [&b"*"[..], b"http://x/", b"/a b", b"/\x7f"] {
        assert_eq!(
            from_parts(target, &[], true).err(),
            Some(HeadError::Malformed),
            "{target:?}"
        );
    }
    let two = from_parts(
        b"/",
        &[(b"content-length", b"1"), (b"content-length", b"1")],
        false,
    );
    assert_eq!(two.err(), Some(HeadError::Malformed));
    let bad = from_parts(b"/", &[(b"content-length", b"+1")], false);
    assert_eq!(bad.err(), Some(HeadError::Malformed));
    let mut h = RequestHead::default();
    assert_eq!(
        h.from_parts(b"GET", b"/", b"", std::iter::empty(), true),
        Err(HeadError::Malformed),
        "no :authority and no host"
    );
}
