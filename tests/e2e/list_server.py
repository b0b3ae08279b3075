"""A list server for the URL-list tests, run in the lab's `up` namespace.

    list_server.py cert DIR HOST_IP          -> DIR/ca.pem, DIR/server.pem, DIR/key.pem (SAN: the IP)
    list_server.py serve DIR ADDRESS PORT [--tls]

Serves DIR/list.txt at /list.txt with an ETag (the content's hash) and Last-Modified, and answers
304 to a matching If-None-Match. DIR/mode (read at each request) makes it misbehave:
ok | 500 | truncated (declares more than it sends) | huge (100 MB) | garbage (binary) | html.
Every request is appended to DIR/requests.log as `METHOD PATH STATUS inm=<If-None-Match>`.
"""
import datetime
import hashlib
import http.server
import ipaddress
import os
import ssl
import sys


def make_cert(directory, host):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tproxy-relay list test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    with open(f"{directory}/ca.pem", "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(f"{directory}/server.pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(f"{directory}/key.pem", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


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
        make_cert(sys.argv[2], sys.argv[3])
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
