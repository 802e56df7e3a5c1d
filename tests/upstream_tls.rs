//! TLS to upstreams: verified against a configured CA, SNI and the certificate's
//! name checked, failures answered 502, configuration mistakes caught by `check`.

mod common;

use std::path::PathBuf;

use common::*;

/// A CA and a server certificate for `localhost` and 127.0.0.1, as PEM files.
fn local_pki(dir: &TempDir) -> (PathBuf, PathBuf, PathBuf) {
    pki(dir, &["localhost", "127.0.0.1"])
}

fn gateway_with(dir: TempDir, body: &str) -> Gateway {
    let path = dir.write("turnpike.toml", &config(body, None));
    Gateway::start_with(dir, path, &["run", "-c"])
}

#[test]
fn proxies_to_a_tls_upstream_verified_by_a_configured_ca() {
    let dir = TempDir::new("tls-up");
    let (ca, cert, key) = local_pki(&dir);
    let up = Upstream::start_tls(&cert, &key);
    let port = up.addr.port();
    let gw = gateway_with(
        dir,
        &format!(
            r#"
[upstreams.secure]
targets = ["localhost:{port}"]
tls = true
tls_ca = "ca.pem"
# probes speak TLS too (a plain-text probe would find the target unhealthy)
health = {{ path = "/", interval = "100ms", unhealthy_after = 1 }}

[upstreams.by_ip]
targets = ["127.0.0.1:{port}"]
tls = true
tls_ca = "{}"

[upstreams.wrong_name]
targets = ["127.0.0.1:{port}"]
tls = true
tls_ca = "ca.pem"
tls_server_name = "wrong.example"

[apis.a.routes."GET /s/{{p+}}"]
integration = {{ type = "http_proxy", uri = "https://secure/{{p}}" }}

[apis.a.routes."GET /ip/{{p+}}"]
integration = {{ type = "http_proxy", uri = "https://by_ip/{{p}}" }}

[apis.a.routes."GET /wrong/{{p+}}"]
integration = {{ type = "http_proxy", uri = "https://wrong_name/{{p}}" }}

[apis.a.routes."GET /system/{{p+}}"]
integration = {{ type = "http_proxy", uri = "https://127.0.0.1:{port}/{{p}}" }}

[stages.prod]
api = "a"
"#,
            ca.display()
        ),
    );
    let mut c = Client::connect(gw.addr);
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(!gw.log().contains("is unhealthy"), "{}", gw.log());
    for path in ["/s/hello?x=1", "/ip/hello"] {
        for _ in 0..3 {
            let r = c.get(path);
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            assert_eq!(r.json_field("path").as_deref(), Some("/hello"));
        }
    }
    // the name must match the certificate, and the CA must be trusted
    assert_eq!(c.get("/wrong/x").status, 502);
    assert_eq!(
        c.get("/system/x").status,
        502,
        "a private CA is not in the system's roots"
    );
    assert!(
        gw.wait_log("TLS handshake", std::time::Duration::from_secs(2)),
        "{}",
        gw.log()
    );
    // big bodies both ways through TLS
    let r = c.get("/s/bytes/300000");
    assert_eq!(r.body.len(), 300_000);
}

#[test]
fn check_reports_tls_mistakes() {
    let dir = TempDir::new("tls-check");
    let path = dir.write(
        "t.toml",
        r#"
[upstreams.plain]
targets = ["127.0.0.1:9"]

[upstreams.missing_ca]
targets = ["127.0.0.1:9"]
tls = true
tls_ca = "nope.pem"

[upstreams.no_tls]
targets = ["127.0.0.1:9"]
tls_server_name = "x.example"

[apis.a.routes."GET /a"]
integration = { type = "http_proxy", uri = "https://plain/a" }

[stages.s]
api = "a"
"#,
    );
    check_reports(
        &path,
        &[
            "t.toml:8:10: error: tls_ca `",
            "t.toml:12:19: error: tls_ca and tls_server_name need `tls = true`",
            "uses https:// but upstream `plain` has no `tls = true`",
        ],
    );
}
