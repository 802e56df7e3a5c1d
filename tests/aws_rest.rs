//! `aws` integrations REST style end to end (DESIGN §9.3 and §10, issues 17 and
//! 18): AWS's integration URIs with mapping templates, against moto's server with its
//! signature checking on. DynamoDB (JSON 1.0) with AWS's documented comments
//! templates, SNS Publish (the Query protocol, parameters mapped into the query
//! string) delivered to an SQS queue, SQS SendMessage by the queue's path (AWS's
//! tutorial), and S3 PutObject/GetObject by path (REST-XML); what arrived read back
//! with boto3; a service error selecting an integration response.

mod common;

use common::*;

const PKGS: &[&str] = &["moto[server]==5.2.5", "boto3==1.44.8"];

const SCRIPT: &str = r#"
import json, os, sys, time
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "9"
import boto3
from moto.server import ThreadedMotoServer
s = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
s.start()
host, port = s.get_host_and_port()
url = f"http://{host}:{port}"
kw = dict(region_name="us-east-1", endpoint_url=url, aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="gateway")                                                        # 1
iam.put_user_policy(UserName="gateway", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))  # 2
k = iam.create_access_key(UserName="gateway")["AccessKey"]                                 # 3
boto3.client("dynamodb", **kw).create_table(TableName="Comments",
    KeySchema=[{"AttributeName": "pageId", "KeyType": "HASH"}, {"AttributeName": "commentId", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": "pageId", "AttributeType": "S"}, {"AttributeName": "commentId", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST")                                                         # 4
topic = boto3.client("sns", **kw).create_topic(Name="news")["TopicArn"]                   # 5
sqs = boto3.client("sqs", **kw)
inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]                                    # 6
direct = sqs.create_queue(QueueName="direct")["QueueUrl"]                                  # 7
boto3.client("sns", **kw).subscribe(TopicArn=topic, Protocol="sqs",
    Endpoint="arn:aws:sqs:us-east-1:123456789012:inbox")                                   # 8
boto3.client("s3", **kw).create_bucket(Bucket="files")                                     # 9
print(json.dumps({"url": url, "key": k["AccessKeyId"], "secret": k["SecretAccessKey"], "topic": topic,
                  "inbox": inbox, "direct": direct}), flush=True)
ok = dict(region_name="us-east-1", endpoint_url=url, aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"])
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "sqs":
        c = boto3.client("sqs", **ok)
        got = []
        for _ in range(10):
            m = c.receive_message(QueueUrl=cmd[1], MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            got += [x["Body"] for x in m]
            if got: break
            time.sleep(0.2)
        print(json.dumps(got), flush=True)
    elif cmd[0] == "ddb":
        items = boto3.client("dynamodb", **ok).scan(TableName="Comments")["Items"]
        print(json.dumps(sorted(i["message"]["S"] for i in items)), flush=True)
    elif cmd[0] == "s3":
        body = boto3.client("s3", **ok).get_object(Bucket="files", Key=cmd[1])["Body"].read().decode()
        print(json.dumps(body), flush=True)
s.stop()
"#;

/// moto, asked line by line what arrived (`sqs URL`, `ddb`, `s3 KEY`).
struct Moto(common::python::Script);

impl Moto {
    fn start() -> Moto {
        Moto(common::python::Script::start(PKGS, SCRIPT))
    }

    fn field(&self, k: &str) -> String {
        self.0.field(k)
    }

    fn ask(&mut self, cmd: &str) -> serde_json::Value {
        let line = self.0.ask(cmd);
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }
}

fn gateway(m: &Moto, secret: &str) -> Gateway {
    let url = m.field("url");
    let topic = m.field("topic");
    let key = m.field("key");
    Gateway::start(&config(
        &format!(
            r#"
[aws]
region = "us-east-1"
credentials = {{ access_key = "{key}", secret = "{secret}" }}
endpoints = {{ dynamodb = "{url}", sns = "{url}", sqs = "{url}", s3 = "{url}" }}

[apis.c.routes."POST /comments".integration]
type = "aws"
uri = "arn:aws:apigateway:us-east-1:dynamodb:action/PutItem"
[apis.c.routes."POST /comments".integration.request_templates]
"application/json" = '''
{{
    "TableName": "Comments",
    "Item": {{
        "commentId": {{"S": "$context.requestId"}},
        "pageId": {{"S": "$input.path('$.pageId')"}},
        "userName": {{"S": "$input.path('$.userName')"}},
        "message": {{"S": "$input.path('$.message')"}}
    }}
}}
'''
[[apis.c.routes."POST /comments".integration.responses]]
status = 200
templates = {{ "application/json" = '{{"stored": "$context.requestId"}}' }}
[[apis.c.routes."POST /comments".integration.responses]]
pattern = "4\\d\\d"
status = 400
templates = {{ "application/json" = '''{{"error": "$input.path('$.__type')"}}''' }}

[apis.c.routes."GET /comments/{{pageId}}".integration]
type = "aws"
uri = "arn:aws:apigateway:us-east-1:dynamodb:action/Query"
request_templates = {{ "application/json" = '''{{"TableName": "Comments", "KeyConditionExpression": "pageId = :v1", "ExpressionAttributeValues": {{":v1": {{"S": "$input.params('pageId')"}}}}}}''' }}
[[apis.c.routes."GET /comments/{{pageId}}".integration.responses]]
[apis.c.routes."GET /comments/{{pageId}}".integration.responses.templates]
"application/json" = '''
#set($inputRoot = $input.path('$'))
{{
    "comments": [
        #foreach($elem in $inputRoot.Items) {{
            "commentId": "$elem.commentId.S",
            "userName": "$elem.userName.S",
            "message": "$elem.message.S"
        }}#if($foreach.hasNext),#end
	#end
    ]
}}
'''

[apis.c.routes."POST /nowhere".integration]
type = "aws"
uri = "arn:aws:apigateway:us-east-1:dynamodb:action/PutItem"
request_templates = {{ "application/json" = '{{"TableName": "Missing", "Item": {{"k": {{"S": "v"}}}}}}' }}
[[apis.c.routes."POST /nowhere".integration.responses]]
[[apis.c.routes."POST /nowhere".integration.responses]]
pattern = "400"
status = 404
templates = {{ "application/json" = '''{{"missing": "$input.path('$.__type').replaceAll('.*#', '')"}}''' }}

[apis.c.routes."POST /news".integration]
type = "aws"
uri = "arn:aws:apigateway:us-east-1:sns:action/Publish"
[apis.c.routes."POST /news".integration.request_parameters]
"integration.request.querystring.TopicArn" = "'{topic}'"
"integration.request.querystring.Message" = "method.request.querystring.message"
[[apis.c.routes."POST /news".integration.responses]]
templates = {{ "application/json" = '{{"published": true}}' }}

[apis.c.routes."POST /direct".integration]
type = "aws"
uri = "arn:aws:apigateway:us-east-1:sqs:path/123456789012/direct"
[apis.c.routes."POST /direct".integration.request_parameters]
"integration.request.querystring.Action" = "'SendMessage'"
"integration.request.querystring.MessageBody" = "method.request.body"

[apis.c.routes."PUT /files/{{key}}".integration]
type = "aws"
uri = "arn:aws:apigateway:us-east-1:s3:path/files/{{object}}"
method = "PUT"
request_parameters = {{ "integration.request.path.object" = "method.request.path.key" }}

[apis.c.routes."GET /files/{{key}}".integration]
type = "aws"
uri = "arn:aws:apigateway:us-east-1:s3:path/files/{{key}}"
method = "GET"

[stages.prod]
api = "c"
"#
        ),
        None,
    ))
}

fn send(gw: &Gateway, method: &str, path: &str, body: &str) -> Response {
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(gw.addr, raw.as_bytes()).expect("a response")
}

#[test]
fn rest_style_aws_integrations_call_each_service_in_its_protocol() {
    let mut m = Moto::start();
    let secret = m.field("secret");
    let gw = gateway(&m, &secret);

    // DynamoDB: AWS's comments templates, both ways
    for (user, msg) in [("ann", "first!"), ("bob", "second")] {
        let r = send(
            &gw,
            "POST",
            "/comments",
            &format!(r#"{{"pageId": "p1", "userName": "{user}", "message": "{msg}"}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.text(),
            format!(r#"{{"stored": "{}"}}"#, r.header("x-request-id").unwrap())
        );
    }
    assert_eq!(m.ask("ddb"), serde_json::json!(["first!", "second"]));
    let r = send(&gw, "GET", "/comments/p1", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value =
        serde_json::from_str(&r.text()).unwrap_or_else(|e| panic!("{e}: {}", r.text()));
    let mut msgs: Vec<&str> = v["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    msgs.sort();
    assert_eq!(msgs, ["first!", "second"]);
    // a service error selects its response
    let r = send(&gw, "POST", "/nowhere", "{}");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, r#"{"missing": "ResourceNotFoundException"}"#)
    );

    // SNS Publish (Query protocol) → the topic's SQS subscriber
    let r = send(&gw, "POST", "/news?message=hello%20world", "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, r#"{"published": true}"#),
        "{}",
        gw.log()
    );
    let inbox = m.field("inbox");
    let got = m.ask(&format!("sqs {inbox}"));
    let envelope: serde_json::Value = serde_json::from_str(got[0].as_str().unwrap()).unwrap();
    assert_eq!(envelope["Message"], "hello world");

    // SQS SendMessage by the queue's path, the body as the message
    let r = send(&gw, "POST", "/direct", r#"{"order": 7}"#);
    assert_eq!(r.status, 200, "{} {}", r.text(), gw.log());
    let direct = m.field("direct");
    assert_eq!(
        m.ask(&format!("sqs {direct}")),
        serde_json::json!([r#"{"order": 7}"#])
    );

    // S3 by path: PUT then GET
    let r = send(&gw, "PUT", "/files/note.txt", "a note");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(m.ask("s3 note.txt"), serde_json::json!("a note"));
    let r = send(&gw, "GET", "/files/note.txt", "");
    assert_eq!((r.status, r.text().as_str()), (200, "a note"));
}

#[test]
fn refused_credentials_are_a_500_not_the_services_answer() {
    let m = Moto::start();
    let gw = gateway(&m, "not-the-secret");
    for (method, path, body) in [
        ("POST", "/comments", r#"{"pageId": "p"}"#),
        ("POST", "/news?message=x", ""),
        ("GET", "/files/x", ""),
    ] {
        let r = send(&gw, method, path, body);
        assert_eq!(r.status, 500, "{path}: {}", r.text());
    }
    assert!(gw.wait_log(
        "refused the gateway's credentials",
        std::time::Duration::from_secs(5)
    ));
}

const WEB_IDENTITY: &str = r#"
import json, os, sys, time
# the setup below, then the gateway's own (unsigned) AssumeRoleWithWebIdentity;
# everything after must be signed with the role's temporary credentials
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"
import boto3
from moto.server import ThreadedMotoServer
s = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
s.start()
host, port = s.get_host_and_port()
url = f"http://{host}:{port}"
kw = dict(region_name="us-east-1", endpoint_url=url, aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
role = iam.create_role(RoleName="gateway", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Federated": "oidc"}, "Action": "sts:AssumeRoleWithWebIdentity"}]}))["Role"]["Arn"]  # 1
iam.put_role_policy(RoleName="gateway", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))   # 2
q = boto3.client("sqs", **kw).create_queue(QueueName="wi")["QueueUrl"]                             # 3
print(json.dumps({"url": url, "role": role, "queue": q}), flush=True)
for line in sys.stdin:
    # read back with moto's own backend (any signed client would need the role's keys)
    from moto.sqs.models import sqs_backends
    queue = sqs_backends["123456789012"]["us-east-1"].queues["wi"]
    print(json.dumps([m.body for m in queue._messages]), flush=True)
s.stop()
"#;

#[test]
fn web_identity_credentials_come_from_sts_and_sign_the_calls() {
    let mut moto = common::python::Script::start(PKGS, WEB_IDENTITY);
    let field = |k: &str| moto.field(k);
    let (url, role, queue) = (field("url"), field("role"), field("queue"));

    let dir = TempDir::new("webid");
    let token = dir.write("token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJnYXRld2F5In0.");
    let cfg = config(
        &format!(
            r#"
[aws]
region = "us-east-1"
credentials = "default"
endpoints = {{ sqs = "{url}" }}

[apis.w.routes."POST /q"]
integration = {{ type = "aws", action = "SQS-SendMessage", parameters = {{ QueueUrl = "{queue}", MessageBody = "$request.body" }} }}

[stages.prod]
api = "w"
"#
        ),
        None,
    );
    let path = dir.write("turnpike.toml", &cfg);
    let token = token.to_str().unwrap().to_string();
    let gw = Gateway::start_env(
        dir,
        path,
        &["run", "-c"],
        &[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &token),
            ("AWS_ROLE_ARN", &role),
            ("AWS_ROLE_SESSION_NAME", "edge-1"),
            ("AWS_ENDPOINT_URL_STS", &url),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let r = send(&gw, "POST", "/q", "from a web identity");
    assert_eq!(r.status, 200, "{} {}", r.text(), gw.log());
    let got = moto.ask("read");
    assert_eq!(got.trim(), r#"["from a web identity"]"#);
}
