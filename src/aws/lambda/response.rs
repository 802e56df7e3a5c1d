//! A Lambda proxy function's answer → the client's response (DESIGN §9.2):
//! payload 1.0 (`statusCode`, `headers`, `multiValueHeaders`, `body`,
//! `isBase64Encoded`; anything else is malformed, as AWS's REST validation has it)
//! and 2.0 (the same plus `cookies`, and the shortcut: valid JSON without a
//! `statusCode` is a 200 `application/json` body). The answer is another process's
//! output: header names and values that HTTP cannot carry are dropped, framing
//! headers are the gateway's own. Unit-tested below.

use base64::Engine;
use serde_json::Value;

use crate::auth::authorizer::Payload;

/// The response to send.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProxyResponse {
    pub status: u16,
    /// Lower-case names; one entry per line to send (`set-cookie` from `cookies`
    /// included).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ProxyResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a function's answer; `decode_base64(content_type)` says whether a body
/// marked `isBase64Encoded` is decoded (2.0 always; 1.0 only for binary media types).
pub fn parse(
    payload: Payload,
    answer: &[u8],
    decode_base64: impl Fn(Option<&str>) -> bool,
) -> Result<ProxyResponse, String> {
    let v: Value = serde_json::from_slice(answer).map_err(|e| format!("not JSON: {e}"))?;
    let obj = match (&v, payload) {
        (Value::Object(o), _) if o.contains_key("statusCode") => o,
        (Value::Object(o), Payload::V1) if !o.is_empty() => o,
        (_, Payload::V2) => return Ok(shortcut(&v, answer)),
        _ => return Err("a 1.0 answer is an object with statusCode, headers and body".into()),
    };
    const KEYS_V1: [&str; 5] = [
        "statusCode",
        "headers",
        "multiValueHeaders",
        "body",
        "isBase64Encoded",
    ];
    if let Some(k) = obj.keys().find(|k| {
        !(KEYS_V1.contains(&k.as_str()) || (payload == Payload::V2 && k.as_str() == "cookies"))
    }) {
        return Err(format!("unknown key `{k}` in the answer"));
    }
    let status = match obj.get("statusCode") {
        None => 200,
        Some(Value::Number(n)) => n.as_u64().ok_or("statusCode is not a status")?,
        Some(Value::String(s)) => s.trim().parse().map_err(|_| "statusCode is not a status")?,
        Some(_) => return Err("statusCode is not a status".into()),
    };
    if !(100..=599).contains(&status) {
        return Err(format!("statusCode {status} is not a status"));
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(m) = obj.get("multiValueHeaders").filter(|v| !v.is_null()) {
        let m = m.as_object().ok_or("multiValueHeaders is not an object")?;
        for (k, list) in m {
            let list = list
                .as_array()
                .ok_or("a multiValueHeaders value is not a list")?;
            for item in list {
                add(
                    &mut headers,
                    k,
                    scalar(item).ok_or("a header value is not a string")?,
                );
            }
        }
    }
    if let Some(m) = obj.get("headers").filter(|v| !v.is_null()) {
        let m = m.as_object().ok_or("headers is not an object")?;
        for (k, v) in m {
            let v = scalar(v).ok_or("a header value is not a string")?;
            // the same pair in both: once
            if !headers
                .iter()
                .any(|(n, x)| n.eq_ignore_ascii_case(k) && *x == v)
            {
                add(&mut headers, k, v);
            }
        }
    }
    if let Some(c) = obj.get("cookies").filter(|v| !v.is_null()) {
        let c = c.as_array().ok_or("cookies is not a list")?;
        for cookie in c {
            add(
                &mut headers,
                "set-cookie",
                cookie
                    .as_str()
                    .ok_or("a cookie is not a string")?
                    .to_string(),
            );
        }
    }
    let text = match obj.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("body is not a string".into()),
    };
    let encoded = match obj.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("isBase64Encoded is not a boolean".into()),
    };
    if !headers.iter().any(|(n, _)| n == "content-type") {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let body = if encoded
        && decode_base64(
            headers
                .iter()
                .find(|(n, _)| n == "content-type")
                .map(|(_, v)| v.as_str()),
        ) {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| "isBase64Encoded, but the body is not base64")?
    } else {
        text.into_bytes()
    };
    Ok(ProxyResponse {
        status: status as u16,
        headers,
        body,
    })
}

/// 2.0's reading of JSON without a `statusCode`: a 200 whose body is the answer (a
/// JSON string's text, else the JSON as returned).
fn shortcut(v: &Value, raw: &[u8]) -> ProxyResponse {
    let body = match v {
        Value::String(s) => s.clone().into_bytes(),
        _ => raw.to_vec(),
    };
    ProxyResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Adds a header line the client may get: a token name that is not the gateway's
/// to set, a value without control characters.
fn add(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    let name = name.to_ascii_lowercase();
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let framing = matches!(
        name.as_str(),
        "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "upgrade"
            | "te"
            | "trailer"
            | "proxy-connection"
    );
    let clean = value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    if token && !framing && clean {
        headers.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(s: &str) -> Result<ProxyResponse, String> {
        parse(Payload::V1, s.as_bytes(), |_| true)
    }

    #[test]
    fn v1_answers_read_as_aws_validates_them() {
        let r = v1(r#"{"statusCode":200}"#).unwrap();
        assert_eq!((r.status, r.body.len()), (200, 0));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let r = v1(r#"{"statusCode":200,"headers":{"test-header":"value","header-bool":true}}"#)
            .unwrap();
        assert_eq!(r.header("header-bool"), Some("true"));
        assert_eq!(
            v1(r#"{"statusCode":200,"headers":null}"#).unwrap().status,
            200
        );
        assert_eq!(
            v1(r#"{"headers":{"test-header":"value"}}"#).unwrap().status,
            200
        );
        assert_eq!(v1(r#"{"statusCode":"201"}"#).unwrap().status, 201);
        for bad in [
            r#"{"statusCode":"test"}"#,
            r#"{"statusCode":200,"wrongValue":"value"}"#,
            r#"{}"#,
            r#""justAString""#,
            r#"{"statusCode":200,"multiValueHeaders":{"x":"value1"}}"#,
            r#"{"statusCode":200,"cookies":["a=b"]}"#,
            r#"{"statusCode":99}"#,
            r#"{"statusCode":200,"body":{"x":1}}"#,
        ] {
            assert!(v1(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_and_multi_value_headers_merge() {
        let r = v1(r#"{"statusCode":200,"multiValueHeaders":{"Set-Cookie":["a=1","b=2"],"x":["same"]},"headers":{"x":"same","y":"z"}}"#).unwrap();
        let cookies: Vec<_> = r
            .headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .collect();
        assert_eq!(cookies.len(), 2);
        assert_eq!(r.headers.iter().filter(|(n, _)| n == "x").count(), 1);
        assert_eq!(r.header("y"), Some("z"));
    }

    #[test]
    fn v2_structured_answers_and_the_shortcut() {
        let r = parse(Payload::V2, br#"{"statusCode":201,"cookies":["a=1","b=2"],"body":"aGk=","isBase64Encoded":true,"headers":{"content-type":"text/plain"}}"#, |_| true).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"hi"[..]));
        assert_eq!(
            r.headers.iter().filter(|(n, _)| n == "set-cookie").count(),
            2
        );
        let r = parse(Payload::V2, br#"{"message": "Hello"}"#, |_| true).unwrap();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &br#"{"message": "Hello"}"#[..])
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        let r = parse(Payload::V2, br#""Hello from Lambda!""#, |_| true).unwrap();
        assert_eq!(r.body, b"Hello from Lambda!");
        assert!(parse(Payload::V2, b"not json", |_| true).is_err());
    }

    #[test]
    fn headers_http_cannot_carry_are_dropped() {
        let r = v1(r#"{"statusCode":200,"headers":{"x-ok":"1","bad name":"2","x-inject":"a\r\nset-cookie: evil","content-length":"99","Transfer-Encoding":"chunked"}}"#).unwrap();
        let names: Vec<_> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-ok", "content-type"]);
    }

    #[test]
    fn base64_bodies_decode_only_when_asked() {
        let r = parse(
            Payload::V1,
            br#"{"statusCode":200,"body":"dGVzdC1kYXRh","isBase64Encoded":true}"#,
            |_| false,
        )
        .unwrap();
        assert_eq!(
            r.body, b"dGVzdC1kYXRh",
            "no binary media type: sent as it is (AWS)"
        );
        assert!(parse(
            Payload::V1,
            br#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#,
            |_| true
        )
        .is_err());
    }
}
