//! Routing end to end: hosts, base paths, parameters, priorities, $default, 405.

mod common;

use common::*;

const ROUTES: &str = r#"
[apis.public.routes."GET /items/{id}"]
integration = { type = "mock", body = "public item" }
[apis.public.routes."GET /items/special"]
integration = { type = "mock", body = "special" }
[apis.public.routes."GET /files/{path+}"]
integration = { type = "mock", body = "files" }
[apis.public.routes."POST /items"]
integration = { type = "mock", status = 201, body = "created" }

[apis.admin.routes."GET /items/{id}"]
integration = { type = "mock", body = "admin item" }
[apis.admin.routes."$default"]
integration = { type = "mock", status = 404, body = "admin default" }

[stages.public]
api = "public"
hosts = ["*"]
base_path = "/v1"

[stages.admin]
api = "admin"
hosts = ["admin.example.com"]
base_path = "/"
"#;

fn host_get(gw: &Gateway, host: &str, path: &str) -> Response {
    request(
        gw.addr,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap()
}

#[test]
fn hosts_base_paths_priorities_and_default() {
    let gw = Gateway::start(&config(ROUTES, None));
    // any host → the public stage under /v1
    assert_eq!(
        host_get(&gw, "shop.example.com", "/v1/items/7").text(),
        "public item"
    );
    assert_eq!(
        host_get(&gw, "shop.example.com", "/v1/items/special").text(),
        "special"
    );
    assert_eq!(
        host_get(&gw, "shop.example.com:8080", "/v1/files/a/b/c").text(),
        "files"
    );
    // the exact host (case and port ignored) → the admin stage at /
    assert_eq!(
        host_get(&gw, "Admin.Example.COM:443", "/items/7").text(),
        "admin item"
    );
    let d = host_get(&gw, "admin.example.com", "/whatever/else");
    assert_eq!((d.status, d.text().as_str()), (404, "admin default"));
    // outside the public stage's base path nothing matches
    let r = host_get(&gw, "shop.example.com", "/items/7");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), r#"{"message":"Not Found"}"#);
    // path exists, method doesn't
    let r = request(
        gw.addr,
        b"DELETE /v1/items HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    // a greedy parameter needs at least one segment
    assert_eq!(host_get(&gw, "x", "/v1/files").status, 404);
}
