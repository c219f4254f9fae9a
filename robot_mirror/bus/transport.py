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

Bounded input. Every socket sets ``ZMQ_MAXMSGSIZE`` (a bound on each inbound
frame; a peer that sends a longer one is disconnected by libzmq before the
frame is buffered), chosen from the kinds the socket receives:
:data:`INBOUND_LIMITS` for the bound endpoints (applied by :func:`bind`),
:data:`CONNECTED_LIMITS` by socket type for the connecting side. A publisher
receives nothing but subscription frames (one flag byte and a topic prefix),
so one huge subscription can no longer stall it or inflate its memory.
What libzmq cannot bound: the *number* of distinct short subscriptions a
connected peer holds (each lives in the publisher's trie until that peer
disconnects); only the run's credentials keep such a peer out.

Counting what arrives at an endpoint. ZeroMQ never hands a publisher's
inbound traffic to the application, so :class:`EndpointWatch` counts what can
be seen at every bound endpoint through a socket monitor, drained by its own
thread (an undrained monitor blocks libzmq's I/O thread): connections
accepted, connections closed (a peer cut for an oversize frame is one of
these: libzmq does not say why), and handshakes refused (junk bytes, a
socket type that cannot talk to this one, failed authentication), the last
also as drops of reason ``handshake_failed``. Individual frames a publisher
discards (a SUB never sends anything but subscriptions) are not countable.
"""

from __future__ import annotations

import json
import socket as _socket
import threading
import weakref
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import zmq

from robot_mirror.bus.codec import DropCounter, Message, decode_or_drop, encode
from robot_mirror.bus.keys import user_id
from robot_mirror.bus.schema import MAX_HEADER_BYTES, MAX_MESSAGE_BYTES
from robot_mirror.errors import RobotMirrorError

LOOPBACK = "127.0.0.1"
_WATCHES: "weakref.WeakKeyDictionary[zmq.Socket, EndpointWatch]" = weakref.WeakKeyDictionary()

#: Longest topic (schema.TOPIC_RE allows 1-64 ASCII characters; a test keeps them equal).
MAX_TOPIC_BYTES = 64
#: A subscription frame: one flag byte (1 subscribe, 0 cancel), then a topic prefix.
SUBSCRIPTION_BYTES = 1 + MAX_TOPIC_BYTES
#: What a publisher must still accept: libzmq applies MAXMSGSIZE to the
#: security handshake too, and a CURVE INITIATE (vouch, box and metadata
#: such as the socket's identity) is a few hundred bytes.
HANDSHAKE_BYTES = 4096
PUBLISHER_IN_BYTES = max(SUBSCRIPTION_BYTES, HANDSHAKE_BYTES)

#: Inbound frame limit of each bound endpoint (``bind(..., what)``), from the
#: kinds it receives. Publishers: subscriptions only. ``cmd``, ``turn_rpc``
#: and ``control`` receive header-only kinds (hello, heartbeat, episode,
#: turn_query) or cmd, whose arrays (7 floats, or one float per joint: 64 KiB
#: holds 8192) are smaller than the header bound, so no frame of a valid
#: message exceeds MAX_HEADER_BYTES there.
INBOUND_LIMITS: dict[str, int] = {
    "state": PUBLISHER_IN_BYTES, "obs": PUBLISHER_IN_BYTES, "turn": PUBLISHER_IN_BYTES,
    "cmd": MAX_HEADER_BYTES, "turn_rpc": MAX_HEADER_BYTES, "control": MAX_HEADER_BYTES,
}
#: Inbound frame limit of a connecting socket, by type: a SUB receives
#: ``state``/``obs``/``turn`` (arrays up to the message bound); a DEALER
#: receives ``reply``, ``turn``, ``heartbeat``, ``stop``: headers only.
CONNECTED_LIMITS: dict[int, int] = {
    zmq.SUB: MAX_MESSAGE_BYTES, zmq.XSUB: MAX_MESSAGE_BYTES, zmq.DEALER: MAX_HEADER_BYTES,
    zmq.PUB: PUBLISHER_IN_BYTES, zmq.XPUB: PUBLISHER_IN_BYTES, zmq.ROUTER: MAX_HEADER_BYTES,
}


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


def make_socket(ctx: zmq.Context, kind: int, *, identity: str | None = None,
                max_in: int | None = None) -> zmq.Socket:
    """A socket that never blocks shutdown (linger 0) and bounds its queues
    and each inbound frame (``max_in`` bytes; by default the limit of its
    type in :data:`CONNECTED_LIMITS`; :func:`bind` tightens it per endpoint)."""
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, max_in if max_in is not None else CONNECTED_LIMITS.get(kind, MAX_MESSAGE_BYTES))
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.setsockopt(zmq.RCVHWM, 1000)
    if identity is not None:
        sock.setsockopt(zmq.IDENTITY, identity.encode())
    if kind == zmq.ROUTER:
        # No ROUTER_HANDOVER: a peer claiming another's routing identity would
        # take its route and leave the real connection unread (a hang). Our
        # peers let libzmq pick their routing identities; who a peer is comes
        # from its CURVE key (``recv_routed``'s user), never from a claim.
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
    return sock


def bind(sock: zmq.Socket, endpoint: str, what: str, drops: DropCounter | None = None) -> None:
    """Bind ``sock`` as endpoint ``what``, with that endpoint's inbound limit
    (:data:`INBOUND_LIMITS`); with ``drops``, refused handshakes are counted
    there and connections in :func:`endpoint_counts`."""
    if what in INBOUND_LIMITS:
        sock.setsockopt(zmq.MAXMSGSIZE, INBOUND_LIMITS[what])
    if drops is not None:
        _WATCHES[sock] = EndpointWatch(sock, what, drops)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        raise RobotMirrorError(f"cannot bind {what} endpoint {endpoint}: {exc}") from None


def endpoint_counts(sock: zmq.Socket) -> dict[str, int] | None:
    """Connections seen so far at a socket bound with ``drops`` (else None)."""
    watch = _WATCHES.get(sock)
    return watch.snapshot() if watch is not None else None


_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_AUTH)


class EndpointWatch:
    """Counts connections at one bound endpoint from a socket monitor.

    The monitor's pair socket is created outside the context's socket list
    and closed by the watching thread itself when the context terminates
    (ETERM), so ``ctx.destroy()`` never closes it under the thread's feet."""

    def __init__(self, sock: zmq.Socket, what: str, drops: DropCounter) -> None:
        self.what = what
        self.drops = drops
        self.counts = {"accepted": 0, "disconnected": 0, "handshake_failed": 0}
        self._lock = threading.Lock()
        address = f"inproc://watch-{id(sock):x}-{what}"
        sock.monitor(address, zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | _HANDSHAKE_FAILED)
        pair = zmq.Socket(sock.context, zmq.PAIR)  # not in ctx's list: this thread closes it
        pair.setsockopt(zmq.LINGER, 0)
        pair.connect(address)
        threading.Thread(target=self._run, args=(pair,), name=f"watch-{what}", daemon=True).start()

    def _run(self, pair: zmq.Socket) -> None:
        from zmq.utils.monitor import parse_monitor_message

        try:
            while True:
                event = parse_monitor_message(pair.recv_multipart())["event"]
                if event == zmq.EVENT_MONITOR_STOPPED:
                    return
                self._count(event)
        except zmq.ZMQError:  # ETERM: the context is shutting down
            return
        finally:
            pair.close(linger=0)

    def _count(self, event: int) -> None:
        key = ("accepted" if event == zmq.EVENT_ACCEPTED else
               "disconnected" if event == zmq.EVENT_DISCONNECTED else "handshake_failed")
        with self._lock:
            self.counts[key] += 1
        if key == "handshake_failed":
            self.drops.count("handshake_failed", f"handshake refused at {self.what}", self.what)

    def snapshot(self) -> dict[str, int]:
        """A copy of the counts so far."""
        with self._lock:
            return dict(self.counts)


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
                robot: str | None = None, *, trusted: bool = False) -> Message | None:
    """Drain everything waiting and decode only the newest message on the
    ``kind`` topic (``kind.robot`` when ``robot`` is given): a subscriber
    that fell behind skips to the present instead of decoding stale ticks.
    ``trusted``: see :func:`robot_mirror.bus.codec.decode`."""
    topic = (f"{kind}.{robot}" if robot else kind).encode()
    newest = None
    while True:
        try:
            frames = sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            break
        if frames[0].bytes == topic:
            newest = frames
    if newest is None:
        return None
    msg = decode_or_drop(newest, drops, source, trusted=trusted)
    return msg if msg is not None and msg.kind == kind else None
