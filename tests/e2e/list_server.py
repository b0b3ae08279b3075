"""A list server for the URL-list tests, run in the lab's `up` namespace.

    list_server.py cert DIR HOST_IP          -> DIR/ca.pem, DIR/server.pem, DIR/key.pem (SAN: the IP; quicpeer's)
    list_server.py serve DIR ADDRESS PORT [--tls]

Serves DIR/list.txt at /list.txt with an ETag (the content's hash) and answers
304 to a matching If-None-Match. DIR/mode (read at each request) makes it misbehave:
ok | 500 | truncated (declares more than it sends) | huge (100 MB) | garbage (binary) | html.
Every request is appended to DIR/requests.log as `METHOD PATH STATUS inm=<If-None-Match>`.
"""
import hashlib
import http.server
import os
import ssl
import sys

from quicpeer import make_cert  # the same test CA and server certificate (an IP address as the name)


def handler_for(directory):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def record(self, status):
            with open(os.path.join(directory, "requests.log"), "a") as f:
                f.write(f"{self.command} {self.path} {status} inm={self.headers.get('If-None-Match', '-')}\n")

        def do_GET(self):
            try:
                mode = open(os.path.join(directory, "mode")).read().strip()
            except FileNotFoundError:
                mode = "ok"
            if self.path != "/list.txt":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.record(404)
                return
            if mode == "500":
                body = b"internal error\n"
                self.send_response(500)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.record(500)
                return
            if mode == "truncated":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"||cut.lab.test^\n" * 100)
                self.wfile.flush()
                self.close_connection = True
                self.record("200-truncated")
                return
            if mode == "huge":
                self.send_response(200)
                self.send_header("Content-Length", str(100 << 20))
                self.end_headers()
                line = b"||huge.lab.test^\n" * 4096
                sent = 0
                try:
                    while sent < (100 << 20):
                        chunk = line[: min(len(line), (100 << 20) - sent)]
                        self.wfile.write(chunk)
                        sent += len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.record(f"200-huge sent={sent}")
                return
            if mode == "garbage":
                body = os.urandom(4096) + b"\x00"
            elif mode == "html":
                body = b"<!DOCTYPE html>\n<html><body>Please log in to the hotel Wi-Fi</body></html>\n"
            else:
                body = open(os.path.join(directory, "list.txt"), "rb").read()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if mode == "ok" and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                self.record(304)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            if mode == "ok":
                self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)
            self.record(200)

    return Handler


def main():
    if sys.argv[1] == "cert":
        make_cert(sys.argv[2], [sys.argv[3]])
        return
    directory, address, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
    family = http.server.ThreadingHTTPServer
    server = family((address, port), handler_for(directory))
    if "--tls" in sys.argv:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(f"{directory}/server.pem", f"{directory}/key.pem")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("serving", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
