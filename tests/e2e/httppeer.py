"""HTTP peers for the metrics endpoint, run inside a lab namespace: a plain GET, and the hostile
ones (a 1 MB header, a slowloris, a flood of idle connections). Prints one JSON line."""
import json
import socket
import sys
import time


def get(host, port, path, timeout=5.0):
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: e2e\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
    return {"status": status, "headers": headers, "body": body.decode()}


def big_header(host, port, size):
    s = socket.create_connection((host, port), timeout=5)
    sent, reply = 0, b""
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX-Big: ")
        chunk = b"a" * 65536
        while sent < size:
            s.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the server answered and closed before the megabyte was out
    try:
        reply = s.recv(4096)
    except OSError:
        pass
    s.close()
    return {"sent": sent, "reply": reply.decode(errors="replace")[:40]}


def slowloris(host, port, count, seconds):
    conns = [socket.create_connection((host, port), timeout=5) for _ in range(count)]
    for c in conns:
        c.sendall(b"GET /metrics HTTP/1.1\r\n")
        c.setblocking(False)
    closed = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(closed) < count:
        for i, c in enumerate(conns):
            if i in closed:
                continue
            try:
                c.send(b"X")  # one byte of a header that never ends
                if c.recv(1) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.25)
    for c in conns:
        c.close()
    return {"opened": count, "closed_by_server": len(closed)}


def flood(host, port, count, hold):
    conns = []
    for _ in range(count):
        try:
            conns.append(socket.create_connection((host, port), timeout=2))
        except OSError:
            pass
    time.sleep(hold)
    for c in conns:
        c.close()
    return {"connected": len(conns)}


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "get":
        out = get(host, port, sys.argv[4])
    elif mode == "bigheader":
        out = big_header(host, port, int(sys.argv[4]))
    elif mode == "slowloris":
        out = slowloris(host, port, int(sys.argv[4]), float(sys.argv[5]))
    elif mode == "flood":
        out = flood(host, port, int(sys.argv[4]), float(sys.argv[5]))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
