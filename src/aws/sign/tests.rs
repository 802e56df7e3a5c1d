use super::*;
use std::time::Duration;

fn creds(token: Option<&str>) -> Credentials {
    Credentials {
        access_key: "AKIDEXAMPLE".into(),
        secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: token.map(str::to_string),
        source: "test".into(),
        expires: None,
    }
}

fn get<'a>(h: &'a [(&str, String)], n: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str())
}

#[test]
fn signs_like_the_aws_documentation_example() {
    // AWS's SigV4 test suite "get-vanilla": GET / on example.amazonaws.com,
    // 2015-08-30T12:36:00Z, service "service", region us-east-1.
    let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    let cache = KeyCache::default();
    for _ in 0..2 {
        // twice: the second signature uses the cached key
        let h = sign(
            &creds(None),
            &cache,
            "us-east-1",
            "service",
            "GET",
            "/",
            "",
            &[("host", "example.amazonaws.com")],
            b"",
            t,
        );
        assert_eq!(get(&h, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            get(&h, "authorization"),
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
    }
}

/// The signature `aws-sigv4` (AWS's own Rust signer) gives the same request.
fn reference(
    c: &Credentials,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    t: SystemTime,
) -> String {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let identity = aws_credential_types::Credentials::new(
        c.access_key.clone(),
        c.secret.clone(),
        c.session_token.clone(),
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("lambda")
        .time(t)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let req = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(req, &params).unwrap().into_parts();
    let (headers, _) = instructions.into_parts();
    headers
        .into_iter()
        .find(|h| h.name() == "authorization")
        .map(|h| h.value().to_string())
        .unwrap()
}

#[test]
fn agrees_with_aws_sigv4_on_requests_like_the_gateways() {
    let t = UNIX_EPOCH + Duration::from_secs(1_764_604_800);
    let body = br#"{"version":"2.0","rawPath":"/a b"}"#;
    let path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aauthz%3Alive/invocations";
    for token in [None, Some("session-token")] {
        for query in ["", "Qualifier=live", "b=2&a=1&a=0&empty=&sp=a%20b"] {
            let c = creds(token);
            let headers = [
                ("host", "127.0.0.1:9001"),
                ("content-type", "application/json"),
                ("x-amz-invocation-type", "RequestResponse"),
            ];
            let ours = sign(
                &c,
                &KeyCache::default(),
                "us-east-1",
                "lambda",
                "POST",
                path,
                query,
                &headers,
                body,
                t,
            );
            let url = if query.is_empty() {
                format!("http://127.0.0.1:9001{path}")
            } else {
                format!("http://127.0.0.1:9001{path}?{query}")
            };
            assert_eq!(
                get(&ours, "authorization").unwrap(),
                reference(&c, "POST", &url, &headers, body, t),
                "token {token:?}, query {query:?}"
            );
            assert_eq!(get(&ours, "x-amz-security-token"), token);
        }
    }
}

#[test]
fn a_new_day_or_new_credentials_derive_a_new_key() {
    let cache = KeyCache::default();
    let t = UNIX_EPOCH + Duration::from_secs(1_764_604_800);
    let h = [("host", "h")];
    let a = sign(
        &creds(None),
        &cache,
        "us-east-1",
        "lambda",
        "GET",
        "/",
        "",
        &h,
        b"",
        t,
    );
    let next_day = t + Duration::from_secs(86_400);
    let b = sign(
        &creds(None),
        &cache,
        "us-east-1",
        "lambda",
        "GET",
        "/",
        "",
        &h,
        b"",
        next_day,
    );
    let mut rotated = creds(None);
    rotated.access_key = "AKIDROTATED".into();
    rotated.secret = "other".into();
    let c = sign(
        &rotated,
        &cache,
        "us-east-1",
        "lambda",
        "GET",
        "/",
        "",
        &h,
        b"",
        next_day,
    );
    let fresh = sign(
        &rotated,
        &KeyCache::default(),
        "us-east-1",
        "lambda",
        "GET",
        "/",
        "",
        &h,
        b"",
        next_day,
    );
    assert_ne!(get(&a, "authorization"), get(&b, "authorization"));
    assert_eq!(
        get(&c, "authorization"),
        get(&fresh, "authorization"),
        "the cached key follows the credentials"
    );
}

#[test]
fn canonical_parts() {
    let (block, names) = canonical_headers(&[
        ("Host", "h"),
        ("X-B", "  two   words "),
        ("x-a", "1"),
        ("X-A", "2"),
    ]);
    assert_eq!(block, "host:h\nx-a:1,2\nx-b:two words\n");
    assert_eq!(names, "host;x-a;x-b");
    assert_eq!(canonical_query("b=2&a=1&a=0&c"), "a=0&a=1&b=2&c=");
}
