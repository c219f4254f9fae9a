"""Who may talk on the bus.

On loopback (the default) the bus is reachable only from this machine and
runs in the clear. Binding any other interface requires CURVE: every socket
is encrypted, and the authenticator admits only clients whose public key is
in the keys folder made by ``robot-mirror keys DIR``. A launch that would
expose an open port refuses with one line instead.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from robot_mirror.errors import ConfigError

SERVER, CLIENT = "server", "client"


def make_keys(folder: str | Path) -> list[Path]:
    """Create a server and a client key pair (``*.key`` public, ``*.key_secret``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name in (SERVER, CLIENT):
        public, secret = zmq.auth.create_certificates(str(folder), name)
        made += [Path(public), Path(secret)]
    for path in folder.glob("*.key_secret"):
        path.chmod(0o600)
    return made


def is_loopback(interface: str) -> bool:
    if interface in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


class Security:
    """Applies CURVE to sockets, or nothing on plain loopback."""

    def __init__(self, keys_dir: Path | None = None) -> None:
        self.keys_dir = keys_dir
        self._auth: ThreadAuthenticator | None = None
        if keys_dir is not None:
            self.server_public, self.server_secret = self._load(SERVER, secret=True)
            self.client_public, self.client_secret = self._load(CLIENT, secret=True)

    @classmethod
    def for_scenario(cls, scenario) -> "Security":
        bus = scenario.bus
        if bus.keys_dir is None:
            if not is_loopback(bus.interface):
                raise ConfigError(
                    f"{scenario.source}: bus.interface = '{bus.interface}' exposes the bus beyond this machine:"
                    " set bus.keys_dir to a folder made by `robot-mirror keys DIR` (CURVE authentication)")
            return cls(None)
        keys = Path(bus.keys_dir)
        if not keys.is_absolute():
            keys = scenario.base_dir / keys
        if not keys.is_dir():
            raise ConfigError(f"{scenario.source}: bus.keys_dir = '{bus.keys_dir}': folder not found "
                              "(make it with `robot-mirror keys DIR`)")
        return cls(keys)

    def _load(self, name: str, secret: bool) -> tuple[bytes, bytes]:
        path = self.keys_dir / f"{name}.key_secret"
        if not path.is_file():
            raise ConfigError(f"{path}: CURVE key missing (make keys with `robot-mirror keys {self.keys_dir}`)")
        try:
            public, secret_key = zmq.auth.load_certificate(str(path))
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{path}: not a CURVE key file ({exc})") from None
        return public, secret_key

    @property
    def enabled(self) -> bool:
        return self.keys_dir is not None

    def server(self, sock: zmq.Socket) -> None:
        """Call before ``bind``."""
        if not self.enabled:
            return
        if self._auth is None:
            self._auth = ThreadAuthenticator(sock.context)
            self._auth.start()
            self._auth.configure_curve(domain="*", location=str(self.keys_dir))
        sock.curve_secretkey = self.server_secret
        sock.curve_publickey = self.server_public
        sock.curve_server = True

    def client(self, sock: zmq.Socket) -> None:
        """Call before ``connect``."""
        if not self.enabled:
            return
        sock.curve_secretkey = self.client_secret
        sock.curve_publickey = self.client_public
        sock.curve_serverkey = self.server_public

    def close(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
