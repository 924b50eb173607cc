"""Live log streaming as a user's browser gets it: zuul-web's console-stream websocket.

zuul-web looks up which executor runs the build (its `hostname` in
ZooKeeper, here `%(ZUUL_EXECUTOR_HOSTNAME)s`) and relays the executor's finger
port. A minimal RFC 6455 client (stdlib only): one masked text frame with the
request, then the server's frames until it closes.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct


def _frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A final, masked client frame (clients must mask: RFC 6455 5.3)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("websocket closed mid-frame")
        data += chunk
    return data


def console_stream(port: int, tenant: str, build_uuid: str, timeout: float = 300.0) -> tuple[str, int | None]:
    """(text streamed, close code) for a build's console log through zuul-web on 127.0.0.1:port."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    with sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET /api/tenant/{tenant}/console-stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"zuul-web closed the websocket handshake: {response!r}")
            response += chunk
        head, rest = response.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"zuul-web refused the websocket: {head.decode(errors='replace')}")
        sock.sendall(_frame(json.dumps({"uuid": build_uuid, "logfile": "console.log"}).encode()))
        buffer, text, code = rest, [], None
        while True:
            while len(buffer) < 2:
                chunk = sock.recv(65536)
                if not chunk:
                    return "".join(text), code
                buffer += chunk
            opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
            offset = 2
            if length == 126:
                buffer += _read_exact(sock, max(0, 4 - len(buffer)))
                length, offset = struct.unpack("!H", buffer[2:4])[0], 4
            elif length == 127:
                buffer += _read_exact(sock, max(0, 10 - len(buffer)))
                length, offset = struct.unpack("!Q", buffer[2:10])[0], 10
            need = offset + length - len(buffer)
            if need > 0:
                buffer += _read_exact(sock, need)
            payload, buffer = buffer[offset:offset + length], buffer[offset + length:]
            if opcode == 0x8:  # close
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return "".join(text), code
            if opcode in (0x1, 0x0):
                text.append(payload.decode(errors="replace"))
