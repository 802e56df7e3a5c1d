"""A request authorizer for the tests, reachable two ways:

- POST /authorize: the event as JSON (an `http` authorizer);
- POST /2015-03-31/functions/<name>/invocations: AWS's Lambda Invoke API, whose
  SigV4 signature is recomputed with botocore (the AWS SDK's own signer) from the
  signed headers and refused as Lambda refuses it when it does not match.

What it answers depends on the first identity value (the "token"):
  allow*   simple allow, context {tenant, token}       deny*  simple deny
  iam*     IAM policy: Allow GET …/orders/* and …/metered, Deny DELETE …/*,
           principalId, context, usageIdentifierKey "gold-key-0123…" (not for iamnokey*)
  wait*    allow after 300 ms (coalescing)              slow*  allow after 3 s
  fail*    HTTP 500 / a function error                  unauth* 401 / "Unauthorized"
  garbage* an answer that is not JSON
GET /calls?token=T says how many events carried T; GET /last?token=T the last one.
Prints its port, serves until stdin closes.
"""
import json
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEYS = {"AKIDTURNPIKETEST": "turnpike-test-secret"}
REGION = "us-east-1"
calls = Counter()
last = {}
lock = threading.Lock()


def token_of(event):
    if "authorizationToken" in event and event.get("type") == "TOKEN":
        return event["authorizationToken"]
    src = event.get("identitySource")
    if isinstance(src, list):
        return src[0] if src else ""
    return (src or "").split(",")[0]


def decide(event):
    """(kind, body): kind is ok, error or unauthorized."""
    token = token_of(event)
    with lock:
        calls[token] += 1
        last[token] = event
    if token.startswith("wait"):
        time.sleep(0.3)
    if token.startswith("slow"):
        time.sleep(3)
    if token.startswith("deny"):
        return "ok", {"isAuthorized": False}
    if token.startswith("iam"):
        return "ok", {
            "principalId": "user-" + token,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Action": "execute-api:Invoke", "Effect": "Allow",
                     "Resource": ["arn:aws:execute-api:*:*:shop/prod/GET/orders/*",
                                  "arn:aws:execute-api:*:*:shop/prod/GET/metered"]},
                    {"Action": "execute-api:Invoke", "Effect": "Deny",
                     "Resource": ["arn:aws:execute-api:*:*:shop/prod/DELETE/*"]},
                ],
            },
            "context": {"tier": "gold", "level": 3},
            **({} if token.startswith("iamnokey") else {"usageIdentifierKey": "gold-key-0123456789abcdefghijklmnop"}),
        }
    if token.startswith("fail"):
        return "error", {"errorMessage": "boom", "errorType": "Error"}
    if token.startswith("unauth"):
        return "unauthorized", {"errorMessage": "Unauthorized", "errorType": "Error"}
    if token.startswith("garbage"):
        return "ok", "<html>not json"
    return "ok", {"isAuthorized": True, "context": {"tenant": "acme", "token": token}}


def signature_ok(handler, body):
    """Recomputes the request's SigV4 signature with botocore."""
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    key, date, region, service, _ = fields["Credential"].split("/")
    if key not in KEYS:
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    if region != REGION or service != "lambda":
        return "InvalidSignatureException", "Credential should be scoped to a valid region or service"
    signed = fields["SignedHeaders"].split(";")
    headers = {h: handler.headers.get(h, "") for h in signed}
    url = "http://" + handler.headers["Host"] + handler.path
    req = AWSRequest(method=handler.command, url=url, data=body, headers=headers)
    req.context["timestamp"] = handler.headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(key, KEYS[key], handler.headers.get("X-Amz-Security-Token")), "lambda", REGION)
    canonical = signer.canonical_request(req)
    expected = signer.signature(signer.string_to_sign(req, canonical), req)
    if expected != fields["Signature"]:
        return "InvalidSignatureException", "The request signature we calculated does not match the signature you provided."
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urlsplit(self.path)
        token = parse_qs(u.query).get("token", [""])[0]
        with lock:
            if u.path == "/calls":
                return self.send(200, {"n": calls[token]})
            if u.path == "/last":
                return self.send(200, last.get(token, {}))
        self.send(404, {"message": "no such path"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        path = urlsplit(self.path).path
        if path == "/authorize":
            kind, answer = decide(json.loads(body))
            if kind == "error":
                return self.send(500, {"message": "boom"})
            if kind == "unauthorized":
                return self.send(401, {"message": "Unauthorized"})
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            return self.send(200, data)
        if path.startswith("/2015-03-31/functions/") and path.endswith("/invocations"):
            refused = signature_ok(self, body)
            if refused:
                kind, message = refused
                status = 401 if kind == "UnrecognizedClientException" else 403
                return self.send(status, {"message": message}, [("x-amzn-ErrorType", kind)])
            kind, answer = decide(json.loads(body))
            if kind != "ok":
                return self.send(200, answer, [("X-Amz-Function-Error", "Unhandled")])
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            return self.send(200, data, [("X-Amz-Executed-Version", "$LATEST")])
        self.send(404, {"message": "no such path"})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
