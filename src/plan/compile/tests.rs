use super::*;
use crate::config::load_str;
use crate::plan::{Integration, Lookup, Method, Target};

fn plan(text: &str) -> Result<Plan, Errors> {
    compile(load_str("t.toml", text)?, 2)
}

const BASE: &str = r#"
[upstreams.users]
targets = ["127.0.0.1:9000", { addr = "127.0.0.1:9001", weight = 3 }]

[apis.shop.routes."GET /users/{id}"]
integration = { type = "http_proxy", uri = "http://users/v1/users/{id}" }
timeout = "5s"

[apis.shop.routes."ANY /files/{path+}"]
integration = { type = "http_proxy", uri = "http://${stageVariables.files}/{path}" }

[apis.shop.routes."GET /ping"]
integration = { type = "mock", status = 200, body = '{"pong":true}', headers = { "content-type" = "application/json" } }

[stages.prod]
api = "shop"
hosts = ["api.example.com", "*"]
base_path = "/v1"
variables = { files = "127.0.0.1:9100" }
"#;

#[test]
fn compiles_the_design_example() {
    let p = plan(BASE).unwrap();
    assert_eq!(p.routes.len(), 3);
    assert_eq!(p.upstreams[0].targets[1].weight, 3);
    match p
        .router
        .lookup("whatever", Some(Method::Get), "/v1/users/7")
    {
        Lookup::Found(id, _) => assert_eq!(&*p.route(id).key, "GET /users/{id}"),
        other => panic!("{other:?}"),
    }
    let files = p.routes.iter().find(|r| r.key.starts_with("ANY")).unwrap();
    match &files.integration {
        Integration::HttpProxy(px) => {
            assert_eq!(px.target, Target::Addr("127.0.0.1:9100".parse().unwrap()))
        }
        other => panic!("{other:?}"),
    }
    let users = p
        .routes
        .iter()
        .find(|r| r.key.starts_with("GET /users"))
        .unwrap();
    assert_eq!(users.timeout, Duration::from_secs(5));
}

#[test]
fn reports_every_semantic_error_with_positions() {
    let text = r#"
[gateway]
listen = ["nope"]
timeout = "90s"

[apis.a.routes."GET /x/{id}"]
integration = { type = "http_proxy", uri = "http://127.0.0.1:1/{other}" }

[apis.a.routes."GET /y/{id}"]
integration = { type = "mock" }
timeout = "10ms"

[stages.s]
api = "missing"
"#;
    let e = plan(text).unwrap_err();
    let r = e.to_string();
    assert_eq!(e.len(), 5, "{r}");
    for needle in [
        "t.toml:3:11",
        "t.toml:4:11",
        "t.toml:7:15",
        "t.toml:11:11",
        "t.toml:14:7",
    ] {
        assert!(r.contains(needle), "{needle} missing from:\n{r}");
    }
}

#[test]
fn conflicting_routes_are_compile_errors() {
    let text = r#"
[apis.a.routes."GET /u/{id}"]
integration = { type = "mock" }
[apis.a.routes."GET /u/{name}"]
integration = { type = "mock" }
[stages.s]
api = "a"
"#;
    let e = plan(text).unwrap_err().to_string();
    assert!(e.contains("can never be reached"), "{e}");
}

#[test]
fn two_stages_on_the_same_mount_conflict() {
    let text = r#"
[apis.a.routes."GET /u"]
integration = { type = "mock" }
[stages.one]
api = "a"
[stages.two]
api = "a"
"#;
    assert!(plan(text).is_err());
    let ok = text.replace("api = \"a\"\n", "api = \"a\"\nbase_path = \"/2\"\n");
    // only the second occurrence matters, but both having distinct mounts is fine too
    let ok = ok.replacen("base_path = \"/2\"", "base_path = \"/1\"", 1);
    assert!(
        plan(&ok).is_ok(),
        "{:?}",
        plan(&ok).err().map(|e| e.to_string())
    );
}

#[test]
fn unknown_stage_variable_is_an_error() {
    let text = BASE.replace("variables = { files = \"127.0.0.1:9100\" }", "");
    let e = plan(&text).unwrap_err().to_string();
    assert!(e.contains("stage variable `files`"), "{e}");
}

#[test]
fn quickstart_compiles() {
    let cfg = load_str("quickstart.toml", crate::config::QUICKSTART).unwrap();
    let p = compile(cfg, 2).unwrap();
    assert!(!p.routes.is_empty());
}
