"""QUIC and UDP 443 peers for the end-to-end tests (aioquic from PyPI).

    quicpeer.py cert DIR NAME...              a CA and a server certificate for NAME...
    quicpeer.py server HOST PORT DIR          an HTTP/3 server (DIR holds server.pem/key.pem)
    quicpeer.py get HOST PORT SNI CAFILE [--timeout S]
                                              one HTTP/3 GET; prints JSON {ok, status, body | error}
    quicpeer.py echo HOST PORT                a UDP echo server (any datagram comes back)
    quicpeer.py flows HOST PORT COUNT         COUNT datagrams, each from its own source port
                                              (20000 + i), so each is a new flow; prints JSON
                                              {sent, answered}
"""
import argparse
import asyncio
import datetime
import json
import socket
import sys
import time


def san(name):
    """A subject alternative name: an IP address as such (the list server's), else a DNS name."""
    import ipaddress
    from cryptography import x509
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_cert(directory, names):
    """A CA (DIR/ca.pem) and a server certificate for NAMES signed by it (server.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tproxy-relay test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([san(n) for n in names]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    with open(f"{directory}/ca.pem", "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(f"{directory}/server.pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(f"{directory}/key.pem", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def h3_protocols():
    from aioquic.asyncio import QuicConnectionProtocol
    from aioquic.h3.connection import H3Connection
    from aioquic.h3.events import DataReceived, HeadersReceived
    from aioquic.quic.events import ProtocolNegotiated

    class Server(QuicConnectionProtocol):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.h3 = None

        def quic_event_received(self, event):
            if isinstance(event, ProtocolNegotiated):
                self.h3 = H3Connection(self._quic)
            if self.h3 is None:
                return
            for e in self.h3.handle_event(event):
                if isinstance(e, HeadersReceived):
                    headers = dict(e.headers)
                    body = b"hello over h3 from " + headers.get(b":authority", b"?") + b" " + headers.get(b":path", b"/")
                    self.h3.send_headers(e.stream_id, [(b":status", b"200"), (b"content-length", str(len(body)).encode())])
                    self.h3.send_data(e.stream_id, body, end_stream=True)
                    self.transmit()

    class Client(QuicConnectionProtocol):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.h3 = H3Connection(self._quic)
            self.done = asyncio.get_event_loop().create_future()
            self.status = None
            self.body = b""

        def quic_event_received(self, event):
            for e in self.h3.handle_event(event):
                if isinstance(e, HeadersReceived):
                    self.status = int(dict(e.headers).get(b":status", b"0"))
                    if e.stream_ended and not self.done.done():
                        self.done.set_result(True)
                elif isinstance(e, DataReceived):
                    self.body += e.data
                    if e.stream_ended and not self.done.done():
                        self.done.set_result(True)

    return Server, Client


async def serve_h3(host, port, directory):
    from aioquic.asyncio import serve
    from aioquic.h3.connection import H3_ALPN
    from aioquic.quic.configuration import QuicConfiguration

    server_protocol, _ = h3_protocols()
    configuration = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    configuration.load_cert_chain(f"{directory}/server.pem", f"{directory}/key.pem")
    await serve(host, port, configuration=configuration, create_protocol=server_protocol)
    print("listening", flush=True)
    await asyncio.Future()


async def get(host, port, sni, cafile, timeout):
    from aioquic.asyncio import connect
    from aioquic.h3.connection import H3_ALPN
    from aioquic.quic.configuration import QuicConfiguration

    _, client_protocol = h3_protocols()
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=sni, idle_timeout=timeout)
    configuration.load_verify_locations(cafile)
    async with connect(host, port, configuration=configuration, create_protocol=client_protocol) as client:
        stream = client._quic.get_next_available_stream_id()
        client.h3.send_headers(stream, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", sni.encode()),
                                        (b":path", b"/index")], end_stream=True)
        client.transmit()
        await client.done
        return {"ok": True, "status": client.status, "body": client.body.decode(errors="replace")}


def echo(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, port))
    print("listening", flush=True)
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)


def flows(host, port, count):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    answered = 0
    window = []
    for i in range(count):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 20000 + i))
        s.connect((host, port))
        s.send(b"flow %d " % i + b"x" * 64)
        window.append(s)
        if len(window) >= 200:
            answered += drain(window)
            window = []
    answered += drain(window)
    return {"sent": count, "answered": answered}


def drain(sockets, timeout=2.0):
    deadline = time.monotonic() + timeout
    answered = 0
    pending = list(sockets)
    while pending and time.monotonic() < deadline:
        rest = []
        for s in pending:
            try:
                s.recv(2048)
                answered += 1
                s.close()
            except BlockingIOError:
                rest.append(s)
        pending = rest
        if pending:
            time.sleep(0.005)
    for s in pending:
        s.close()
    return answered


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cert"); c.add_argument("dir"); c.add_argument("names", nargs="+")
    s = sub.add_parser("server"); s.add_argument("host"); s.add_argument("port", type=int); s.add_argument("dir")
    g = sub.add_parser("get"); g.add_argument("host"); g.add_argument("port", type=int); g.add_argument("sni")
    g.add_argument("cafile"); g.add_argument("--timeout", type=float, default=5.0)
    e = sub.add_parser("echo"); e.add_argument("host"); e.add_argument("port", type=int)
    f = sub.add_parser("flows"); f.add_argument("host"); f.add_argument("port", type=int); f.add_argument("count", type=int)
    a = p.parse_args()
    if a.cmd == "cert":
        make_cert(a.dir, a.names)
    elif a.cmd == "server":
        asyncio.run(serve_h3(a.host, a.port, a.dir))
    elif a.cmd == "get":
        try:
            result = asyncio.run(asyncio.wait_for(get(a.host, a.port, a.sni, a.cafile, a.timeout), a.timeout))
        except Exception as error:  # a blocked or failed connection: say how
            result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(result))
        sys.exit(0 if result["ok"] else 1)
    elif a.cmd == "echo":
        echo(a.host, a.port)
    elif a.cmd == "flows":
        print(json.dumps(flows(a.host, a.port, a.count)))


if __name__ == "__main__":
    main()
