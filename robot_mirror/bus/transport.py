"""ZeroMQ plumbing shared by every process: endpoints, sockets, timed I/O.

Socket map (who binds what; every other party connects):

==========  =======  ================  ===========================================
endpoint    bound by  socket            carries
==========  =======  ================  ===========================================
state       sim       PUB               ``state`` every control tick
cmd         sim       ROUTER            ``cmd`` in, ``reply`` out (DEALER peers)
obs         perception PUB              ``obs.<robot>``
turn        turn      PUB               ``turn`` decisions
turn_rpc    turn      ROUTER            ``turn_query`` in, ``turn`` out (sim's DEALER)
control     supervisor ROUTER           ``hello``/``heartbeat``/``episode`` in, ``heartbeat``/``stop`` out
==========  =======  ================  ===========================================
"""

from __future__ import annotations

import json
import socket as _socket
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import zmq

from robot_mirror.bus.codec import DropCounter, Message, decode_or_drop, encode
from robot_mirror.bus.keys import user_id
from robot_mirror.errors import RobotMirrorError

LOOPBACK = "127.0.0.1"


@dataclass
class Endpoints:
    state: str
    cmd: str
    obs: str
    turn: str
    turn_rpc: str
    control: str

    @classmethod
    def allocate(cls, host: str = LOOPBACK) -> "Endpoints":
        """Free tcp ports on ``host``, so several runs can share a machine.

        The OS picks each port (bind to port 0); a port is released just
        before the node binds it again, a window other runs could only hit
        by binding the same port in the same millisecond."""
        ports = _free_ports(host, len(fields(cls)))
        return cls(*[f"tcp://{host}:{port}" for port in ports])

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Endpoints":
        try:
            data = json.loads(text)
            return cls(**{f.name: str(data[f.name]) for f in fields(cls)})
        except (ValueError, KeyError, TypeError) as exc:
            names = ", ".join(f.name for f in fields(cls))
            raise RobotMirrorError(f"endpoints: expected a JSON map with {names} ({exc})") from None

    @classmethod
    def load(cls, path: str | Path) -> "Endpoints":
        path = Path(path)
        if not path.is_file():
            raise RobotMirrorError(f"{path}: endpoints file not found")
        return cls.from_json(path.read_text())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")


def _free_ports(host: str, n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def make_socket(ctx: zmq.Context, kind: int, *, identity: str | None = None) -> zmq.Socket:
    """A socket that never blocks shutdown (linger 0) and bounds its queues."""
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.setsockopt(zmq.RCVHWM, 1000)
    if identity is not None:
        sock.setsockopt(zmq.IDENTITY, identity.encode())
    if kind == zmq.ROUTER:
        # A restarted node reconnects under the same identity and takes over.
        # Identities are claims, not credentials: who a peer is comes from
        # its CURVE key (``recv_routed``'s user); ``control`` routes by key.
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
    return sock


def bind(sock: zmq.Socket, endpoint: str, what: str) -> None:
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        raise RobotMirrorError(f"cannot bind {what} endpoint {endpoint}: {exc}") from None


def send(sock: zmq.Socket, topic: str, kind: str, *, identity: bytes | None = None, **kwargs) -> None:
    """Encode and send without blocking (a full queue drops, never stalls)."""
    send_frames(sock, encode(topic, kind, **kwargs), identity=identity)


def send_frames(sock: zmq.Socket, frames: list, *, identity: bytes | None = None) -> None:
    """Send encoded frames without blocking (a full queue drops, never stalls)."""
    if identity is not None:
        frames = [identity, *frames]
    try:
        sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
    except zmq.Again:
        pass


def recv(sock: zmq.Socket, drops: DropCounter, source: str, *, routed: bool = False
         ) -> tuple[bytes | None, Message | None]:
    """Receive one waiting message without blocking; malformed ones are
    dropped and counted. Returns ``(identity, message)``."""
    identity, _, msg = recv_routed(sock, drops, source, routed=routed)
    return identity, msg


def recv_routed(sock: zmq.Socket, drops: DropCounter, source: str, *, routed: bool = True
                ) -> tuple[bytes | None, str | None, Message | None]:
    """:func:`recv` plus the name of the CURVE key the message came with
    (``bus.keys.user_id``; None on a bus without keys): ``(identity, user, message)``."""
    try:
        frames = sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
    except zmq.Again:
        return None, None, None
    user = user_id(frames[0])
    identity = None
    if routed:
        if len(frames) < 2:
            drops.record(_short_frames(), source)
            return None, None, None
        identity, frames = frames[0].bytes, frames[1:]
    return identity, user, decode_or_drop(frames, drops, source)


def _short_frames():
    from robot_mirror.bus.codec import MalformedMessage

    return MalformedMessage("frame_count", "routed message without a body")


def recv_latest(sock: zmq.Socket, drops: DropCounter, source: str, kind: str,
                robot: str | None = None) -> Message | None:
    """Drain everything waiting and keep the newest ``kind`` message (for
    ``robot`` if given): a subscriber that fell behind skips to the present
    instead of working through stale ticks."""
    latest = None
    while True:
        _, msg = recv(sock, drops, source)
        if msg is None:
            return latest
        if msg.kind == kind and (robot is None or msg.robot == robot):
            latest = msg
