#!/usr/bin/env python3
"""A real upstream for turnpike's end-to-end tests.

Binds 127.0.0.1 on an ephemeral port (or argv[1]), prints the port on stdout, and serves
(over TLS when argv[2] and argv[3] name a PEM certificate chain and key):
  /status/N            answer status N
  /slow/MS             wait MS milliseconds, then answer
  /bytes/N             N bytes of 'x' with Content-Length
  /chunked/N           N bytes of 'y' sent chunked (8 KiB chunks)
  /close/N             N bytes of 'z' delimited by closing the connection (HTTP/1.0 style)
  /count               how many requests this process has served (before this one)
  /reset               close the connection without answering
  /garbage             a response with a malformed Content-Length
  /truncated           a head promising 100 bytes, then 10 of them and a close
  /notHTTP             bytes that are not HTTP at all
  /slowecho/MS/...     wait MS milliseconds, then echo
  anything else        echo: JSON with method, path, query, headers, body length and sha256,
                       `seq`, this request's number (a cache hit repeats an old one), `port`
                       (which upstream answered) and `peer_port` (which connection it came on);
                       each `h=Name:Value` query parameter becomes a response header
Request bodies are read and hashed in 64 KiB pieces, so large uploads use little memory.
"""
import hashlib
import json
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

COUNT = 0
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body go out in separate writes; with Nagle on, the body would wait
    # for the peer's delayed ACK (40 ms) on a reused connection.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def read_exactly(self, left, h):
        """Reads `left` body bytes in 64 KiB pieces into the hash; returns the count."""
        total = left
        while left:
            piece = self.rfile.read(min(left, 65536))
            if not piece:
                raise ConnectionError("short body")
            h.update(piece)
            left -= len(piece)
        return total

    def read_body(self):
        h = hashlib.sha256()
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                n += self.read_exactly(size, h)
                self.rfile.readline()
        else:
            n += self.read_exactly(int(self.headers.get("Content-Length", "0") or "0"), h)
        return n, h.hexdigest()

    def send_fixed(self, status, body, ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        global COUNT
        with LOCK:
            seen = COUNT
            COUNT += 1
        n, digest = self.read_body()
        path, _, query = self.path.partition("?")
        parts = path.strip("/").split("/")
        if parts[0] == "status" and len(parts) > 1:
            status = int(parts[1])
            if status in (204, 304):
                self.send_response(status)
                self.end_headers()
            else:
                self.send_fixed(status, b'{"status":%d}' % status)
        elif parts[0] == "slow" and len(parts) > 1:
            time.sleep(int(parts[1]) / 1000.0)
            self.send_fixed(200, b'{"slow":true}')
        elif parts[0] == "bytes" and len(parts) > 1:
            total = int(parts[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(total))
            self.end_headers()
            if self.command != "HEAD":
                block = b"x" * 65536
                left = total
                while left:
                    k = min(left, len(block))
                    self.wfile.write(block[:k])
                    left -= k
        elif parts[0] == "chunked" and len(parts) > 1:
            total = int(parts[1])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            left = total
            while left:
                k = min(left, 8192)
                self.wfile.write(b"%x\r\n" % k + b"y" * k + b"\r\n")
                left -= k
            self.wfile.write(b"0\r\n\r\n")
        elif parts[0] == "close" and len(parts) > 1:
            total = int(parts[1])
            self.wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n")
            self.wfile.write(b"z" * total)
            self.wfile.flush()
            self.close_connection = True
        elif parts[0] == "count":
            self.send_fixed(200, json.dumps({"count": seen}).encode())
        elif parts[0] == "truncated":
            # a head promising 100 bytes, 10 of them, then the connection closes
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            self.wfile.flush()
            time.sleep(0.05)
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
        elif parts[0] == "garbage":
            # a response no HTTP/1.1 parser should accept
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nhello")
            self.wfile.flush()
            self.close_connection = True
        elif parts[0] == "notHTTP":
            self.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
        elif parts[0] == "reset":
            self.close_connection = True
            self.connection.close()
        else:
            if parts[0] == "slowecho" and len(parts) > 1:
                time.sleep(int(parts[1]) / 1000.0)
            extra = [("X-Upstream", "echo")]
            for h in parse_qs(query).get("h", []):
                name, _, value = h.partition(":")
                extra.append((name, value))
            body = json.dumps({
                "seq": seen,
                "port": self.server.server_address[1],
                "peer_port": self.client_address[1],
                "method": self.command,
                "path": path,
                "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "header_list": [[k.lower(), v] for k, v in self.headers.items()],
                "body_len": n,
                "body_sha256": digest,
            }).encode()
            self.send_fixed(200, body, extra=extra)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    srv = Server(("127.0.0.1", port), Handler)
    if len(sys.argv) > 3:
        # upstream.py PORT CERT KEY: serve HTTPS
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(srv.server_address[1], flush=True)
    # Exit when the test that started us goes away (stdin closes).
    threading.Thread(target=lambda: (sys.stdin.read(), srv.shutdown()), daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
