//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`,
//! RequestResponse) as bytes: the signed request, and what an answer means
//! (a result, a function error, throttling, or the service refusing). Unit-tested
//! below; end to end against a SigV4-checking Invoke endpoint in
//! `tests/authorizers.rs`.

pub mod event;
pub mod response;

use std::time::SystemTime;

use super::Service;
use crate::upstream::call::Reply;

/// The whole HTTP/1.1 request invoking `function` (a name, an ARN, with or
/// without a qualifier) with `payload`.
pub fn invoke_request(
    svc: &Service,
    function: &str,
    payload: &[u8],
    now: SystemTime,
) -> Result<Vec<u8>, String> {
    let mut path = format!("{}/2015-03-31/functions/", svc.endpoint.path);
    encode_segment(&mut path, function);
    path.push_str("/invocations");
    let length = payload.len().to_string();
    let headers = [
        ("host", svc.endpoint.authority.as_str()),
        ("content-type", "application/json"),
        ("x-amz-invocation-type", "RequestResponse"),
    ];
    let signed = super::sign::sign(
        &svc.credentials.load(),
        &svc.keys,
        &svc.region,
        svc.name,
        "POST",
        &path,
        "",
        &headers,
        payload,
        now,
    );
    let mut out = Vec::with_capacity(512 + payload.len());
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let length = [("content-length", length.as_str())];
    for (n, v) in headers
        .iter()
        .chain(length.iter())
        .copied()
        .chain(signed.iter().map(|(n, v)| (*n, v.as_str())))
    {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    Ok(out)
}

/// Percent-encodes a path segment (everything but RFC 3986's unreserved bytes),
/// as the AWS SDKs encode `FunctionName`.
pub fn encode_segment(out: &mut String, s: &str) {
    super::sign::uri_encode(out, s, false);
}

/// What an Invoke answer means.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<'r> {
    /// The function returned this payload.
    Result(&'r [u8]),
    /// The function failed (`X-Amz-Function-Error`): its `errorMessage`, if any.
    FunctionError(Option<String>),
    /// Lambda throttled the invocation (429).
    Throttled,
    /// Lambda refused: status and its error type (`x-amzn-errortype`).
    Refused(u16, String),
}

pub fn outcome(reply: &Reply) -> Outcome<'_> {
    if reply.status == 429 {
        return Outcome::Throttled;
    }
    if !(200..300).contains(&reply.status) {
        let kind = reply
            .header("x-amzn-errortype")
            .map(|v| {
                String::from_utf8_lossy(v)
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default();
        return Outcome::Refused(reply.status, kind);
    }
    if reply.header("x-amz-function-error").is_some() {
        let message = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| {
                v.get("errorMessage")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            });
        return Outcome::FunctionError(message);
    }
    Outcome::Result(&reply.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Credentials;
    use crate::upstream::call::Endpoint;

    fn service() -> Service {
        Service::new(
            "lambda",
            "us-east-1".into(),
            Endpoint {
                addr: "127.0.0.1:9001".parse().unwrap(),
                authority: "127.0.0.1:9001".into(),
                tls: None,
                path: String::new(),
            },
            Credentials {
                access_key: "AKIDEXAMPLE".into(),
                secret: "secret".into(),
                session_token: None,
                source: "test".into(),
                expires: None,
            },
        )
    }

    #[test]
    fn the_function_name_is_one_encoded_segment() {
        let req = invoke_request(
            &service(),
            "arn:aws:lambda:us-east-1:123456789012:function:authz:live",
            b"{}",
            SystemTime::now(),
        )
        .unwrap();
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("POST /2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aauthz%3Alive/invocations HTTP/1.1\r\n"), "{text}");
        assert!(
            text.contains("\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{text}"
        );
        assert!(text.contains("\r\ncontent-length: 2\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }

    #[test]
    fn answers_read_as_lambda_means_them() {
        let reply = |status, headers: Vec<(&str, &str)>, body: &str| Reply {
            status,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: body.as_bytes().to_vec(),
        };
        let ok = reply(200, vec![], r#"{"isAuthorized":true}"#);
        assert_eq!(outcome(&ok), Outcome::Result(br#"{"isAuthorized":true}"#));
        let err = reply(
            200,
            vec![("x-amz-function-error", "Unhandled")],
            r#"{"errorMessage":"Unauthorized","errorType":"Error"}"#,
        );
        assert_eq!(
            outcome(&err),
            Outcome::FunctionError(Some("Unauthorized".into()))
        );
        assert_eq!(outcome(&reply(429, vec![], "")), Outcome::Throttled);
        let refused = reply(
            403,
            vec![("x-amzn-errortype", "AccessDeniedException:http://internal")],
            "{}",
        );
        assert_eq!(
            outcome(&refused),
            Outcome::Refused(403, "AccessDeniedException".into())
        );
    }
}
