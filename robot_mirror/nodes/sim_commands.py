"""The sim node's command desk: every ``cmd`` in, exactly one ``reply`` out.

A mixin of :class:`robot_mirror.nodes.sim.SimNode`. Everything a controller
sends is checked here before it can reach physics or IK (the wire checks of
``wire.decode_cmd``: dof, finiteness, unit quaternion, a sane position;
then reachability, turn ownership and the shared zone), and every outcome
has its own reply code (docs/protocol.md §2.9):

==============  ====  =====================================================
code            ok    condition
==============  ====  =====================================================
ok              yes   applied as given; also the answer to the final tick
clamped         yes   applied after clamping joint targets to the limits
refused_zone    no    the pose is outside the arm's workspace (IK off by
                      more than ``REACH_TOLERANCE``), or would bring an arm
                      without the turn into the shared zone; the arm holds
not_owner       no    ``turn: release`` from an arm that does not hold the
                      turn; nothing applied, the arm holds
bad_message     no    not decodable, or a field unusable; the message is
                      ``<reason>: <detail>`` naming the field and value
unknown_robot   no    header ``robot`` is not an arm of this simulation
busy            no    another controller drives this arm
stale           no    a tick already stepped, or one not yet published
==============  ====  =====================================================
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import zmq

from robot_mirror.bus.codec import MalformedMessage, decode
from robot_mirror.bus.keys import user_id
from robot_mirror.bus.transport import send
from robot_mirror.bus.wire import decode_cmd, peek_header
from robot_mirror.common.commands import ArmCommand

CLAIM_TIMEOUT = 2.0     # wall s of silence after which another controller may take an arm over
REACH_TOLERANCE = 0.03  # m: an ee target IK misses by more is outside the arm's workspace
MAX_REPLY_TEXT = 300    # characters of a reply's message


@dataclass
class RobotLink:
    """What the sim knows about the controller of one robot."""

    name: str
    owner: bytes | None = None
    owner_user: str | None = None  # the owner's CURVE key name (None without keys)
    last_wall: float = 0.0
    last_sim: float = 0.0
    command: ArmCommand | None = None
    command_tick: int = -1
    absent: bool = False
    passed: bool = False     # its turn has passed while absent (counted once per pass)
    final_tick: int = -1     # the last tick of the episode just ended (answered ok, not applied)
    pending_turn: str = ""
    counters: dict = field(default_factory=lambda: {
        "commands": 0, "refused_zone": 0, "not_owner": 0, "bad_message": 0, "busy": 0,
        "deadline_misses": 0, "watchdog_trips": 0, "turns_passed": 0})


class CommandDesk:
    """Receive, check and answer commands (a mixin of the sim node)."""

    def _drain_commands(self) -> None:
        while True:
            try:
                frames = self.cmd.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) < 2:
                self.drops.record(MalformedMessage("frame_count", "routed message without a body"), "cmd")
                continue
            identity, body = frames[0].bytes, frames[1:]
            try:
                msg = decode(body)
            except MalformedMessage as err:
                self.drops.record(err, "cmd")
                seq, robot = peek_header(body)
                if robot in self.links:
                    self.links[robot].counters["bad_message"] += 1
                else:
                    robot = self.env.robot_names[0]  # a reply must name an arm
                self._reply(identity, robot, False, "bad_message", f"{err.reason}: {err.detail}", 0, seq)
                continue
            user = user_id(frames[0])
            if self.key_may_command(user, msg):  # a cmd for another key's robot: dropped
                self._accept(identity, msg, user)

    def _reply(self, identity: bytes, robot: str, ok: bool, code: str, message: str, clamped: int, ack: int) -> None:
        text = " ".join(message.split())[:MAX_REPLY_TEXT]  # one line, bounded
        send(self.cmd, "reply", "reply", identity=identity, robot=robot, seq=self.next_seq(), tick=self.env.tick,
             fields={"ok": ok, "code": code, "message": text, "clamped": clamped, "ack": ack}, validate=False)

    def _refuse(self, identity: bytes, robot: str, code: str, message: str, ack: int) -> None:
        link = self.links.get(robot)
        if link is not None and code in link.counters:
            link.counters[code] += 1
        self._reply(identity, robot, False, code, message, 0, ack)

    def _accept(self, identity: bytes, msg, user: str | None = None) -> None:
        """``identity`` routes the reply and tells controllers apart (one per
        arm); ``user`` is the CURVE key's name when the bus has keys: a policy
        process restarted by the supervisor holds the same node key under a
        new identity and takes its arm back at once."""
        if msg.kind == "hello":  # a controller announcing itself
            return
        if msg.kind != "cmd":
            self.drops.record(MalformedMessage("kind", f"'{msg.kind}' is not accepted on the cmd socket"), "cmd")
            return
        robot, link = msg.robot, self.links.get(msg.robot)
        if link is None:
            self._refuse(identity, robot, "unknown_robot", f"no robot '{robot}'; robots: {', '.join(self.links)}",
                         msg.seq)
            return
        now = time.monotonic()
        restarted = bool(user) and user == link.owner_user and user.startswith("policy.")
        if link.owner not in (None, identity) and not restarted and now - link.last_wall < CLAIM_TIMEOUT:
            self._refuse(identity, robot, "busy", f"robot '{robot}' already has a controller; one controller per arm",
                         msg.seq)
            return
        link.owner, link.owner_user, link.last_wall, link.absent = identity, user, now, False
        if self._answers_final_tick(link, msg.tick):
            self._reply(identity, robot, True, "ok", f"episode ended at tick {msg.tick}; nothing to apply",
                        0, msg.seq)
            return
        link.final_tick = -1
        late = self.lockstep and 0 <= msg.tick < self.env.tick  # a tick already stepped (a re-sent state)
        if msg.tick > self.env.tick or late:  # ahead: a late command from the previous episode
            self._refuse(identity, robot, "stale",
                         f"tick {msg.tick} is not the current tick {self.env.tick}; command ignored", msg.seq)
            return
        try:
            cmd, code, text, clamped = self._judge(robot, msg)
        except MalformedMessage as err:
            self.drops.record(err, "cmd")
            self._refuse(identity, robot, "bad_message", f"{err.reason}: {err.detail}", msg.seq)
            return
        self._take(link, cmd, msg.tick)
        self._note(robot, cmd, code, text)
        if code not in ("ok", "clamped"):
            link.counters[code] += 1
        self._reply(identity, robot, code in ("ok", "clamped"), code, text, clamped, msg.seq)

    def _note(self, robot: str, cmd: ArmCommand, code: str, text: str) -> None:
        """A turn request and a zone refusal become events of the next
        ``state`` (docs/protocol.md §2.6), so a reader of the bus (the
        viewer) sees them; at most one of each per robot and tick (a
        re-sent tick is answered again)."""
        if cmd.turn == "request":
            self.command_events[(robot, "turn_request")] = {"t": self.env.t, "type": "turn_request", "robot": robot}
        if code == "refused_zone":
            self.command_events[(robot, "refused")] = {"t": self.env.t, "type": "refused", "robot": robot,
                                                       "reason": text[:MAX_REPLY_TEXT]}

    def take_command_events(self) -> list[dict]:
        """The events noted since the last call, oldest first."""
        events = list(self.command_events.values())
        self.command_events = {}
        return events

    def _answers_final_tick(self, link, tick: int) -> bool:
        """A command for the tick that ended the last episode (obs ``done``):
        nothing is left to apply it to, but it is not stale either."""
        between = self.finished or self.pending_reset or tick != self.env.tick
        return link.final_tick >= 0 and tick == link.final_tick and between

    def _take(self, link, cmd: ArmCommand, tick: int) -> None:
        """Make ``cmd`` the arm's command for ``tick`` (it answers that tick)."""
        if cmd.turn:
            link.pending_turn = cmd.turn
        link.command = cmd
        link.command_tick = tick if tick >= 0 else self.env.tick
        link.last_sim = self.env.t
        link.counters["commands"] += 1

    def _judge(self, robot: str, msg) -> tuple[ArmCommand, str, str, int]:
        """The command to apply, the reply's code and text, and how many
        joint targets were clamped. A refused
        command becomes "hold the current joint angles" (it still answers
        the tick, so lock-step does not wait for another)."""
        cmd, unreachable = self._to_command(robot, msg)
        hold = ArmCommand(q_target=self.env.arm_q(robot).copy(), gripper=cmd.gripper)
        if cmd.turn == "release" and self.env.arbiter.holder != robot:
            holder = self.env.arbiter.holder or "nobody"
            return hold, "not_owner", f"'{robot}' cannot release the turn: {holder} holds it; command ignored", 0
        if unreachable:
            hold.turn = cmd.turn
            return hold, "refused_zone", unreachable, 0
        if self.guard.refuses(robot, cmd):
            hold.turn = cmd.turn
            return hold, "refused_zone", f"'{robot}' does not hold the turn; the shared zone is closed to it", 0
        clamped, _ = self.env.arms[robot].clamp(cmd.q_target)
        n_clamped = int(np.sum(clamped != cmd.q_target))  # for the reply; the arm counts clamped commands
        if n_clamped:
            return cmd, "clamped", f"{n_clamped} joint target(s) clamped", n_clamped
        return cmd, "ok", "", 0

    def _to_command(self, robot: str, msg) -> tuple[ArmCommand, str]:
        """The wire command as joint targets, and why the pose is out of
        reach ("" if it is not). A tool pose goes through the arm's IK here,
        in the only process that knows the arm's joints, after
        ``decode_cmd`` made sure IK can answer it."""
        cmd = decode_cmd(msg, self.env.arms[robot].dof)
        if cmd.ee_pose is None:
            return cmd, ""
        q_now, twin = self.env.arm_q(robot), self.env.twin(robot)
        q, err, _ = twin.ik(cmd.ee_pose, q_now, iterations=2)
        if err > REACH_TOLERANCE:  # a long jump may need more refinement before giving up
            q, err, _ = twin.ik(cmd.ee_pose, q_now, iterations=6)
        out = ArmCommand(q_target=q, gripper=cmd.gripper, turn=cmd.turn)
        if err <= REACH_TOLERANCE:
            return out, ""
        x, y, z = (float(v) for v in cmd.ee_pose[:3])
        return out, (f"ee_pose ({x:.3f}, {y:.3f}, {z:.3f}) is outside the workspace of '{robot}': "
                     f"IK misses it by {err:.3f} m (tolerance {REACH_TOLERANCE} m)")
