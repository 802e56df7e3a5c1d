use super::*;

fn request<'a>(vars: &'a [(String, String)]) -> Request<'a> {
    Request {
        method: "GET",
        path: "/v1/orders/7",
        api_path: "/orders/7",
        query: "tenant=acme&tag=a&tag=b%20c",
        headers: vec![
            ("Host", "api.example.com"),
            ("X-Token", "t-123"),
            ("Accept", "a"),
            ("accept", "b"),
            ("Cookie", "s=1; theme=dark"),
            ("User-Agent", "curl/8"),
        ],
        route_key: "GET /orders/{id}",
        resource: "/orders/{id}",
        path_params: vec![("id", "7".to_string())],
        stage: "prod",
        api: "shop",
        account: "123456789012",
        stage_variables: vars,
        source_ip: "127.0.0.1",
        request_id: "rid-1",
        host: "api.example.com",
        time_ms: 1_764_604_800_123,
        protocol: "HTTP/1.1",
        method_arn: "arn:aws:execute-api:us-east-1:123456789012:shop/prod/GET/orders/7",
    }
}

#[test]
fn identity_sources_are_read_and_all_must_be_present() {
    let vars = vec![("env".to_string(), "blue".to_string())];
    let req = request(&vars);
    let sources = [
        Source::parse("$request.header.X-Token").unwrap(),
        Source::parse("method.request.querystring.tenant").unwrap(),
        Source::parse("$stageVariables.env").unwrap(),
        Source::parse("$context.routeKey").unwrap(),
    ];
    assert_eq!(
        identity_values(&sources, &req).unwrap(),
        ["t-123", "acme", "blue", "GET /orders/{id}"]
    );
    let missing = [
        Source::Header("x-token".into()),
        Source::Query("nope".into()),
    ];
    assert!(identity_values(&missing, &req).is_none());
    assert!(Source::parse("$request.path.id").is_err());
    assert!(Source::parse("$request.header.").is_err());
}

#[test]
fn an_empty_identity_value_counts_as_missing() {
    let mut req = request(&[]);
    req.headers.push(("X-Empty", ""));
    assert!(identity_values(&[Source::Header("x-empty".into())], &req).is_none());
}

#[test]
fn the_v1_request_event_has_rest_fields() {
    let vars = vec![("env".to_string(), "blue".to_string())];
    let req = request(&vars);
    let e = request_event(Payload::V1, &["t-123".into(), "acme".into()], &req);
    assert_eq!(e["type"], "REQUEST");
    assert_eq!(e["methodArn"], req.method_arn);
    assert_eq!(e["identitySource"], "t-123,acme");
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["resource"], "/orders/{id}");
    assert_eq!(e["headers"]["X-Token"], "t-123");
    // repeated headers: the last in `headers`, all in `multiValueHeaders`
    assert_eq!(e["headers"]["accept"], "b");
    assert_eq!(e["multiValueHeaders"]["Accept"], json!(["a"]));
    assert_eq!(e["queryStringParameters"]["tag"], "b c");
    assert_eq!(
        e["multiValueQueryStringParameters"]["tag"],
        json!(["a", "b c"])
    );
    assert_eq!(e["pathParameters"]["id"], "7");
    assert_eq!(e["stageVariables"]["env"], "blue");
    assert_eq!(e["requestContext"]["stage"], "prod");
    assert_eq!(e["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(e["requestContext"]["accountId"], "123456789012");
}

#[test]
fn the_v2_request_event_has_http_api_fields() {
    let req = request(&[]);
    let e = request_event(Payload::V2, &["t-123".into()], &req);
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["routeArn"], req.method_arn);
    assert_eq!(e["identitySource"], json!(["t-123"]));
    assert_eq!(e["rawQueryString"], req.query);
    assert_eq!(e["headers"]["accept"], "a,b");
    assert!(e["headers"].get("cookie").is_none());
    assert_eq!(e["cookies"], json!(["s=1", "theme=dark"]));
    assert_eq!(e["queryStringParameters"]["tag"], "a,b c");
    assert_eq!(e["requestContext"]["http"]["userAgent"], "curl/8");
    assert_eq!(e["requestContext"]["time"], "01/Dec/2025:16:00:00 +0000");
    assert_eq!(e["requestContext"]["timeEpoch"], 1_764_604_800_123u64);
    assert!(e.get("stageVariables").is_none());
}

#[test]
fn the_token_event_is_three_fields() {
    let req = request(&[]);
    let e = token_event("allow", &req);
    assert_eq!(
        e,
        json!({"type": "TOKEN", "authorizationToken": "allow", "methodArn": req.method_arn})
    );
}

#[test]
fn simple_answers_allow_or_forbid_everything() {
    let a = parse_answer(
        Payload::V2,
        Response::Simple,
        br#"{"isAuthorized":true,"context":{"tenant":"acme","n":[1]}}"#,
    )
    .unwrap();
    assert_eq!(a.decide("arn:any"), Decision::Allow);
    assert_eq!(a.context["tenant"], "acme");
    let a = parse_answer(Payload::V2, Response::Simple, br#"{"isAuthorized":false}"#).unwrap();
    assert_eq!(a.decide("arn:any"), Decision::Forbidden);
    assert!(matches!(
        parse_answer(Payload::V2, Response::Simple, br#"{"isAuthorized":"yes"}"#),
        Err(Refusal::Invalid(_))
    ));
}

#[test]
fn one_iam_answer_allows_one_route_and_denies_another() {
    let body = br#"{"principalId":"alice","policyDocument":{"Version":"2012-10-17","Statement":[
        {"Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:*:*:shop/prod/GET/orders/*"},
        {"Action":"execute-api:Invoke","Effect":"Deny","Resource":"arn:aws:execute-api:*:*:shop/prod/DELETE/*"}]},
        "context":{"tier":"gold","n":3,"b":true},"usageIdentifierKey":"key-1"}"#;
    let a = parse_answer(Payload::V1, Response::Iam, body).unwrap();
    assert_eq!(a.principal.as_deref(), Some("alice"));
    assert_eq!(a.usage_key.as_deref(), Some("key-1"));
    assert_eq!(context_text(&a.context["n"]), "3");
    assert_eq!(context_text(&a.context["b"]), "true");
    let arn = |m: &str, p: &str| format!("arn:aws:execute-api:us-east-1:123:shop/prod/{m}/{p}");
    assert_eq!(a.decide(&arn("GET", "orders/7")), Decision::Allow);
    assert_eq!(
        a.decide(&arn("DELETE", "orders/7")),
        Decision::Denied { explicit: true }
    );
    assert_eq!(
        a.decide(&arn("POST", "orders")),
        Decision::Denied { explicit: false }
    );
}

#[test]
fn broken_iam_answers_are_errors_not_allows() {
    for bad in [
        &br#"not json"#[..],
        br#"[]"#,
        br#"{"policyDocument":{"Statement":[]}}"#,
        br#"{"principalId":"","policyDocument":{"Statement":[]}}"#,
        br#"{"principalId":"a"}"#,
        br#"{"principalId":"a","policyDocument":{"Statement":[{"Effect":"Allow"}]}}"#,
        br#"{"principalId":"a","policyDocument":{"Statement":[]},"context":{"o":{"x":1}}}"#,
        br#"{"principalId":"a","policyDocument":{"Statement":[]},"context":{"claims":"x"}}"#,
        br#"{"principalId":"a","policyDocument":{"Statement":[]},"usageIdentifierKey":5}"#,
    ] {
        assert!(
            matches!(
                parse_answer(Payload::V1, Response::Iam, bad),
                Err(Refusal::Invalid(_))
            ),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        parse_answer(Payload::V1, Response::Iam, br#""Unauthorized""#).unwrap_err(),
        Refusal::Unauthorized
    );
}

#[test]
fn query_values_are_percent_decoded() {
    let pairs: Vec<_> = query_pairs("a=1&b=x%2By+z&c&d=%zz&e=%4").collect();
    assert_eq!(
        pairs,
        [
            ("a".to_string(), "1".to_string()),
            ("b".into(), "x+y z".into()),
            ("c".into(), "".into()),
            ("d".into(), "%zz".into()),
            ("e".into(), "%4".into()),
        ]
    );
}
