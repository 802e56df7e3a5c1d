//! JWT authorizers against Cognito user pools as moto's server mode implements
//! them: a real user pool, app client and user, tokens from `InitiateAuth`
//! (USER_PASSWORD_AUTH), and the pool's JWKS served by moto. An ID token carries
//! `aud`, an access token `client_id` and `scope`: both must work as on AWS.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;

/// moto's server with one user pool, app client and user; lives until dropped.
struct Moto {
    child: Child,
    url: String,
    pool: String,
    client: String,
    id_token: String,
    access_token: String,
    other_client_token: String,
}

impl Moto {
    fn start() -> Moto {
        let deps = common::python::deps(&["moto[server]==5.2.5", "boto3==1.44.8"]);
        let mut child = Command::new("python3")
            .args(["-u", "-c", r#"
import json, sys, boto3
from moto.server import ThreadedMotoServer
s = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
s.start()
host, port = s.get_host_and_port()
url = f"http://{host}:{port}"
c = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=url,
                 aws_access_key_id="test", aws_secret_access_key="test")
pool = c.create_user_pool(PoolName="shop")["UserPool"]["Id"]
def client(name):
    return c.create_user_pool_client(UserPoolId=pool, ClientName=name,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])["UserPoolClient"]["ClientId"]
app, other = client("app"), client("other")
c.admin_create_user(UserPoolId=pool, Username="alice", TemporaryPassword="Temp-pass1!",
                    UserAttributes=[{"Name": "email", "Value": "alice@example.com"}])
c.admin_set_user_password(UserPoolId=pool, Username="alice", Password="Real-pass1!", Permanent=True)
def login(cid):
    return c.initiate_auth(ClientId=cid, AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "alice", "PASSWORD": "Real-pass1!"})["AuthenticationResult"]
a, o = login(app), login(other)
print(json.dumps({"url": url, "pool": pool, "client": app, "id": a["IdToken"],
                  "access": a["AccessToken"], "other": o["AccessToken"]}), flush=True)
sys.stdin.read()
s.stop()
"#])
            .env("PYTHONPATH", &deps)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let field = |k: &str| json_field(&line, k).unwrap_or_else(|| panic!("moto said {line:?}"));
        Moto {
            url: field("url"),
            pool: field("pool"),
            client: field("client"),
            id_token: field("id"),
            access_token: field("access"),
            other_client_token: field("other"),
            child,
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn call(gw: &Gateway, path: &str, token: &str) -> Response {
    request(
        gw.addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("a response")
}

#[test]
fn cognito_id_and_access_tokens_from_moto_are_accepted_as_aws_does() {
    let moto = Moto::start();
    let gw = Gateway::start(&config(
        &format!(
            r#"
[apis.shop]
default_auth = "pool"

[apis.shop.authorizers.pool]
type = "jwt"
issuer = "https://cognito-idp.us-east-1.amazonaws.com/{pool}"
audience = ["{client}"]
jwks = "{url}/{pool}/.well-known/jwks.json"

[apis.shop.routes."GET /me"]
integration = {{ type = "mock", body = "me" }}

[apis.shop.routes."GET /admin"]
integration = {{ type = "mock", body = "admin" }}
scopes = ["aws.cognito.signin.user.admin"]

[apis.shop.routes."GET /orders"]
integration = {{ type = "mock", body = "orders" }}
scopes = ["orders/read"]

[stages.prod]
api = "shop"
"#,
            pool = moto.pool,
            client = moto.client,
            url = moto.url,
        ),
        None,
    ));
    // an ID token (`aud` = the app client) and an access token (`client_id`)
    let r = call(&gw, "/me", &moto.id_token);
    assert_eq!((r.status, r.text().as_str()), (200, "me"), "ID token");
    let r = call(&gw, "/me", &moto.access_token);
    assert_eq!((r.status, r.text().as_str()), (200, "me"), "access token");
    // scopes come from the access token's `scope`; an ID token has none
    assert_eq!(call(&gw, "/admin", &moto.access_token).status, 200);
    let r = call(&gw, "/admin", &moto.id_token);
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, r#"{"message":"Forbidden"}"#)
    );
    assert_eq!(call(&gw, "/orders", &moto.access_token).status, 403);
    // the same pool, another app client: not this API's audience
    let r = call(&gw, "/me", &moto.other_client_token);
    assert_eq!(
        (r.status, r.text().as_str()),
        (401, r#"{"message":"Unauthorized"}"#)
    );
    assert!(r
        .header("www-authenticate")
        .unwrap_or("")
        .contains("audience"));
}
