"""An HTTP client for the dashboard, run inside a lab namespace (the LAN side): log in, then GET
or POST with the session cookie and CSRF token kept in a small JSON file between calls; and a
flood of idle connections held open while DNS and the login page are tried. Prints one JSON line
per call: status, headers, body."""
import json
import socket
import subprocess
import sys
import time


def request(host, port, method, path, body=b"", headers=None, timeout=10.0):
    s = socket.create_connection((host, int(port)), timeout=timeout)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
    fields = {}
    for line in head.decode(errors="replace").split("\r\n")[1:]:
        if ": " in line:
            name, value = line.split(": ", 1)
            fields[name.lower()] = value
    return {"status": status, "headers": fields, "body": rest.decode(errors="replace")}


def main():
    command, host, port = sys.argv[1], sys.argv[2], sys.argv[3]
    if command == "login":
        password, jar = sys.argv[4], sys.argv[5]
        reply = request(host, port, "POST", "/api/login", json.dumps({"password": password}).encode(), {"Content-Type": "application/json"})
        if reply["status"] == 200:
            cookie = reply["headers"]["set-cookie"].split(";", 1)[0]
            json.dump({"cookie": cookie, "csrf": json.loads(reply["body"])["csrf"]}, open(jar, "w"))
        print(json.dumps(reply))
    elif command in ("get", "post"):
        path, jar = sys.argv[4], sys.argv[5]
        body = sys.argv[6].encode() if command == "post" and len(sys.argv) > 6 else b"{}"
        session = json.load(open(jar)) if jar != "-" else {}
        headers = {"Content-Type": "application/json"}
        if session:
            headers["Cookie"] = session["cookie"]
            if command == "post" and "--no-csrf" not in sys.argv:
                headers["X-CSRF-Token"] = session["csrf"]
        print(json.dumps(request(host, port, command.upper(), path, body, headers)))
    elif command == "stream":
        # Reads an event stream for `seconds`, then prints what came.
        path, jar, seconds = sys.argv[4], sys.argv[5], float(sys.argv[6])
        session = json.load(open(jar))
        s = socket.create_connection((host, int(port)), timeout=seconds)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {session['cookie']}\r\n\r\n".encode())
        data, deadline = b"", time.monotonic() + seconds
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            except socket.timeout:
                pass
        s.close()
        print(json.dumps({"data": data.decode(errors="replace")}))
    elif command == "idle":
        # COUNT idle connections held open; meanwhile the login page and a DNS query.
        count = int(sys.argv[4])
        conns = []
        for _ in range(count):
            conns.append(socket.create_connection((host, int(port)), timeout=5))
        time.sleep(0.5)
        page = request(host, port, "GET", "/login")
        dns = subprocess.run(["kdig", "+time=2", "+retry=0", "@10.53.2.53", "www.lab.test", "A"], capture_output=True, text=True).stdout
        open_after = 0
        for c in conns:
            c.setblocking(False)
            try:
                open_after += 0 if c.recv(1) == b"" else 1
            except BlockingIOError:
                open_after += 1
            except OSError:
                pass
            c.close()
        print(json.dumps({"page": page["status"], "dns": "NOERROR" if "status: NOERROR" in dns else dns[-200:], "still_open": open_after}))
    elif command == "bigheader":
        size = int(sys.argv[4])
        s = socket.create_connection((host, int(port)), timeout=5)
        try:
            s.sendall(b"GET /login HTTP/1.1\r\nX-Big: ")
            chunk, sent = b"a" * 65536, 0
            while sent < size:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        try:
            reply = s.recv(4096)
        except OSError:
            reply = b""
        s.close()
        print(json.dumps({"reply": reply.decode(errors="replace")[:40]}))


if __name__ == "__main__":
    main()
