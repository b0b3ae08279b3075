"""The Policy of each frame in a dnstap Frame Streams file, read straight from the protobuf
(dnstap.proto: Dnstap.message = 14, Message.type = 1, Message.response_message = 14,
Message.policy = 15; Policy.type = 1, rule = 2, action = 3, match = 4): the Debian decoders
(golang-dnstap 0.4, dnstap-ldns 0.2) predate Policy and do not print it. A reader of its own, from
the schema, so the check does not lean on the relay's encoder."""
import struct

ACTIONS = {1: "NXDOMAIN", 2: "NODATA", 3: "PASS", 4: "DROP", 5: "TRUNCATE", 6: "LOCAL_DATA"}
MATCHES = {1: "QNAME", 2: "CLIENT_IP", 3: "RESPONSE_IP", 4: "NS_NAME", 5: "NS_IP"}
TYPES = {1: "AUTH_QUERY", 2: "AUTH_RESPONSE", 3: "RESOLVER_QUERY", 4: "RESOLVER_RESPONSE", 5: "CLIENT_QUERY",
         6: "CLIENT_RESPONSE", 7: "FORWARDER_QUERY", 8: "FORWARDER_RESPONSE"}


def varint(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def fields(data):
    """field number → list of values (ints for varints and fixed32, bytes for the rest)."""
    out, i = {}, 0
    while i < len(data):
        key, i = varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(data, i)
        elif wire == 2:
            length, i = varint(data, i)
            value, i = data[i:i + length], i + length
        elif wire == 5:
            value, i = struct.unpack("<I", data[i:i + 4])[0], i + 4
        elif wire == 1:
            value, i = struct.unpack("<Q", data[i:i + 8])[0], i + 8
        else:
            raise ValueError(f"wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def qname(wire):
    """The question name of a DNS message (no compression in a question)."""
    labels, i = [], 12
    while wire[i]:
        labels.append(wire[i + 1:i + 1 + wire[i]].decode())
        i += 1 + wire[i]
    return ".".join(labels)


def frames(path):
    """Per data frame: its message type, question name and policy (or None)."""
    data = open(path, "rb").read()
    i, result = 0, []
    while i + 4 <= len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        if length == 0:  # a control frame: its own length follows
            (control,) = struct.unpack(">I", data[i + 4:i + 8])
            i += 8 + control
            continue
        dnstap = fields(data[i + 4:i + 4 + length])
        i += 4 + length
        message = fields(dnstap[14][0])
        wire = (message.get(14) or message.get(10))[0]
        policy = None
        if 15 in message:
            p = fields(message[15][0])
            policy = {"type": p.get(1, [b""])[0].decode(), "rule": p.get(2, [b""])[0].decode(),
                      "action": ACTIONS.get(p.get(3, [0])[0]), "match": MATCHES.get(p.get(4, [0])[0])}
        result.append({"type": TYPES.get(message[1][0]), "qname": qname(wire), "policy": policy})
    return result
