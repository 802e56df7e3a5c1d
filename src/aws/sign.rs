//! SigV4 signatures for the gateway's own requests to AWS, by `aws-sigv4`: the
//! caller gives the method, URL, headers and body; this gives back the headers to
//! add (`authorization`, `x-amz-date`, and `x-amz-security-token` with temporary
//! credentials). Unit-tested below against AWS's documented example.

use std::time::SystemTime;

use aws_sigv4::http_request::{sign as sigv4, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use super::Credentials;

/// The headers that sign a request to `service` in `region` at `time`.
/// `headers` are those that will be sent (at least `host`).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    creds: &Credentials,
    region: &str,
    service: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, String> {
    let identity = aws_credential_types::Credentials::new(
        creds.access_key.clone(),
        creds.secret.clone(),
        creds.session_token.clone(),
        None,
        "turnpike",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("cannot sign a request to {url}: {e}"))?;
    let (instructions, _) = sigv4(request, &params)
        .map_err(|e| format!("cannot sign a request to {url}: {e}"))?
        .into_parts();
    let (headers, _) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn signs_like_the_aws_documentation_example() {
        // AWS's SigV4 test suite "get-vanilla": GET / on example.amazonaws.com,
        // 2015-08-30T12:36:00Z, service "service", region us-east-1.
        let creds = Credentials {
            access_key: "AKIDEXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            source: "test".into(),
        };
        let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let h = sign(
            &creds,
            "us-east-1",
            "service",
            "GET",
            "https://example.amazonaws.com/",
            &[("host", "example.amazonaws.com")],
            b"",
            t,
        )
        .unwrap();
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            get("authorization"),
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
        assert_eq!(get("x-amz-security-token"), None);
    }

    #[test]
    fn temporary_credentials_send_their_token() {
        let creds = Credentials {
            access_key: "ASIAEXAMPLE".into(),
            secret: "s".into(),
            session_token: Some("session".into()),
            source: "test".into(),
        };
        let h = sign(
            &creds,
            "us-east-1",
            "lambda",
            "POST",
            "http://127.0.0.1:9001/2015-03-31/functions/f/invocations",
            &[("host", "127.0.0.1:9001")],
            b"{}",
            SystemTime::now(),
        )
        .unwrap();
        assert!(h
            .iter()
            .any(|(k, v)| *k == "x-amz-security-token" && v == "session"));
    }
}
