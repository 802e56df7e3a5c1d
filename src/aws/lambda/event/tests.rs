use super::*;
use serde_json::json;

fn request<'a>(vars: &'a [(String, String)]) -> Request<'a> {
    Request {
        method: "POST",
        path: "/v1/orders/7",
        api_path: "/orders/7",
        query: "a=1&a=2&b=x%20y",
        headers: vec![
            ("Host", "api.example.com"),
            ("X-Thing", "one"),
            ("x-thing", "two"),
            ("Cookie", "s=1; t=2"),
            ("User-Agent", "curl/8"),
            ("Content-Type", "application/json"),
        ],
        route_key: "POST /orders/{id}",
        resource: "/orders/{id}",
        path_params: vec![("id", "7".to_string())],
        stage: "prod",
        api: "shop",
        account: "000000000000",
        stage_variables: vars,
        source_ip: "127.0.0.1",
        request_id: "rid",
        host: "api.example.com",
        time_ms: 1_764_604_800_000,
        protocol: "HTTP/1.1",
        method_arn: "arn",
    }
}

fn extra(body: &[u8], base64: bool) -> Extra<'_> {
    Extra {
        body,
        base64,
        authorized: Authorized::None,
        api_key: None,
    }
}

#[test]
fn v1_has_multi_values_and_nulls_for_absent_parts() {
    let e: Value = serde_json::from_slice(&proxy_event(
        Payload::V1,
        &request(&[]),
        &extra(b"{\"x\":1}", false),
    ))
    .unwrap();
    assert_eq!(e["path"], "/orders/7");
    assert_eq!(e["requestContext"]["path"], "/v1/orders/7");
    assert_eq!(e["queryStringParameters"]["a"], "2", "the last value");
    assert_eq!(e["multiValueQueryStringParameters"]["a"], json!(["1", "2"]));
    assert_eq!(e["multiValueHeaders"]["X-Thing"], json!(["one"]));
    assert_eq!(e["stageVariables"], Value::Null);
    assert_eq!(e["body"], "{\"x\":1}");
    assert_eq!(e["isBase64Encoded"], false);
    assert_eq!(e["requestContext"]["identity"]["apiKey"], Value::Null);
}

#[test]
fn v2_joins_repeats_and_splits_cookies() {
    let vars = vec![("alias".to_string(), "live".to_string())];
    let e: Value = serde_json::from_slice(&proxy_event(
        Payload::V2,
        &request(&vars),
        &extra(b"\x00\xff", true),
    ))
    .unwrap();
    assert_eq!(e["headers"]["x-thing"], "one,two");
    assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
    assert_eq!(e["queryStringParameters"]["a"], "1,2");
    assert_eq!(e["body"], "AP8=");
    assert_eq!(e["isBase64Encoded"], true);
    assert_eq!(e["stageVariables"]["alias"], "live");
    assert!(e.get("multiValueHeaders").is_none());
}

#[test]
fn lambda_authorizer_context_is_flat_in_v1_and_nested_in_v2() {
    let ctx: Map<String, Value> = serde_json::from_str(r#"{"principalId":"u","n":3}"#).unwrap();
    let mut x = extra(b"", false);
    x.authorized = Authorized::Lambda(&ctx);
    let e: Value = serde_json::from_slice(&proxy_event(Payload::V1, &request(&[]), &x)).unwrap();
    assert_eq!(
        e["requestContext"]["authorizer"],
        json!({"principalId": "u", "n": "3"})
    );
    let e: Value = serde_json::from_slice(&proxy_event(Payload::V2, &request(&[]), &x)).unwrap();
    assert_eq!(e["requestContext"]["authorizer"]["lambda"]["n"], 3);
}

#[test]
fn text_and_binary_media_types() {
    assert!(v2_is_text(Some("application/json; charset=utf-8")));
    assert!(v2_is_text(Some("text/csv")));
    assert!(!v2_is_text(Some("application/x-www-form-urlencoded")));
    assert!(!v2_is_text(None));
    let types = vec![
        "image/*".to_string(),
        "application/octet-stream".to_string(),
    ];
    assert!(is_binary(&types, Some("image/png")));
    assert!(is_binary(&types, Some("application/octet-stream")));
    assert!(!is_binary(&types, Some("text/plain")));
    assert!(is_binary(&["*/*".to_string()], Some("text/plain")));
}
