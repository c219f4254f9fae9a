"""A policy process for one robot: observations in, commands out.

It answers every tick exactly once; a repeated observation (the sim re-sent
an unanswered state) gets the same command again, so the policy's internal
state never advances twice for one tick. It connects to the sim under the
identity ``policy.<robot>``: a restarted policy takes its arm back at once.
"""

from __future__ import annotations

import zmq

import robot_mirror.mirror  # noqa: F401  (registers policy: mirror)
from robot_mirror.bus.transport import recv_latest
from robot_mirror.bus.wire import decode_obs, encode_cmd
from robot_mirror.nodes.base import Node
from robot_mirror.policies import check_policies, make_policy


class PolicyNode(Node):
    kind = "policy"
    exits_when_idle = True  # fed every tick: unsupervised, it exits when the run has ended

    def __init__(self, *args, robot: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.robot = robot

    def setup(self) -> None:
        from robot_mirror.sim.kinematics import Kinematics
        from robot_mirror.sim.spec import RobotSpec
        from robot_mirror.sim.tasks import make_task

        sc = self.scenario
        specs = [RobotSpec.from_config(r, sc.base_dir) for r in sc.robots]
        spec = next(s for s in specs if s.name == self.robot)
        task = make_task(sc.task, specs)
        self.kinematics = Kinematics(spec, home_reach=task.home_reach(spec), zone=task.zone)
        check_policies(sc, inprocess=False, robot=self.robot)
        self.policy = make_policy(sc.robot(self.robot).policy, spec, sc, self.kinematics)
        self.sub = self.connected(zmq.SUB, self.endpoints.obs, subscribe=f"obs.{self.robot}".encode())
        self.cmd = self.connected(zmq.DEALER, self.endpoints.cmd)  # known to the sim by its key
        self.poller.register(self.sub, zmq.POLLIN)
        self._key: tuple[int, int] | None = None
        self._episode: int | None = None
        self._frames: list | None = None

    def tick(self) -> None:
        events = self.poll()
        while True:  # replies are informational for a built-in policy: discard undecoded
            try:
                self.cmd.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
        if self.sub not in events:
            return
        latest = recv_latest(self.sub, self.drops, "obs", "obs", self.robot, trusted=True)
        if latest is None:
            return
        key = (latest.fields["episode"], latest.tick)
        if key != self._key:
            self._key = key
            if latest.fields["episode"] != self._episode:
                self._episode = latest.fields["episode"]
                self.policy.reset()
            command = self.policy.act(decode_obs(latest))
            self._frames = encode_cmd(self.robot, command, seq=self.next_seq(), tick=latest.tick,
                                      t_sim=latest.t_sim, validate=False)
        try:
            self.cmd.send_multipart(self._frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass

    def teardown(self) -> None:
        kin = getattr(self, "kinematics", None)
        if kin is not None:
            kin.close()
