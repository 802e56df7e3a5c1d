use super::*;
use crate::aws::{sign, Credentials};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn creds() -> Credentials {
    Credentials {
        access_key: "AKIDEXAMPLE".into(),
        secret: SECRET.into(),
        session_token: None,
        source: "test".into(),
        expires: None,
    }
}

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_764_604_800)
}

/// A request signed by `aws::sign` (checked against aws-sigv4): its headers.
fn signed(
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    at: SystemTime,
) -> Vec<(String, String)> {
    let headers = [
        ("host", "api.example.com"),
        ("content-type", "application/json"),
    ];
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    for (n, v) in sign::sign(
        &creds(),
        &KeyCache::default(),
        "us-east-1",
        "execute-api",
        method,
        path,
        query,
        &headers,
        body,
        at,
    ) {
        out.push((n.to_string(), v));
    }
    out
}

fn check(
    headers: &[(String, String)],
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    now: SystemTime,
) -> Result<(), Refusal> {
    let lookup = |n: &str| {
        let v: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .collect();
        (!v.is_empty()).then(|| v.join(","))
    };
    let auth = lookup("authorization").ok_or(Refusal::Missing)?;
    let p = from_header(&auth)?;
    let hash = sha256_hex(body);
    let req = Request {
        method,
        path,
        query,
        header: &lookup,
        payload_hash: &hash,
    };
    verify(&p, &req, SECRET, &KeyCache::default(), "us-east-1", now)
}

#[test]
fn a_signed_request_verifies_and_every_tampered_part_does_not() {
    let path = "/prod/orders/a%2Fb/caf%C3%A9";
    let query = "b=2&a=1&a=0&empty=&sp=a%20b&plus=%2B";
    let h = signed("POST", path, query, b"{\"x\":1}", t0());
    assert_eq!(check(&h, "POST", path, query, b"{\"x\":1}", t0()), Ok(()));
    // a minute later still inside the window
    assert_eq!(
        check(
            &h,
            "POST",
            path,
            query,
            b"{\"x\":1}",
            t0() + Duration::from_secs(60)
        ),
        Ok(())
    );
    let mismatch = |r: Result<(), Refusal>| matches!(r, Err(Refusal::Mismatch { .. }));
    assert!(
        mismatch(check(&h, "PUT", path, query, b"{\"x\":1}", t0())),
        "method"
    );
    assert!(
        mismatch(check(
            &h,
            "POST",
            "/prod/orders/a%2Fb/other",
            query,
            b"{\"x\":1}",
            t0()
        )),
        "path"
    );
    assert!(
        mismatch(check(
            &h,
            "POST",
            path,
            "b=3&a=1&a=0&empty=&sp=a%20b&plus=%2B",
            b"{\"x\":1}",
            t0()
        )),
        "query"
    );
    assert!(
        mismatch(check(&h, "POST", path, query, b"{\"x\":2}", t0())),
        "body"
    );
    let mut tampered = h.clone();
    tampered[1].1 = "text/plain".into(); // a signed header
    assert!(
        mismatch(check(&tampered, "POST", path, query, b"{\"x\":1}", t0())),
        "header"
    );
}

#[test]
fn the_clock_window_and_scope_are_aws_s() {
    let h = signed("GET", "/prod/x", "", b"", t0());
    let late = t0() + Duration::from_secs(301);
    match check(&h, "GET", "/prod/x", "", b"", late) {
        Err(Refusal::Expired(m)) => assert_eq!(m, "Signature expired: 20251201T160000Z is now earlier than 20251201T160001Z (20251201T160501Z - 5 min.)"),
        other => panic!("{other:?}"),
    }
    let early = t0() - Duration::from_secs(301);
    assert!(
        matches!(check(&h, "GET", "/prod/x", "", b"", early), Err(Refusal::Expired(m)) if m.starts_with("Signature not yet current"))
    );
    // another region or service in the scope
    let other = |region: &str, service: &str| {
        let headers = [("host", "h")];
        let mut all: Vec<(String, String)> = vec![("host".into(), "h".into())];
        for (n, v) in sign::sign(
            &creds(),
            &KeyCache::default(),
            region,
            service,
            "GET",
            "/",
            "",
            &headers,
            b"",
            t0(),
        ) {
            all.push((n.to_string(), v));
        }
        check(&all, "GET", "/", "", b"", t0())
    };
    assert!(
        matches!(other("eu-west-1", "execute-api"), Err(Refusal::Scope(m)) if m.contains("not 'eu-west-1'"))
    );
    assert!(
        matches!(other("us-east-1", "s3"), Err(Refusal::Scope(m)) if m.contains("'execute-api'"))
    );
}

#[test]
fn malformed_signatures_are_incomplete() {
    assert!(matches!(
        from_header("Basic abc"),
        Err(Refusal::Incomplete(_))
    ));
    assert!(
        matches!(from_header("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab"), Err(Refusal::Incomplete(m)) if m.contains("'Credential'"))
    );
    assert!(matches!(
        from_header("AWS4-HMAC-SHA256 Credential=AKID/2025/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00"),
        Err(Refusal::Incomplete(_))
    ));
    let ok = format!("AWS4-HMAC-SHA256 Credential=AKID/20251201/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature={}", "a".repeat(64));
    let p = from_header(&ok).unwrap();
    assert_eq!(
        (p.access_key, p.date, p.region, p.service),
        ("AKID", "20251201", "us-east-1", "execute-api")
    );
}

#[test]
fn presigned_queries_verify_until_they_expire() {
    // build a presigned query the way SigV4QueryAuth does: the X-Amz-* parameters,
    // then the signature of the canonical request over them (UNSIGNED-PAYLOAD)
    let (stamp, date) = sign::amz_date(t0());
    let base = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F{date}%2Fus-east-1%2Fexecute-api%2Faws4_request&X-Amz-Date={stamp}&X-Amz-Expires=60&X-Amz-SignedHeaders=host&q=1"
    );
    let canonical = format!(
        "GET\n/prod/x\n{}\nhost:api.example.com\n\nhost\nUNSIGNED-PAYLOAD",
        canonical_query(&base)
    );
    let sts = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{date}/us-east-1/execute-api/aws4_request\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let sig = hex(&hmac(
        &sign::signing_key(SECRET, &date, "us-east-1", "execute-api"),
        sts.as_bytes(),
    ));
    let query = format!("{base}&X-Amz-Signature={sig}");
    let p = from_query(&query).unwrap().unwrap();
    let lookup = |n: &str| (n == "host").then(|| "api.example.com".to_string());
    let req = Request {
        method: "GET",
        path: "/prod/x",
        query: &query,
        header: &lookup,
        payload_hash: "UNSIGNED-PAYLOAD",
    };
    assert_eq!(
        verify(
            &p,
            &req,
            SECRET,
            &KeyCache::default(),
            "us-east-1",
            t0() + Duration::from_secs(30)
        ),
        Ok(())
    );
    assert!(matches!(
        verify(
            &p,
            &req,
            SECRET,
            &KeyCache::default(),
            "us-east-1",
            t0() + Duration::from_secs(61)
        ),
        Err(Refusal::Expired(_))
    ));
    assert!(from_query("a=1&b=2").is_none());
}

#[test]
fn refusals_carry_aws_s_types_and_messages() {
    assert_eq!(Refusal::Missing.message(), "Missing Authentication Token");
    assert_eq!(
        Refusal::Missing.error_type(),
        "MissingAuthenticationTokenException"
    );
    assert_eq!(
        Refusal::UnknownKey.message(),
        "The security token included in the request is invalid."
    );
    let m = Refusal::Mismatch {
        canonical: "C".into(),
        string_to_sign: "S".into(),
    };
    assert_eq!(m.error_type(), "InvalidSignatureException");
    assert!(m.message().starts_with(
        "The request signature we calculated does not match the signature you provided."
    ));
}
