"""A Lambda host for the tests: serves the real Invoke API path
(POST /2015-03-31/functions/<name>[:qualifier]/invocations), recomputes every
request's SigV4 signature with botocore (the AWS SDK's own signer) and refuses a
mismatch as Lambda does, validates every event against aws-lambda-powertools'
APIGatewayProxyEventModel (1.0) or APIGatewayProxyEventV2Model (2.0), and runs one of
the functions below by name:

  echo       the event back as the body (1.0/2.0 structured answer), cookies and a
             multi-value header, the qualifier in x-qualifier
  bare       {"message": "hi"}: 2.0's shortcut (no statusCode)
  binary     bytes 0..255, base64, application/octet-stream
  error      raises: a function error, with a log tail header that must not leak
  malformed  {"statusCode": "abc"}
  slow       answers after 3 s
  big        a 6,000,000-byte body
  throttled  429 TooManyRequestsException on the 1st, 3rd, … call, echo on the others
  overloaded 429 always
  authz      a request authorizer's simple answer: allowed, context {tenant, level}
  calc       a custom (non-proxy) integration's function, AWS's calculator tutorial:
             {"a", "b", "op"} → {"a", "b", "op", "c"}; a bad operator or operand is a
             function error "400 Invalid Operator" / "400 Invalid Operand"
  jsonerror  a function error whose errorMessage is JSON text
             ({"errorType": "NotFound", "httpStatus": 404, "message": "no pet 7"})
Events of calc and jsonerror are not proxy events and are not validated as such.

GET /log?fn=NAME answers {"calls": n, "invalid": [validation errors], "last": event}.
Prints its port; serves until stdin closes.
"""
import base64
import json
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
)
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEYS = {"AKIDTURNPIKETEST": "turnpike-test-secret"}
REGION = "us-east-1"
lock = threading.Lock()
log = defaultdict(lambda: {"calls": 0, "invalid": [], "last": None})


def signature_error(h, body):
    auth = h.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return 403, "MissingAuthenticationTokenException", "Missing Authentication Token"
    fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    key, _, region, service, _ = fields["Credential"].split("/")
    if key not in KEYS:
        return 403, "UnrecognizedClientException", "The security token included in the request is invalid."
    headers = {n: h.headers.get(n, "") for n in fields["SignedHeaders"].split(";")}
    req = AWSRequest(method=h.command, url="http://" + h.headers["Host"] + h.path, data=body, headers=headers)
    req.context["timestamp"] = h.headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(key, KEYS[key]), "lambda", REGION)
    expected = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
    if region != REGION or service != "lambda" or expected != fields["Signature"]:
        return 403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided."
    return None


def run(name, qualifier, event):
    v2 = event.get("version") == "2.0"
    if name == "authz":
        return 200, {"isAuthorized": True, "context": {"tenant": "acme", "level": 3}}, []
    if name == "calc":
        fail = lambda m: (200, {"errorMessage": m, "errorType": "Error"}, [("X-Amz-Function-Error", "Unhandled")])
        a, b, op = event.get("a"), event.get("b"), event.get("op")
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return fail("400 Invalid Operand")
        ops = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
               "/": lambda: a / b if b else None}
        if op not in ops:
            return fail("400 Invalid Operator")
        c = ops[op]()
        if c is None:
            return fail("400 Invalid Operand")
        return 200, {"a": a, "b": b, "op": op, "c": c}, []
    if name == "jsonerror":
        return 200, {"errorMessage": json.dumps({"errorType": "NotFound", "httpStatus": 404, "message": "no pet 7"}),
                     "errorType": "Error"}, [("X-Amz-Function-Error", "Unhandled")]
    if name == "bare":
        return 200, {"message": "hi"}, []
    if name == "binary":
        return 200, {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                     "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}, []
    if name == "error":
        return 200, {"errorMessage": "boom", "errorType": "Exception", "stackTrace": ["secret stack"]}, [
            ("X-Amz-Function-Error", "Unhandled"),
            ("X-Amz-Log-Result", base64.b64encode(b"SECRET LOG TAIL").decode())]
    if name == "malformed":
        return 200, {"statusCode": "abc"}, []
    if name == "slow":
        time.sleep(3)
    if name == "big":
        return 200, {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": "x" * 6_000_000}, []
    if name == "overloaded" or (name == "throttled" and log[name]["calls"] % 2 == 0):
        return 429, {"message": "Rate Exceeded.", "Type": "User", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}, [
            ("x-amzn-ErrorType", "TooManyRequestsException")]
    answer = {"statusCode": 201, "headers": {"content-type": "application/json", "x-qualifier": qualifier or "-"},
              "body": json.dumps(event)}
    if v2:
        answer["cookies"] = ["a=1; Path=/", "b=2"]
    else:
        answer["multiValueHeaders"] = {"x-multi": ["one", "two"]}
    return 200, answer, [("X-Amz-Executed-Version", "7")]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "req-1")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urlsplit(self.path)
        name = parse_qs(u.query).get("fn", [""])[0]
        with lock:
            return self.send(200, log[name])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        path = urlsplit(self.path).path
        prefix, suffix = "/2015-03-31/functions/", "/invocations"
        if not (path.startswith(prefix) and path.endswith(suffix)):
            return self.send(404, {"message": "no such path"})
        refused = signature_error(self, body)
        if refused:
            status, kind, message = refused
            return self.send(status, {"message": message}, [("x-amzn-ErrorType", kind)])
        function = unquote(path[len(prefix):-len(suffix)])
        # a name, name:qualifier, or an ARN arn:aws:lambda:r:acct:function:name[:qualifier]
        parts = function.split(":")
        if function.startswith("arn:"):
            name, qualifier = parts[6], (parts[7] if len(parts) > 7 else None)
        else:
            name, qualifier = parts[0], (parts[1] if len(parts) > 1 else None)
        event = json.loads(body)
        model = APIGatewayProxyEventV2Model if event.get("version") == "2.0" else APIGatewayProxyEventModel
        problem = None
        if name not in ("authz", "calc", "jsonerror"):
            try:
                model.model_validate(event)
            except Exception as e:  # a validation error: recorded for the test to show
                problem = str(e)
        status, answer, headers = run(name, qualifier, event)
        with lock:
            entry = log[name]
            entry["calls"] += 1
            entry["last"] = event
            if problem:
                entry["invalid"].append(problem)
        self.send(status, answer, headers)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
