"""Signs and sends requests with botocore's own SigV4 signers (SigV4Auth for the
Authorization header, SigV4QueryAuth for presigned URLs) over `requests`, as any
AWS SDK user's code does, optionally tampering with one part after signing.

argv[1]: the gateway's base URL; argv[2]: a JSON list of cases, each
  {"method", "path", "query", "body_len", "key", "secret", "region", "service",
   "form": "header"|"query", "expires", "age": seconds in the past to sign at,
   "tamper": null|"method"|"path"|"query"|"header"|"body"}
Prints a JSON list of {"status", "type", "body"}.
"""
import datetime
import json
import sys

import botocore.auth
import requests
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

base, cases = sys.argv[1], json.loads(sys.argv[2])
out = []
for c in cases:
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=c.get("age", 0))
    botocore.auth.get_current_datetime = lambda when=when: when.replace(tzinfo=None)
    body = b"x" * c.get("body_len", 0)
    url = base + c["path"] + (("?" + c["query"]) if c.get("query") else "")
    headers = {"Content-Type": "application/octet-stream", "X-Custom": "signed"}
    req = AWSRequest(method=c["method"], url=url, data=body, headers=headers)
    creds = Credentials(c.get("key", "AKIDALICE"), c.get("secret", "alice-secret"))
    if c.get("form") == "query":
        SigV4QueryAuth(creds, c.get("service", "execute-api"), c.get("region", "us-east-1"), expires=c.get("expires", 60)).add_auth(req)
    else:
        SigV4Auth(creds, c.get("service", "execute-api"), c.get("region", "us-east-1")).add_auth(req)
    p = req.prepare()
    method, url, hdrs, data = p.method, p.url, dict(p.headers), p.body
    t = c.get("tamper")
    if t == "method":
        method = "PATCH"
    elif t == "path":
        url = url.replace(c["path"], c["path"] + "x", 1)
    elif t == "query":
        url = url.replace("a=1", "a=2", 1)
    elif t == "header":
        hdrs["X-Custom"] = "changed"
    elif t == "body":
        data = b"y" + (data or b"")[1:]
    r = requests.request(method, url, headers=hdrs, data=data, timeout=30)
    out.append({"status": r.status_code, "type": r.headers.get("x-amzn-ErrorType", ""), "body": r.text[:2000]})
print(json.dumps(out))
