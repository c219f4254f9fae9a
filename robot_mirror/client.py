"""Drive one arm from your own program, over the bus.

    from robot_mirror.client import Controller

    with Controller("left", "runs/.../endpoints.json") as arm:
        for obs in arm.observations():
            arm.send_joint(obs["q"], gripper=0.0)

Every call has a timeout; nothing blocks forever. The wire format is in
docs/protocol.md, so a controller in another language does the same thing:
a DEALER socket to ``cmd`` sending ``cmd`` messages, a SUB socket on ``obs``
subscribed to ``obs.<robot>``, both CURVE clients with the run's public
``server.key`` and the controller's own pair ``controller.<robot>.key_secret``
(both in ``RUN/keys``, found next to ``endpoints.json`` by default).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import zmq

from robot_mirror.bus.codec import DropCounter, Message
from robot_mirror.bus.keys import Security
from robot_mirror.bus.transport import Endpoints, make_socket, recv, recv_latest
from robot_mirror.bus.wire import decode_obs, encode_cmd
from robot_mirror.common.commands import ArmCommand
from robot_mirror.errors import RobotMirrorError


class ControllerError(RobotMirrorError):
    """The bus refused a command or did not answer in time."""


class Controller:
    """One external controller for one robot."""

    def __init__(self, robot: str, endpoints: Endpoints | str | Path, *, timeout: float = 10.0,
                 keys_dir: str | Path | None = None) -> None:
        self.robot = robot
        self.endpoints = endpoints if isinstance(endpoints, Endpoints) else Endpoints.load(endpoints)
        self.timeout = timeout
        if keys_dir is None and not isinstance(endpoints, Endpoints) and (Path(endpoints).parent / "keys").is_dir():
            keys_dir = Path(endpoints).parent / "keys"  # a run folder: RUN/endpoints.json, RUN/keys
        self.keys_dir = keys_dir
        self.ctx: zmq.Context | None = None
        self.drops = DropCounter()
        self.last_obs: dict[str, Any] | None = None
        self.last_tick = -1
        self.last_episode = -1
        self.last_reply: Message | None = None
        self.replies: dict[str, int] = {}
        self._seq = 0

    # ----------------------------------------------------------- connect
    def connect(self) -> "Controller":
        security = Security(self.keys_dir, names=[f"controller.{self.robot}"])
        if security.enabled:
            security.own_key()  # a missing key is one line now, not a silent refusal later
        self.ctx = zmq.Context()
        self.cmd = make_socket(self.ctx, zmq.DEALER, identity=f"controller.{self.robot}.{uuid.uuid4().hex[:8]}")
        security.client(self.cmd)
        self.cmd.connect(self.endpoints.cmd)
        self.obs = make_socket(self.ctx, zmq.SUB)
        self.obs.setsockopt(zmq.SUBSCRIBE, f"obs.{self.robot}".encode())
        security.client(self.obs)
        self.obs.connect(self.endpoints.obs)
        return self

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.destroy(linger=0)
            self.ctx = None

    def __enter__(self) -> "Controller":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------- observations
    def next_observation(self, timeout: float | None = None) -> dict[str, Any]:
        """The next tick's observation (newer ones supersede older ones)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ControllerError(f"no observation for robot '{self.robot}' within "
                                      f"{self.timeout if timeout is None else timeout:.1f} s "
                                      f"(obs endpoint {self.endpoints.obs}): {self._likely_cause()}")
            if not self.obs.poll(int(min(remaining, 0.1) * 1000) + 1):
                self._drain_replies()
                continue
            latest = recv_latest(self.obs, self.drops, "obs", "obs", self.robot, trusted=True)
            self._drain_replies()
            if latest is None:
                continue
            key = (latest.fields["episode"], latest.tick)
            if key == (self.last_episode, self.last_tick):
                continue  # a re-sent tick we already answered
            self.last_episode, self.last_tick = key
            obs = decode_obs(latest)
            obs["tick"], obs["episode"] = latest.tick, latest.fields["episode"]
            self.last_obs = obs
            return obs

    def observations(self, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Iterate over observations until the run stops sending them."""
        while True:
            try:
                yield self.next_observation(timeout)
            except ControllerError:
                return

    # ------------------------------------------------------------ commands
    def send_joint(self, q_target, gripper: float = 0.0, turn: str = "") -> None:
        """Joint-position targets (rad), gripper 0 (open)..1 (closed)."""
        self._send(ArmCommand(q_target=np.asarray(q_target, dtype=float), gripper=gripper, turn=turn))

    def send_ee(self, pose, gripper: float = 0.0, turn: str = "") -> None:
        """Tool-pose target (x, y, z, qx, qy, qz, qw; world frame); the sim solves IK."""
        self._send(ArmCommand(ee_pose=np.asarray(pose, dtype=float), gripper=gripper, turn=turn))

    def hold(self, gripper: float = 0.0, turn: str = "") -> None:
        """Keep the arm where it is (answers a tick without moving)."""
        if self.last_obs is None:
            raise ControllerError("hold() needs an observation first")
        self.send_joint(self.last_obs["q"], gripper, turn)

    def request_turn(self, gripper: float = 0.0) -> None:
        self.hold(gripper, turn="request")

    def release_turn(self, gripper: float = 0.0) -> None:
        self.hold(gripper, turn="release")

    def _send(self, command: ArmCommand) -> None:
        if self.ctx is None:
            raise ControllerError("not connected: use `with Controller(...)` or call connect()")
        self._seq += 1
        try:
            command.gripper = float(np.clip(command.gripper, 0.0, 1.0))
            frames = encode_cmd(self.robot, command, seq=self._seq, tick=self.last_tick)
        except ValueError as exc:
            raise ControllerError(f"invalid command: {exc}") from None
        self.cmd.send_multipart(frames)

    def wait_reply(self, timeout: float | None = None) -> Message:
        """The sim's answer to the last command (``fields['code']``: ok, clamped, refused_zone, busy...)."""
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.cmd.poll(50):
                reply = self._drain_replies()
                if reply is not None and reply.fields["ack"] == self._seq:
                    return reply
        raise ControllerError(f"no reply from the sim within {wait:.1f} s ({self.endpoints.cmd}): "
                              f"{self._likely_cause()}")

    def _likely_cause(self) -> str:
        """A refused CURVE handshake looks exactly like an absent run: name both."""
        if self.keys_dir is None:
            return "is the run started? This controller has no keys: pass the run's keys (RUN/keys)"
        return f"is the run started, and are {self.keys_dir}'s keys this run's?"

    def _drain_replies(self) -> Message | None:
        latest = None
        while True:
            _, msg = recv(self.cmd, self.drops, "reply")
            if msg is None:
                return latest
            if msg.kind == "reply":
                code = msg.fields["code"]
                self.replies[code] = self.replies.get(code, 0) + 1
                self.last_reply = latest = msg
