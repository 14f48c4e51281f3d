"""Modbus RTU on a pseudo-terminal, in front of a simulated device's registers.

The agent opens the pty's slave side as it would open ``/dev/ttyUSB0``. This side works as the
RTU/TCP gateways found in shelters do: each RTU request (unit id, PDU, CRC-16) is checked,
forwarded as Modbus TCP to the device simulator, and the answer sent back as an RTU frame with
its CRC. Only read requests (functions 1 to 4: eight bytes on the wire) are served; the agent
sends nothing else.
"""

from __future__ import annotations

import os
import random
import select
import socket
import struct
import termios
import threading
import time
import tty

from simulators.devices.faults import Fault

_READ_REQUEST_BYTES = 8  # unit, function, address (2), count (2), CRC (2)


def crc16(frame: bytes) -> bytes:
    """Modbus CRC-16 (polynomial 0xA001), low byte first as sent on the line."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


class RtuGateway:
    """A pty whose slave path is the device's serial port; requests go to ``tcp_port``."""

    def __init__(self, *, tcp_port: int) -> None:
        self.tcp_port = tcp_port
        self._master, self._slave = os.openpty()
        # Raw mode on both ends: no echo, no line discipline turning bytes into newlines.
        tty.setraw(self._master)
        tty.setraw(self._slave)
        attrs = termios.tcgetattr(self._slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self._slave, termios.TCSANOW, attrs)
        self.port = os.ttyname(self._slave)
        self.fault = Fault.NONE
        self.slow_s = 3.0
        self.crc_errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="rtu-gateway", daemon=True)
        self._tid = 0

    def start(self) -> None:
        """Start answering on the pty."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and close the pty."""
        self._stop.set()
        self._thread.join(timeout=5)
        os.close(self._master)
        os.close(self._slave)

    def _serve(self) -> None:
        buffer = b""
        with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=5) as tcp:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._master], [], [], 0.1)
                if not ready:
                    buffer = b""  # a 3.5-character silence ends a frame
                    continue
                buffer += os.read(self._master, 256)
                while len(buffer) >= _READ_REQUEST_BYTES:
                    frame, buffer = buffer[:_READ_REQUEST_BYTES], buffer[_READ_REQUEST_BYTES:]
                    answer = self._answer(tcp, frame)
                    if answer is None or self.fault in (Fault.SILENT, Fault.DOWN):
                        continue  # unplugged or mute: the request goes unanswered
                    if self.fault is Fault.GARBAGE:
                        answer = random.randbytes(len(answer))
                    elif self.fault is Fault.SLOW:
                        time.sleep(self.slow_s)
                    os.write(self._master, answer)

    def _answer(self, tcp: socket.socket, frame: bytes) -> bytes | None:
        if crc16(frame[:-2]) != frame[-2:]:
            self.crc_errors += 1
            return None  # a device ignores a corrupted request, as the protocol says
        unit, pdu = frame[0], frame[1:-2]
        self._tid = (self._tid + 1) % 0x10000
        tcp.sendall(struct.pack(">HHHB", self._tid, 0, len(pdu) + 1, unit) + pdu)
        header = _read_exactly(tcp, 7)
        _, _, length, _ = struct.unpack(">HHHB", header)
        body = _read_exactly(tcp, length - 1)
        reply = bytes([unit]) + body
        return reply + crc16(reply)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the device simulator closed the connection")
        data += chunk
    return data
