#!/usr/bin/env python3
"""An upstream for the mapping-template tests (no packages needed):

  POST /soap        parses the body as XML with ElementTree (a SOAP-style service):
                    <GetPet><id>N</id><name>S</name><tags><tag>…</tag>…</tags></GetPet>
                    → 200 text/xml <GetPetResponse> echoing what it parsed; anything
                    it cannot parse → 400 text/xml <Fault>
  GET  /pets        the PetStore's three pets as JSON
  ANY  /status/N    status N with {"code": N, "message": "status N"}
  ANY  anything     echo: JSON {method, path, query, headers, body} with an x-upstream
                    header and a repeated set-cookie

Prints its port; serves until stdin closes.
"""
import json
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qsl

PETS = [{"id": 1, "type": "dog", "price": 249.99},
        {"id": 2, "type": "cat", "price": 124.99},
        {"id": 3, "type": "fish", "price": 0.99}]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, body, ctype="application/json", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        u = urlsplit(self.path)
        if u.path == "/soap":
            try:
                root = ET.fromstring(body)
                if root.tag != "GetPet":
                    raise ValueError("expected GetPet, got " + root.tag)
                pet_id = int(root.findtext("id"))
                name = root.findtext("name") or ""
                tags = [t.text or "" for t in root.iter("tag")]
            except Exception as e:
                fault = ET.Element("Fault")
                ET.SubElement(fault, "faultstring").text = str(e)
                return self.answer(400, ET.tostring(fault), "text/xml")
            out = ET.Element("GetPetResponse")
            pet = ET.SubElement(out, "pet")
            ET.SubElement(pet, "id").text = str(pet_id)
            ET.SubElement(pet, "name").text = name
            ET.SubElement(pet, "tagCount").text = str(len(tags))
            ET.SubElement(pet, "tags").text = ",".join(tags)
            return self.answer(200, ET.tostring(out), "text/xml")
        if u.path == "/pets":
            return self.answer(200, json.dumps(PETS), headers=[("x-total", "3")])
        if u.path.startswith("/status/"):
            n = int(u.path.split("/")[2])
            return self.answer(n, json.dumps({"code": n, "message": "status %d" % n}))
        echo = {"method": self.command, "path": u.path, "query": parse_qsl(u.query, keep_blank_values=True),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace")}
        self.answer(200, json.dumps(echo), headers=[("x-upstream", "echo"), ("set-cookie", "a=1"), ("set-cookie", "b=2")])

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
