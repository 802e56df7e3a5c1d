//! `aws` service integrations end to end (DESIGN §9.3, issue 17) against moto's
//! server with its IAM signature checking on: an IAM user and access key created in
//! moto, the gateway signing with them, and what it sent read back with boto3 (SQS
//! messages, Kinesis records, EventBridge events delivered to an SQS queue, Step
//! Functions executions). Wrong credentials are refused by moto and reported as a
//! 500 by the gateway, never a hang.

mod common;

use std::time::{Duration, Instant};

use common::*;

const PKGS: &[&str] = &["moto[server]==5.2.5", "boto3==1.44.8"];

/// moto with signature checking, and a line-oriented reader for the test to ask
/// it what arrived (`sqs QUEUE`, `kinesis`, `sfn`).
struct Moto {
    script: common::python::Script,
    url: String,
    key: String,
    secret: String,
    queue: String,
    events_queue: String,
    machine: String,
}

const SCRIPT: &str = r#"
import json, os, sys, time
# every request after the setup below must be signed with a key moto knows
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
sqs = boto3.client("sqs", **kw)
q = sqs.create_queue(QueueName="orders")["QueueUrl"]                                       # 4
eq = sqs.create_queue(QueueName="events")["QueueUrl"]                                      # 5
boto3.client("kinesis", **kw).create_stream(StreamName="clicks", ShardCount=1)             # 6
ev = boto3.client("events", **kw)
ev.put_rule(Name="all", EventPattern=json.dumps({"source": ["turnpike.test"]}))            # 7
ev.put_targets(Rule="all", Targets=[{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:events"}])  # 8
sm = boto3.client("stepfunctions", **kw).create_state_machine(name="flow", roleArn="arn:aws:iam::123456789012:role/x",
    definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]  # 9
print(json.dumps({"url": url, "key": k["AccessKeyId"], "secret": k["SecretAccessKey"], "queue": q,
                  "events_queue": eq, "machine": sm}), flush=True)
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
    elif cmd[0] == "kinesis":
        c = boto3.client("kinesis", **ok)
        shard = c.describe_stream(StreamName="clicks")["StreamDescription"]["Shards"][0]["ShardId"]
        it = c.get_shard_iterator(StreamName="clicks", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        print(json.dumps([r["Data"].decode() for r in c.get_records(ShardIterator=it)["Records"]]), flush=True)
    elif cmd[0] == "sfn":
        c = boto3.client("stepfunctions", **ok)
        ex = c.list_executions(stateMachineArn=sm)["executions"]
        print(json.dumps([c.describe_execution(executionArn=e["executionArn"])["input"] for e in ex]), flush=True)
s.stop()
"#;

impl Moto {
    fn start() -> Moto {
        let script = common::python::Script::start(PKGS, SCRIPT);
        Moto {
            url: script.field("url"),
            key: script.field("key"),
            secret: script.field("secret"),
            queue: script.field("queue"),
            events_queue: script.field("events_queue"),
            machine: script.field("machine"),
            script,
        }
    }

    fn ask(&mut self, cmd: &str) -> String {
        self.script.ask(cmd)
    }
}

fn gateway(m: &Moto, secret: &str) -> Gateway {
    let u = &m.url;
    Gateway::start(&config(
        &format!(
            r#"
[aws]
region = "us-east-1"
credentials = {{ access_key = "{key}", secret = "{secret}" }}
endpoints = {{ sqs = "{u}", kinesis = "{u}", eventbridge = "{u}", sfn = "{u}" }}

[apis.q.routes."POST /orders/{{id}}"]
integration = {{ type = "aws", action = "SQS-SendMessage", parameters = {{ QueueUrl = "{queue}", MessageBody = "$request.body", MessageGroupId = "$request.header.x-group" }} }}

[apis.q.routes."GET /orders"]
integration = {{ type = "aws", action = "SQS-ReceiveMessage", parameters = {{ QueueUrl = "{queue}", MaxNumberOfMessages = "$request.querystring.max" }} }}

[apis.q.routes."POST /clicks/{{user}}"]
integration = {{ type = "aws", action = "Kinesis-PutRecord", parameters = {{ StreamName = "clicks", Data = "$request.body", PartitionKey = "$request.path.user" }} }}

[apis.q.routes."POST /events"]
integration = {{ type = "aws", action = "EventBridge-PutEvents", parameters = {{ Source = "turnpike.test", DetailType = "$request.body.kind", Detail = "$request.body.detail" }} }}

[apis.q.routes."POST /flows"]
integration = {{ type = "aws", action = "StepFunctions-StartExecution", parameters = {{ StateMachineArn = "{machine}", Input = "$request.body", Name = "$context.requestId" }} }}

[stages.prod]
api = "q"
"#,
            key = m.key,
            queue = m.queue,
            machine = m.machine,
        ),
        None,
    ))
}

fn post(gw: &Gateway, path: &str, headers: &str, body: &str) -> Response {
    request(
        gw.addr,
        format!("POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes(),
    )
    .expect("a response")
}

#[test]
fn actions_really_land_in_the_services() {
    let mut m = Moto::start();
    let gw = gateway(&m, &m.secret.clone());
    // SQS: sent, then read back by boto3
    let r = post(&gw, "/orders/7", "", r#"{"order":7}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("MessageId"), "{}", r.text());
    let got = m.ask(&format!("sqs {}", m.queue));
    assert!(got.contains(r#"{\"order\":7}"#), "{got}");
    // SQS receive through the gateway (the queue is empty again: nothing, but a 200)
    post(&gw, "/orders/8", "", "second");
    let r = get(gw.addr, "/orders?max=5");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("second"), "{}", r.text());
    // Kinesis
    let r = post(&gw, "/clicks/alice", "", "click-1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(m.ask("kinesis").contains("click-1"));
    // EventBridge, delivered by its rule to an SQS queue
    let r = post(
        &gw,
        "/events",
        "",
        r#"{"kind":"order.placed","detail":{"id":7}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains(r#""FailedEntryCount": 0"#)
            || r.text().contains(r#""FailedEntryCount":0"#),
        "{}",
        r.text()
    );
    let got = m.ask(&format!("sqs {}", m.events_queue));
    assert!(got.contains("order.placed"), "{got}");
    // Step Functions
    let r = post(&gw, "/flows", "", r#"{"run":1}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("executionArn"), "{}", r.text());
    assert!(m.ask("sfn").contains(r#"{\"run\":1}"#));
}

#[test]
fn bad_parameters_and_wrong_credentials() {
    let m = Moto::start();
    // a required parameter the request does not give: 400 before any call
    let gw = gateway(&m, &m.secret.clone());
    let r = post(&gw, "/events", "", r#"{"detail":{}}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    drop(gw);
    let gw = gateway(&m, "not-the-secret");
    let t0 = Instant::now();
    let r = post(&gw, "/orders/1", "", "x");
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, r#"{"message": "Internal server error"}"#)
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(
        gw.wait_log("refused the gateway's credentials", Duration::from_secs(2)),
        "{}",
        gw.log()
    );
}

#[test]
fn check_knows_the_actions_and_their_parameters() {
    let dir = TempDir::new("aws-check");
    let path = dir.write(
        "bad.toml",
        r#"
[aws]
region = "us-east-1"
credentials = { access_key = "AKID", secret = "s" }

[apis.a.routes."POST /a"]
integration = { type = "aws", action = "SQS-Explode", parameters = {} }

[apis.a.routes."POST /b"]
integration = { type = "aws", action = "SQS-SendMessage", parameters = { QueueUrl = "q" } }

[apis.a.routes."POST /c/{id}"]
integration = { type = "aws", action = "SQS-SendMessage", parameters = { QueueUrl = "q", MessageBody = "$request.path.nope" } }

[apis.a.routes."POST /d"]
integration = { type = "aws", action = "SQS-SendMessage", parameters = { QueueUrl = "q", MessageBody = "$request.bogus" } }

[stages.s]
api = "a"
"#,
    );
    check_reports(
        &path,
        &[
            "aws action `SQS-Explode` is not one turnpike knows",
            "SQS-SendMessage needs the parameter `MessageBody`",
            "the route has no path parameter `nope`",
            "`$request.bogus` is not a mapping value",
        ],
    );
}
