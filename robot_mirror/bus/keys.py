"""Who may talk on the bus: per-run CURVE credentials, one key pair per process.

Why every run, loopback included: a port on 127.0.0.1 is open to every
local user and process, and a message on ``control`` or ``cmd`` can stop a
run or move an arm. So a multi-process launch makes fresh credentials in
``RUN/keys/`` (mode 0600, folder 0700) before it starts any node:

- ``server.key`` / ``server.key_secret``: the one server pair of every
  binding socket. A client needs only the PUBLIC ``server.key``;
- ``NAME.key_secret``: one pair per node (``sim``, ``policy.left``, ...,
  ``supervisor``) and per external controller (``controller.<robot>``);
- ``allowed/NAME.key``: the public keys admitted. Removing one revokes it:
  the allowed set is read at every handshake, so the next connection with
  that key is refused (connections already made stay up).

ZAP (the authenticator thread of each binding process) admits a key found
in ``allowed/`` and tags the connection with its file name as ZeroMQ's
``User-Id``, so a receiver can check that a message's claimed identity or
robot is the one its key was issued for (:func:`user_id`, :func:`may_command`).
Some sockets admit fewer keys (:data:`DOMAIN_USERS`: only the sim may ask
the arbiter). A refused key is logged once, with its name or its first
characters, so a refusal is never silent on the server side.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from pathlib import Path
from typing import Iterable

import zmq
import zmq.auth
from zmq.utils import z85
from zmq.auth.thread import ThreadAuthenticator

from robot_mirror.errors import ConfigError

SERVER = "server"
ALLOWED = "allowed"
# Sockets (ZAP domains) open to a named subset of the run's keys.
DOMAIN_USERS: dict[str, frozenset[str]] = {"turn_rpc": frozenset({"sim"})}
REFUSAL_LOG_S = 10.0  # one log line per refused key per domain per this many s

log = logging.getLogger("robot_mirror.keys")


def make_keys(folder: str | Path, clients: Iterable[str] = ()) -> list[Path]:
    """The server pair and one pair per client name, each public client key
    also in ``allowed/``; pairs that already exist are kept. Every file 0600."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    allowed = folder / ALLOWED
    allowed.mkdir(mode=0o700, exist_ok=True)
    made: list[Path] = []
    for name in (SERVER, *clients):
        if (folder / f"{name}.key_secret").is_file():
            continue
        public, secret = (Path(p) for p in zmq.auth.create_certificates(str(folder), name))
        if name != SERVER:
            public = public.rename(allowed / public.name)
        for path in (public, secret):
            path.chmod(0o600)
        made += [public, secret]
    return made


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # '*', a host name, an interface name: not provably local


def endpoint_host(endpoint: str) -> str:
    """``tcp://HOST:PORT`` -> HOST (other transports: the whole address)."""
    address = endpoint.split("://", 1)[-1]
    return address.rsplit(":", 1)[0] if endpoint.startswith("tcp://") else address


def check_endpoints(endpoints, what: str) -> None:
    """Refuse to run without keys on any endpoint beyond loopback: checked on
    the endpoints themselves (a node binds what it is given, whatever
    ``bus.interface`` says)."""
    for name, endpoint in vars(endpoints).items():
        if endpoint.startswith("tcp://") and not is_loopback(endpoint_host(endpoint)):
            raise ConfigError(f"{what}: endpoint {name} = {endpoint} is beyond loopback and no keys are given: "
                              "pass --keys RUN/keys (the run's CURVE keys)")


def _load(path: Path, *, secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise ConfigError(f"{path}: CURVE key missing (a launch writes the run's keys to RUN/keys)")
    try:
        public, secret_key = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{path}: not a CURVE key file ({exc})") from None
    if secret and secret_key is None:
        raise ConfigError(f"{path}: holds no secret key")
    return public, secret_key


def user_id(frame) -> str | None:
    """The key name ZAP gave the connection a received frame came on
    (None on a bus without keys)."""
    try:
        return frame.get("User-Id")
    except (zmq.ZMQError, AttributeError):
        return None


def may_command(user: str | None, robot: str, secured: bool) -> bool:
    """A ``cmd`` for ``robot`` needs the key of that robot's policy node or controller."""
    return not secured or user in (f"policy.{robot}", f"controller.{robot}")


class _Allowed:
    """ZAP credentials provider: the public keys in ``allowed/``, read at
    every handshake (so removing a file revokes the key)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.names: dict[bytes, str] = {}
        self._logged: dict[tuple[str, bytes], float] = {}

    def lookup(self, z85_key: bytes) -> str | None:
        self.names = {}
        for path in sorted(self.folder.glob("*.key")):
            try:
                public, _ = zmq.auth.load_certificate(str(path))
            except (ValueError, OSError):
                continue
            self.names[public] = path.stem
        return self.names.get(z85_key)

    def callback(self, domain: str, z85_key: bytes) -> bool:
        name = self.lookup(z85_key)
        users = DOMAIN_USERS.get(domain)
        if name is not None and (users is None or name in users):
            return True
        now = time.monotonic()
        if now - self._logged.get((domain, z85_key), -REFUSAL_LOG_S) >= REFUSAL_LOG_S:
            self._logged[(domain, z85_key)] = now
            who = f"key '{name}' is not admitted on this socket" if name else \
                f"key {z85_key[:8].decode(errors='replace')}... is not in {self.folder}"
            log.warning("refused a connection to %s: %s (a client needs the run's keys)", domain or "*", who)
        return False


class _NamedAuthenticator(ThreadAuthenticator):
    """Tags each admitted connection with the key's name (ZeroMQ User-Id)."""

    allowed: _Allowed

    def curve_user_id(self, client_public_key: bytes) -> str:
        return self.allowed.names.get(z85.encode(client_public_key), "unknown")


class Security:
    """CURVE on every socket of one process, or nothing (``keys_dir`` None:
    loopback only, see :func:`check_endpoints`).

    ``names``: the process's own key, first found wins (a remote policy node
    for an external robot may hold ``controller.<robot>``). The server's
    secret is read only by a process that binds."""

    def __init__(self, keys_dir: str | Path | None = None, names: Iterable[str] = ()) -> None:
        self.keys_dir = Path(keys_dir) if keys_dir is not None else None
        self.names = tuple(names)
        self._auth: _NamedAuthenticator | None = None
        self._own: tuple[bytes, bytes] | None = None
        self.name: str | None = None
        if self.keys_dir is not None:
            if not self.keys_dir.is_dir():
                raise ConfigError(f"keys {self.keys_dir}: folder not found (the run's keys are in RUN/keys)")
            self.server_public, _ = _load(self.keys_dir / f"{SERVER}.key", secret=False)

    @property
    def enabled(self) -> bool:
        return self.keys_dir is not None

    def own_key(self) -> tuple[bytes, bytes]:
        if self._own is None:
            for name in self.names:
                if (self.keys_dir / f"{name}.key_secret").is_file():
                    self.name = name
                    self._own = _load(self.keys_dir / f"{name}.key_secret", secret=True)
                    break
            else:
                wanted = " or ".join(f"{n}.key_secret" for n in self.names) or "a client key"
                raise ConfigError(f"keys {self.keys_dir}: {wanted} missing (one key pair per process; "
                                  "copy it with server.key from RUN/keys)")
        return self._own

    def server(self, sock: zmq.Socket, domain: str = "") -> None:
        """Call before ``bind``: ``domain`` names the socket for ZAP."""
        if not self.enabled:
            return
        if self._auth is None:
            _, secret = _load(self.keys_dir / f"{SERVER}.key_secret", secret=True)
            self._server_secret = secret
            self._auth = _NamedAuthenticator(sock.context)
            self._auth.allowed = _Allowed(self.keys_dir / ALLOWED)
            self._auth.start()
            self._auth.configure_curve_callback(domain="*", credentials_provider=self._auth.allowed)
            for name in DOMAIN_USERS:
                self._auth.configure_curve_callback(domain=name, credentials_provider=self._auth.allowed)
        if domain in DOMAIN_USERS:
            sock.zap_domain = domain.encode()
        sock.curve_secretkey = self._server_secret
        sock.curve_publickey = self.server_public
        sock.curve_server = True

    def client(self, sock: zmq.Socket) -> None:
        """Call before ``connect``."""
        if not self.enabled:
            return
        public, secret = self.own_key()
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_serverkey = self.server_public

    def close(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
