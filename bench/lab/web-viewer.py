"""An admin with the dashboard open (bench/run.sh's SUT tproxy-relay-web), until process PID
exits: logs in, keeps the Live page's stream open and reads it, and polls what the page polls
(the status every 2 s, the overview every 10 s). Runs in its own session, pinned to the load's
CPU, so that its own CPU is not counted as the relay's; the relay's cost of serving it is.
Prints what it did when the relay is gone.

usage: web-viewer.py PID HOST:PORT PASSWORD"""
import json
import os
import socket
import sys
import time

pid, address, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
host, port = address.rsplit(":", 1)


def request(method, path, body=b"", cookie=None):
    s = socket.create_connection((host, int(port)), timeout=5)
    head = f"{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    s.sendall((head + "\r\n").encode() + body)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return data


cookie = None
while cookie is None and os.path.exists(f"/proc/{pid}"):
    try:
        reply = request("POST", "/api/login", json.dumps({"password": password}).encode())
        for line in reply.split(b"\r\n"):
            if line.lower().startswith(b"set-cookie: "):
                cookie = line[12:].split(b";")[0].decode()
    except OSError:
        pass
    if cookie is None:
        time.sleep(0.2)

stream = socket.create_connection((host, int(port)), timeout=5)
stream.sendall(f"GET /api/queries HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\n\r\n".encode())
stream.settimeout(0.2)
events = status_polls = overview_polls = 0
next_status = next_overview = time.monotonic()
while os.path.exists(f"/proc/{pid}"):
    try:
        chunk = stream.recv(1 << 20)
        if not chunk:
            break
        events += chunk.count(b"\n\ndata: ") + chunk.count(b"\n\nevent: ")
    except socket.timeout:
        pass
    except OSError:
        break
    now = time.monotonic()
    try:
        if now >= next_status:
            request("GET", "/api/status", cookie=cookie)
            status_polls += 1
            next_status = now + 2
        if now >= next_overview:
            request("GET", "/api/overview", cookie=cookie)
            overview_polls += 1
            next_overview = now + 10
    except OSError:
        pass
print(f"web-viewer.py: {events} events, {status_polls} status and {overview_polls} overview polls", file=sys.stderr)
