//! Mapping templates end to end (DESIGN §10, issue 18): non-proxy `http`, `mock` and
//! custom `lambda` integrations with AWS's documented templates and outputs. A
//! SOAP-style upstream (`tests/xml_upstream.py`) parses the XML a template made with
//! Python's ElementTree; the Lambda host (`tests/lambda_host.py`) runs AWS's
//! calculator tutorial function and checks every SigV4 signature with botocore.

mod common;

use std::net::SocketAddr;

use common::*;

struct Up {
    _server: common::python::Server,
    addr: SocketAddr,
}

fn xml_upstream() -> Up {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/xml_upstream.py");
    let server = common::python::Server::start(&[], &[script]);
    Up {
        addr: server.addr,
        _server: server,
    }
}

fn lambda_host() -> Up {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lambda_host.py");
    let server = common::python::Server::start(
        &["aws-lambda-powertools[parser]==3.37.0", "botocore==1.44.8"],
        &[script],
    );
    Up {
        addr: server.addr,
        _server: server,
    }
}

fn send(gw: &Gateway, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: shop.example\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    request(gw.addr, raw.as_bytes()).expect("a response")
}

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_str(&r.text()).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

const PETSTORE: &str = r#"#set($inputRoot = $input.path('$'))
[
#foreach($elem in $inputRoot)
  {
    "number": $elem.id,
    "class": "$elem.type",
    "salesPrice": $elem.price
  }#if($foreach.hasNext),#end

#end
]"#;

const PETSTORE_OUT: &str = r#"[
  {
    "number": 1,
    "class": "dog",
    "salesPrice": 249.99
  },
  {
    "number": 2,
    "class": "cat",
    "salesPrice": 124.99
  },
  {
    "number": 3,
    "class": "fish",
    "salesPrice": 0.99
  }
]"#;

fn shop_config(up: SocketAddr, lambda: SocketAddr) -> String {
    config(
        &format!(
            r#"
[aws]
region = "us-east-1"
credentials = {{ access_key = "AKIDTURNPIKETEST", secret = "turnpike-test-secret" }}
endpoints = {{ lambda = "http://{lambda}" }}

# JSON in, XML out to a SOAP-style service that parses it
[apis.shop.routes."POST /soap/pets/{{id}}".integration]
type = "http"
uri = "http://{up}/soap"
method = "POST"
passthrough = "never"
[apis.shop.routes."POST /soap/pets/{{id}}".integration.request_templates]
"application/json" = '''
#set($pet = $input.path('$'))
<GetPet>
  <id>$input.params('id')</id>
  <name>$pet.name</name>
  <tags>
#foreach($t in $pet.tags)
    <tag>$t</tag>
#end
  </tags>
</GetPet>
'''
[[apis.shop.routes."POST /soap/pets/{{id}}".integration.responses]]
status = 200
[[apis.shop.routes."POST /soap/pets/{{id}}".integration.responses]]
pattern = "4\\d{{2}}"
status = 400
headers = {{ "x-fault" = "'soap'" }}
[apis.shop.routes."POST /soap/pets/{{id}}".integration.responses.templates]
"application/json" = '''{{"error": "the pet service refused", "detail": "$util.escapeJavaScript($input.body).replaceAll("\\'","'")"}}'''

# the PetStore's integration response template
[apis.shop.routes."GET /pets".integration]
type = "http"
uri = "http://{up}/pets"
[[apis.shop.routes."GET /pets".integration.responses]]
headers = {{ "x-count" = "integration.response.header.x-total", "x-stage" = "stageVariables.env", "x-first" = "integration.response.body.[0].type" }}
[apis.shop.routes."GET /pets".integration.responses.templates]
"application/json" = '''{PETSTORE}'''

# parameter mapping and the documented walk over $input.params()
[apis.shop.routes."GET /echo/{{id}}".integration]
type = "http"
uri = "http://{up}/items/{{item}}"
[apis.shop.routes."GET /echo/{{id}}".integration.request_parameters]
"integration.request.path.item" = "method.request.path.id"
"integration.request.header.x-user" = "method.request.querystring.user"
"integration.request.header.x-request" = "context.requestId"
"integration.request.header.x-env" = "stageVariables.env"
"integration.request.querystring.v" = "'2'"
"integration.request.querystring.tags" = "method.request.multivaluequerystring.tag"

[apis.shop.routes."POST /params/{{id}}".integration]
type = "http"
uri = "http://{up}/echo"
[apis.shop.routes."POST /params/{{id}}".integration.request_templates]
"application/json" = '''
#set($allParams = $input.params())
{{
  "params" : {{
    #foreach($type in $allParams.keySet())
    #set($params = $allParams.get($type))
    "$type" : {{
      #foreach($paramName in $params.keySet())
      "$paramName" : "$util.escapeJavaScript($params.get($paramName))"
      #if($foreach.hasNext),#end
      #end
    }}
    #if($foreach.hasNext),#end
    #end
  }},
  "name" : "$input.params('name')",
  "body" : $input.json('$'),
  "stage" : "$context.stage",
  "method" : "$context.httpMethod",
  "resource" : "$context.resourcePath"
}}
'''
[[apis.shop.routes."POST /params/{{id}}".integration.responses]]
[apis.shop.routes."POST /params/{{id}}".integration.responses.templates]
"application/json" = '$input.path("$.body")'

# passthrough behaviours
[apis.shop.routes."POST /pass/match".integration]
type = "http"
uri = "http://{up}/echo"
passthrough = "when_no_match"
request_templates = {{ "application/json" = '{{"wrapped": $input.json("$")}}' }}
[apis.shop.routes."POST /pass/templates".integration]
type = "http"
uri = "http://{up}/echo"
passthrough = "when_no_templates"
request_templates = {{ "application/json" = '{{"wrapped": $input.json("$")}}' }}
[apis.shop.routes."POST /pass/none".integration]
type = "http"
uri = "http://{up}/echo"
passthrough = "when_no_templates"

# status mapping from the integration, and overrides from a template
[apis.shop.routes."GET /status/{{code}}".integration]
type = "http"
uri = "http://{up}/status/{{code}}"
[[apis.shop.routes."GET /status/{{code}}".integration.responses]]
pattern = "2\\d\\d"
status = 200
templates = {{ "application/json" = '{{"ok": $input.path("$.code")}}' }}
[[apis.shop.routes."GET /status/{{code}}".integration.responses]]
pattern = "404"
status = 404
templates = {{ "application/json" = '{{"missing": "$input.path("$.message")"}}', "application/xml" = '<missing>$input.path("$.code")</missing>' }}
[[apis.shop.routes."GET /status/{{code}}".integration.responses]]
pattern = "5\\d\\d"
status = 502
templates = {{ "application/json" = '''#set($context.responseOverride.status = 418)#set($context.responseOverride.header.x-teapot = "short and stout"){{"overridden": true}}''' }}

[apis.shop.routes."GET /unmapped/{{code}}".integration]
type = "http"
uri = "http://{up}/status/{{code}}"
[[apis.shop.routes."GET /unmapped/{{code}}".integration.responses]]
pattern = "200"

# AWS's MOCK: the request template's statusCode selects the response
[apis.shop.routes."GET /mock".integration]
type = "mock"
[apis.shop.routes."GET /mock".integration.request_templates]
"application/json" = '''
#if($input.params('scope') == 'internal')
{{"statusCode": 200}}
#else
{{"statusCode": 403}}
#end
'''
[[apis.shop.routes."GET /mock".integration.responses]]
status = 200
headers = {{ "Access-Control-Allow-Origin" = "'*'" }}
templates = {{ "application/json" = '{{"id": "$context.requestId", "message": "internal"}}' }}
[[apis.shop.routes."GET /mock".integration.responses]]
pattern = "403"
status = 403
templates = {{ "application/json" = "{{\"message\": \"scope $input.params('scope') may not\"}}" }}

# a template over its limits
[apis.shop.routes."GET /runaway".integration]
type = "mock"
request_templates = {{ "application/json" = '#foreach($a in [1..1000])#foreach($b in [1..1000])#foreach($c in [1..1000])#end#end#end' }}

# AWS's calculator tutorial: a custom Lambda integration
[apis.shop.routes."POST /calc".integration]
type = "lambda"
function = "calc"
proxy = false
[[apis.shop.routes."POST /calc".integration.responses]]
status = 200
templates = {{ "application/json" = '''#set($r = $input.path('$'))
{{"result": "$r.a $r.op $r.b = $r.c"}}''' }}
[[apis.shop.routes."POST /calc".integration.responses]]
pattern = "400.*"
status = 400
templates = {{ "application/json" = '{{"error": "$input.path("$.errorMessage")"}}' }}

[apis.shop.routes."GET /calc".integration]
type = "lambda"
function = "calc"
proxy = false
request_templates = {{ "application/json" = '{{"a": $input.params("a"), "b": $input.params("b"), "op": "$util.urlDecode($input.params("op"))"}}' }}

[apis.shop.routes."GET /lost".integration]
type = "lambda"
function = "jsonerror"
proxy = false
[[apis.shop.routes."GET /lost".integration.responses]]
[[apis.shop.routes."GET /lost".integration.responses]]
pattern = '.*"httpStatus":\s*404.*'
status = 404
[apis.shop.routes."GET /lost".integration.responses.templates]
"application/json" = '''#set($e = $util.parseJson($input.path('$.errorMessage')))
{{"type": "$e.errorType", "message": "$e.message"}}'''

# contentHandling: a PNG upload as base64 text for a JSON service, and base64 text
# from a template sent as the image's bytes
[apis.shop]
binary_media_types = ["image/png"]

[apis.shop.routes."POST /upload".integration]
type = "http"
uri = "http://{up}/echo"
content_handling = "CONVERT_TO_TEXT"
passthrough = "never"
request_templates = {{ "image/png" = '{{"png": "$input.body", "size": $input.body.length()}}' }}

[apis.shop.routes."GET /logo".integration]
type = "mock"
request_templates = {{ "application/json" = '{{"statusCode": 200}}' }}
[[apis.shop.routes."GET /logo".integration.responses]]
status = 200
content_handling = "CONVERT_TO_BINARY"
templates = {{ "image/png" = 'iVBORw0KGgo=' }}

[apis.shop.routes."GET /badlogo".integration]
type = "mock"
request_templates = {{ "application/json" = '{{"statusCode": 200}}' }}
[[apis.shop.routes."GET /badlogo".integration.responses]]
content_handling = "CONVERT_TO_BINARY"
templates = {{ "text/plain" = 'this is not base64!' }}

[stages.prod]
api = "shop"
variables = {{ env = "production" }}
"#
        ),
        None,
    )
}

#[test]
fn http_integrations_are_mapped_as_aws_documents() {
    let up = xml_upstream();
    let lambda = lambda_host();
    let gw = Gateway::start(&shop_config(up.addr, lambda.addr));
    let ct = [("Content-Type", "application/json")];

    // JSON → XML: the upstream's XML parser read what the template wrote
    let r = send(
        &gw,
        "POST",
        "/soap/pets/7",
        &ct,
        r#"{"name": "Rex", "tags": ["good", "old"]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/xml"));
    assert_eq!(
        r.text(),
        "<GetPetResponse><pet><id>7</id><name>Rex</name><tagCount>2</tagCount><tags>good,old</tags></pet></GetPetResponse>"
    );
    // the service's fault (400) selects the 4xx response and its template
    let r = send(
        &gw,
        "POST",
        "/soap/pets/x",
        &ct,
        r#"{"name": "Rex", "tags": []}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("x-fault"), Some("soap"));
    let v = json(&r);
    assert_eq!(v["error"], "the pet service refused");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("<faultstring>invalid literal"),
        "{v}"
    );
    // passthrough = never: no template for XML → 415
    let r = send(
        &gw,
        "POST",
        "/soap/pets/7",
        &[("Content-Type", "application/xml")],
        "<x/>",
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (415, r#"{"message":"Unsupported Media Type"}"#)
    );

    // the PetStore's response template, exactly AWS's output
    let r = send(&gw, "GET", "/pets", &[], "");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), PETSTORE_OUT);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-count"), Some("3"));
    assert_eq!(r.header("x-stage"), Some("production"));
    assert_eq!(r.header("x-first"), Some("dog"));

    // request parameters: path, header, query, context, stage variables, static
    let r = send(
        &gw,
        "GET",
        "/echo/42?user=ann&tag=a&tag=b",
        &[("Cookie", "secret=1")],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert_eq!(v["path"], "/items/42");
    assert_eq!(v["headers"]["x-user"], "ann");
    assert_eq!(v["headers"]["x-env"], "production");
    assert_eq!(v["headers"]["x-request"], r.header("x-request-id").unwrap());
    assert!(
        v["headers"].get("cookie").is_none(),
        "unmapped headers stay behind: {v}"
    );
    assert_eq!(v["query"], serde_json::json!([["tags", "a,b"], ["v", "2"]]));
    // no response mapping at all: the integration's status, type and body
    assert_eq!(
        r.header("x-upstream"),
        None,
        "unmapped response headers stay behind"
    );

    // AWS's $input.params() walk, $input.json('$') and $context in a request template
    let r = send(
        &gw,
        "POST",
        "/params/9?name=q&page=2",
        &[
            ("Content-Type", "application/json; charset=UTF-8"),
            ("X-Tenant", "acme"),
        ],
        r#"{"n": [1, 2]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // (the response template returns the request the upstream got: the rendered one)
    let sent = json(&r);
    assert_eq!(sent["params"]["path"], serde_json::json!({"id": "9"}));
    assert_eq!(
        sent["params"]["querystring"],
        serde_json::json!({"name": "q", "page": "2"})
    );
    assert_eq!(sent["params"]["header"]["X-Tenant"], "acme");
    assert_eq!(sent["name"], "q");
    assert_eq!(sent["body"], serde_json::json!({"n": [1, 2]}));
    assert_eq!(sent["stage"], "prod");
    assert_eq!(sent["method"], "POST");
    assert_eq!(sent["resource"], "/params/{id}");

    // passthrough behaviours with an XML body (AWS's matrix)
    let xml = [("Content-Type", "application/xml")];
    let r = send(&gw, "POST", "/pass/match", &xml, "<a/>");
    assert_eq!((r.status, json(&r)["body"].as_str()), (200, Some("<a/>")));
    let r = send(&gw, "POST", "/pass/match", &ct, r#"{"k": 1}"#);
    assert_eq!(json(&r)["body"], r#"{"wrapped": {"k":1}}"#);
    assert_eq!(
        send(&gw, "POST", "/pass/templates", &xml, "<a/>").status,
        415
    );
    // a refusal after the body was read keeps the connection (and does not wait
    // for body bytes that were read already: the client's read timeout would fire)
    let mut c = Client::connect(gw.addr);
    for _ in 0..2 {
        c.send(b"POST /pass/templates HTTP/1.1\r\nHost: shop.example\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
        let r = c
            .read_response(false)
            .expect("an answer on the same connection");
        assert_eq!(r.status, 415);
    }
    let r = send(&gw, "POST", "/pass/none", &xml, "<a/>");
    assert_eq!(json(&r)["headers"]["content-type"], "application/xml");

    // integration responses by status, templates by Accept, overrides
    let r = send(&gw, "GET", "/status/201", &[], "");
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"ok": 201}"#));
    let r = send(&gw, "GET", "/status/404", &[], "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, r#"{"missing": "status 404"}"#)
    );
    let r = send(
        &gw,
        "GET",
        "/status/404",
        &[("Accept", "application/xml")],
        "",
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, "<missing>404</missing>")
    );
    assert_eq!(r.header("content-type"), Some("application/xml"));
    let r = send(&gw, "GET", "/status/503", &[], "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (418, r#"{"overridden": true}"#)
    );
    assert_eq!(r.header("x-teapot"), Some("short and stout"));
    // no response matches and none is the default: AWS's configuration error
    let r = send(&gw, "GET", "/unmapped/500", &[], "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, r#"{"message": "Internal server error"}"#)
    );
    assert_eq!(send(&gw, "GET", "/unmapped/200", &[], "").status, 200);

    // MOCK: the template's statusCode picks the response
    let r = send(&gw, "GET", "/mock?scope=internal", &[], "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(json(&r)["id"], r.header("x-request-id").unwrap());
    let r = send(&gw, "GET", "/mock?scope=public", &[], "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, r#"{"message": "scope public may not"}"#)
    );
    // a runaway template is a 500, and the worker goes on serving
    let r = send(&gw, "GET", "/runaway", &[], "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, r#"{"message": "Internal server error"}"#)
    );
    assert_eq!(
        send(&gw, "GET", "/mock?scope=internal", &[], "").status,
        200
    );
}

#[test]
fn content_handling_converts_between_binary_and_text() {
    let up = xml_upstream();
    let lambda = lambda_host();
    let gw = Gateway::start(&shop_config(up.addr, lambda.addr));
    // a binary upload (its bytes are not UTF-8) reaches the template as base64
    let png: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0xff, 0x00];
    let mut raw = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
        png.len()
    )
    .into_bytes();
    raw.extend_from_slice(png);
    let r = request(gw.addr, &raw).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let sent: serde_json::Value = serde_json::from_str(json(&r)["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"png": "iVBORw0KGgr/AA==", "size": 16})
    );
    // base64 text from a template leaves as the bytes it encodes
    let r = send(&gw, "GET", "/logo", &[("Accept", "image/png")], "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.body, vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]);
    // text that is not base64 cannot be converted: AWS's configuration error
    let r = send(&gw, "GET", "/badlogo", &[], "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, r#"{"message": "Internal server error"}"#)
    );
}

#[test]
fn custom_lambda_integrations_map_results_and_errors() {
    let up = xml_upstream();
    let lambda = lambda_host();
    let gw = Gateway::start(&shop_config(up.addr, lambda.addr));
    let ct = [("Content-Type", "application/json")];

    // the body passes through as the payload; the result through the default template
    let r = send(&gw, "POST", "/calc", &ct, r#"{"a": 2, "b": 3, "op": "*"}"#);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, r#"{"result": "2 * 3 = 6"}"#)
    );
    // a function error's errorMessage selects the 400 response
    let r = send(&gw, "POST", "/calc", &ct, r#"{"a": 2, "b": 0, "op": "/"}"#);
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, r#"{"error": "400 Invalid Operand"}"#)
    );
    let r = send(&gw, "POST", "/calc", &ct, r#"{"a": 2, "b": 1, "op": "^"}"#);
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, r#"{"error": "400 Invalid Operator"}"#)
    );
    // a payload built from the query string; no responses: Lambda's answer as is
    let r = send(&gw, "GET", "/calc?a=7&b=5&op=-", &[], "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        json(&r),
        serde_json::json!({"a": 7, "b": 5, "op": "-", "c": 2})
    );
    // without a mapping, a function error is still a 200, as AWS returns it
    let r = send(&gw, "GET", "/calc?a=7&b=0&op=%2F", &[], "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["errorMessage"], "400 Invalid Operand");
    // a JSON error message, parsed by $util.parseJson in the template
    let r = send(&gw, "GET", "/lost", &[], "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, r#"{"type": "NotFound", "message": "no pet 7"}"#)
    );
}

#[test]
fn template_errors_name_the_template_line_and_column() {
    let dir = TempDir::new("templates-check");
    let text = r#"
[gateway]
listen = ["127.0.0.1:0"]

[apis.a.routes."POST /x".integration]
type = "http"
uri = "http://127.0.0.1:9/x"
[apis.a.routes."POST /x".integration.request_templates]
"application/json" = '''
{
  "a": $input.path('$.a'),
  "b": #if($x == ) #end
}
'''

[apis.a.routes."POST /y".integration]
type = "mock"
passthrough = "sometimes"
[[apis.a.routes."POST /y".integration.responses]]
pattern = "(unclosed"

[stages.prod]
api = "a"
"#;
    let path = dir.write("t.toml", text);
    let (ok, err) = check(&path);
    assert!(!ok);
    // line 12 of the file, the column of the missing operand
    assert!(
        err.contains("t.toml:12:18") && err.contains("line 3 column 18 of the template"),
        "{err}"
    );
    assert!(err.contains("passthrough \"sometimes\""), "{err}");
    assert!(err.contains("response 1: the regex \"(unclosed\""), "{err}");
}

#[test]
fn http_api_parameter_mapping_rewrites_proxied_requests() {
    let up = xml_upstream();
    let cfg = config(
        &format!(
            r#"
[apis.h.authorizers.key]
type = "request"
identity = ["$request.header.X-Token"]
function = {{ type = "http", uri = "http://{up}/never" }}

[apis.h.routes."GET /users/{{id}}"]
integration = {{ type = "http_proxy", uri = "http://{up}/", parameter_mapping = {{ "overwrite:path" = "/v2/people/${{request.path.id}}", "append:header.x-request" = "$context.requestId", "overwrite:header.x-user" = "user-$request.path.id", "remove:header.cookie" = "''", "overwrite:querystring.page" = "$request.header.x-page", "append:querystring.v" = "2", "remove:querystring.debug" = "''", "overwrite:header.x-env" = "$stageVariables.env" }}, response_parameters = {{ "200" = {{ "overwrite:header.x-served-by" = "upstream $response.header.x-upstream", "remove:header.set-cookie" = "''", "append:header.x-upstream" = "mapped" }} }} }}

[apis.h.routes."GET /broken"]
integration = {{ type = "http_proxy", uri = "http://{up}/status/500", response_parameters = {{ "500" = {{ "overwrite:statuscode" = "403", "append:header.x-error" = "$context.requestId" }} }} }}

[apis.h.routes."GET /plain"]
integration = {{ type = "http_proxy", uri = "http://{up}/plain" }}

[stages.prod]
api = "h"
variables = {{ env = "staging" }}
"#,
            up = up.addr
        ),
        None,
    );
    let gw = Gateway::start(&cfg);
    let r = send(
        &gw,
        "GET",
        "/users/42?page=1&debug=1&keep=x",
        &[("Cookie", "s=1"), ("X-Page", "9"), ("X-Request", "client")],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert_eq!(v["path"], "/v2/people/42");
    // (the mapping applies in key order: append:… before overwrite:…)
    assert_eq!(
        v["query"],
        serde_json::json!([["keep", "x"], ["v", "2"], ["page", "9"]])
    );
    assert!(v["headers"].get("cookie").is_none(), "{v}");
    assert_eq!(v["headers"]["x-user"], "user-42");
    assert_eq!(v["headers"]["x-env"], "staging");
    assert_eq!(
        v["headers"]["x-request"],
        format!("client,{}", r.header("x-request-id").unwrap())
    );
    // the response mapping for 200
    assert_eq!(r.header("x-served-by"), Some("upstream echo"));
    assert_eq!(r.header("x-upstream"), Some("echo,mapped"));
    assert_eq!(r.header("set-cookie"), None);
    // overwrite:statuscode for the upstream's 500
    let r = send(&gw, "GET", "/broken", &[], "");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.header("x-error"), r.header("x-request-id"));
    assert_eq!(json(&r)["code"], 500, "the body is the upstream's");
    // a route without a mapping forwards what it got
    let r = send(&gw, "GET", "/plain?debug=1", &[("Cookie", "s=1")], "");
    assert_eq!(r.header("x-upstream"), Some("echo"));
    let v = json(&r);
    assert_eq!(v["path"], "/plain");
    assert_eq!(v["headers"]["cookie"], "s=1");
    assert_eq!(v["query"], serde_json::json!([["debug", "1"]]));

    // a reserved header or an unknown variable is a check error
    let dir = TempDir::new("mapping-check");
    let bad = r#"
[gateway]
listen = ["127.0.0.1:0"]
[apis.h.routes."GET /x"]
integration = { type = "http_proxy", uri = "http://127.0.0.1:9/", parameter_mapping = { "overwrite:header.authorization" = "x" } }
[apis.h.routes."GET /y"]
integration = { type = "http_proxy", uri = "http://127.0.0.1:9/", parameter_mapping = { "overwrite:header.x" = "$request.path.nope" } }
[stages.prod]
api = "h"
"#;
    let path = dir.write("t.toml", bad);
    let (_, err) = check(&path);
    assert!(err.contains("header `authorization` is reserved"), "{err}");
    assert!(
        err.contains("the route has no path parameter `nope`"),
        "{err}"
    );
}
