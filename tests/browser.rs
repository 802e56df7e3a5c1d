//! CORS in a real browser (DESIGN §8.5, issue 15): headless Chromium loads a page
//! from one origin (`http://localhost:A`) whose script calls the API on another
//! (`http://127.0.0.1:G`) with credentials and a custom header, which needs the
//! gateway's preflight answer and its headers on the actual response. The same page
//! from an origin the policy does not list, and a header it does not allow, are
//! refused by the browser itself.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::browser::Chromium;
use common::*;

/// A static file server for the pages, on its own port (its own origin).
struct Pages {
    server: common::python::Server,
}

impl Pages {
    fn serve(dir: &std::path::Path) -> Pages {
        let script = r#"
import functools, http.server, sys
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
h.func.log_message = lambda *a: None
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
        Pages {
            server: common::python::Server::start(&[], &["-c", script, dir.to_str().unwrap()]),
        }
    }

    fn port(&self) -> u16 {
        self.server.addr.port()
    }
}

/// A page that calls `api` with `header` and credentials, and writes what happened
/// into `#out`: `ok:<body>:rid=<exposed x-request-id>` or `refused:<error>`.
fn page(api: SocketAddr, header: &str) -> String {
    format!(
        r#"<!doctype html><html><body><div id="out">pending</div><script>
fetch("http://{api}/data", {{method: "PUT", credentials: "include", headers: {{"{header}": "1", "Content-Type": "text/plain"}}, body: "x"}})
  .then(r => r.text().then(t => {{ document.getElementById("out").textContent = "ok:" + t + ":rid=" + (r.headers.get("x-request-id") || ""); }}))
  .catch(e => {{ document.getElementById("out").textContent = "refused:" + e; }});
</script></body></html>"#
    )
}

fn outcome(dom: &str) -> String {
    dom.split(r#"<div id="out">"#)
        .nth(1)
        .and_then(|s| s.split("</div>").next())
        .unwrap_or_else(|| panic!("no #out in {dom}"))
        .to_string()
}

#[test]
fn a_browser_calls_across_origins_only_as_the_policy_allows() {
    let browser = Chromium::get();
    let dir = TempDir::new("pages");
    let allowed = Pages::serve(&dir.0);
    let other = Pages::serve(&dir.0);
    let gw = Gateway::start(&config(
        &format!(
            r#"
[apis.web.cors]
allow_origins = ["http://localhost:{}"]
allow_methods = ["GET", "PUT"]
allow_headers = ["x-custom", "content-type"]
expose_headers = ["x-request-id"]
allow_credentials = true
max_age = "0s"

[apis.web.routes."PUT /data"]
integration = {{ type = "mock", status = 200, body = "hello" }}

[stages.prod]
api = "web"
"#,
            allowed.port()
        ),
        None,
    ));
    dir.write("custom.html", &page(gw.addr, "X-Custom"));
    dir.write("other-header.html", &page(gw.addr, "X-Other"));
    let load = |port: u16, file: &str| {
        outcome(&browser.dump_dom(
            &format!("http://localhost:{port}/{file}"),
            Duration::from_secs(5),
        ))
    };

    let got = load(allowed.port(), "custom.html");
    assert!(
        got.starts_with("ok:hello:rid="),
        "allowed origin, credentials, custom header: {got}"
    );
    assert!(
        got.len() > "ok:hello:rid=".len(),
        "the exposed x-request-id is readable: {got}"
    );

    let got = load(other.port(), "custom.html");
    assert!(
        got.starts_with("refused:"),
        "an origin the policy does not list: {got}"
    );

    let got = load(allowed.port(), "other-header.html");
    assert!(
        got.starts_with("refused:"),
        "a header the policy does not allow: {got}"
    );
}
