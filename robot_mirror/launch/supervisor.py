"""Start, watch and stop the processes of one multi-process run.

One supervisor per run. It picks free ports, starts each node as
``python -m robot_mirror node KIND ...`` with its log in ``RUN/logs/``,
waits for every node's ``hello`` (process readiness; message readiness is
the sim's first tick, re-sent until answered), exchanges heartbeats,
restarts crashed perception/policy/turn nodes per the scenario's restart
policy (limit and doubling backoff), and turns the sim's per-episode
reports into ``summary.json``. A crashed sim ends the run with one clear
line and a partial summary. Ctrl-C / SIGTERM: stop policies, perception,
turn, then the sim; whatever does not exit in time is killed; no process
is left behind.

Before any node starts it writes the run's credentials (``bus.keys``): one
CURVE key pair per node, per external controller and for itself, in
``RUN/keys`` (or ``bus.keys_dir``). On ``control`` a node is known by its key,
not by a DEALER identity it could claim: the supervisor answers the
connection the node's last message came on, and only the sim may report an
episode, so another local process can neither speak for a node, take its
messages, nor write into ``summary.json``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import zmq

from robot_mirror.bus.codec import DropCounter
from robot_mirror.bus.keys import Security, make_keys
from robot_mirror.bus.transport import Endpoints, bind, make_socket, recv_latest, recv_routed, send
from robot_mirror.bus.wire import MalformedMessage, decode_episode
from robot_mirror.errors import RobotMirrorError
from robot_mirror.config.scenario import RestartPolicy, Scenario
from robot_mirror.nodes import NODE_KINDS, node_name
from robot_mirror.nodes.base import HEARTBEAT_INTERVAL, LIVENESS, IdentityMismatch
from robot_mirror.launch.progress import ProgressLine
from robot_mirror.launch.summary import RunSummary, episode_line
from robot_mirror.viewer.config import ViewerConfig

START_TIMEOUT = 60.0   # s for every node to say hello
STOP_GRACE = 3.0       # s a node gets to exit after `stop`


@dataclass
class Child:
    name: str
    kind: str
    robot: str | None
    policy: RestartPolicy | None  # None: not restartable (the sim)
    proc: subprocess.Popen | None = None
    restarts: int = 0
    last_heard: float = 0.0
    hello: bool = False
    restart_at: float | None = None
    drops: int = 0         # as the current process's last heartbeat said
    drops_before: int = 0  # dropped by the earlier processes of this node (restarts)
    log_path: Path | None = None
    route: bytes | None = None  # routing id of the connection this node's key last spoke on


class Supervisor:
    def __init__(self, scenario: Scenario, scenario_path: str, run_dir: Path, overrides: list[str],
                 *, quiet: bool = False, record: bool = False, viewer: ViewerConfig | None = None) -> None:
        self.record = record
        self.viewer = viewer if viewer is not None and viewer.enabled else None
        self.scenario = scenario
        self.scenario_path = scenario_path
        self.run_dir = run_dir
        self.overrides = overrides
        self.quiet = quiet
        self.ctx = zmq.Context()
        self.drops = DropCounter()
        self.stopping = False
        self.stop_reason: str | None = None
        self.children: dict[str, Child] = {}
        self.progress = ProgressLine()
        self.security = None
        self._live: dict = {}
        self._last_beat = 0.0
        self._drops_mark: dict[str, int] = {}

    # ------------------------------------------------------------- start
    def _plan(self) -> None:
        sc = self.scenario
        for kind, spec in NODE_KINDS.items():
            if spec.optional and not (kind == "viewer" and self.viewer is not None):
                continue
            policy = getattr(sc.nodes, kind) if spec.restartable else None
            robots = [r.name for r in sc.robots if r.policy != "external"] if spec.per_robot else [None]
            for robot in robots:
                name = node_name(kind, robot)
                self.children[name] = Child(name, kind, robot, policy)

    def _command(self, child: Child) -> list[str]:
        cmd = [sys.executable, "-m", "robot_mirror", "node", child.kind, "--scenario", self.scenario_path,
               "--endpoints", self.endpoints.to_json(), "--name", child.name, "--keys", str(self.keys_dir)]
        options = {"robot": child.robot, "record": str(self.run_dir) if self.record else None}
        if self.viewer is not None:
            options |= {"viewer": self.viewer.connect,
                        "rrd": str(Path(self.viewer.rrd).absolute()) if self.viewer.rrd else None}
        for option in NODE_KINDS[child.kind].options:
            if options[option]:
                cmd += [f"--{option}", options[option]]
        for item in self.overrides:
            cmd += ["--set", item]
        return cmd

    def _spawn(self, child: Child) -> None:
        logs = self.run_dir / "logs"
        logs.mkdir(exist_ok=True)
        child.log_path = logs / f"{child.name}.log"
        log = open(child.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        child.proc = subprocess.Popen(self._command(child), stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, env=env)
        log.close()
        child.drops_before, child.drops = child.drops_before + child.drops, 0
        child.hello = False
        child.route = None
        child.last_heard = time.monotonic()
        child.restart_at = None

    def _write_pids(self) -> None:
        """RUN/processes.json: the live node processes (for users and tests)."""
        from robot_mirror.files import write_json_atomic

        write_json_atomic(self.run_dir / "processes.json", {
            "supervisor": os.getpid(),
            "nodes": {c.name: c.proc.pid for c in self.children.values() if c.proc is not None},
        })

    def _last_log_line(self, child: Child) -> str:
        try:
            lines = [l.strip() for l in child.log_path.read_text(errors="replace").splitlines() if l.strip()]
        except (OSError, AttributeError):
            return ""
        lines = [l for l in lines if not l.startswith("pybullet build time")]
        return lines[-1] if lines else ""

    # --------------------------------------------------------------- run
    def keys_folder(self) -> Path:
        """``bus.keys_dir`` (relative to the scenario) if set, else ``RUN/keys``."""
        keys = self.scenario.bus.keys_dir
        if keys is None:
            return self.run_dir / "keys"
        keys = Path(keys)
        return keys if keys.is_absolute() else self.scenario.base_dir / keys

    def make_credentials(self) -> None:
        """One key pair per node, per external controller and for the supervisor;
        written before endpoints.json, so a controller that sees the endpoints finds its key."""
        self.keys_dir = self.keys_folder()
        external = [f"controller.{r.name}" for r in self.scenario.robots if r.policy == "external"]
        make_keys(self.keys_dir, [*self.children, "supervisor", *external])
        self.security = Security(self.keys_dir, names=["supervisor"])

    def run(self) -> dict:
        sc = self.scenario
        self._plan()
        self.make_credentials()
        self.endpoints = Endpoints.allocate(sc.bus.interface)
        self.endpoints.save(self.run_dir / "endpoints.json")
        self.control = make_socket(self.ctx, zmq.ROUTER)
        self.security.server(self.control, "control")
        bind(self.control, self.endpoints.control, "control", self.drops)
        self.state_sub = self._state_subscriber()
        self.summary = RunSummary(self.run_dir, sc, "multiprocess", self.overrides)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in self.children.values():
                self._spawn(child)
            self._await_hellos()
            self._announce_external()
            self._loop()
        except RobotMirrorError as exc:
            self.summary.finish(False, f"error: {exc}")
            raise
        finally:
            self._shutdown()
            for s, handler in old.items():
                signal.signal(s, handler)
            self.progress.clear()
            if self.security is not None:
                self.security.close()
            self.ctx.destroy(linger=0)
        return self.summary.data

    def _state_subscriber(self) -> zmq.Socket:
        """The progress line's view of the sim. Not CONFLATE: it keeps one
        *frame*, which breaks multipart messages (none arrives whole);
        :meth:`_show_progress` drains to the newest state instead."""
        sock = make_socket(self.ctx, zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, b"state")
        self.security.client(sock)
        sock.connect(self.endpoints.state)
        return sock

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True
        self.stop_reason = "interrupted"

    def _await_hellos(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not all(c.hello for c in self.children.values()):
            if self.stopping:
                return
            self._receive(100)
            self._beat()
            for child in self.children.values():
                code = child.proc.poll()
                if code is not None and not child.hello:
                    raise RobotMirrorError(f"node '{child.name}' failed to start (exit {code}): "
                                           f"{self._last_log_line(child) or 'no output'}")
            if time.monotonic() > deadline:
                late = [c.name for c in self.children.values() if not c.hello]
                raise RobotMirrorError(f"nodes did not start within {START_TIMEOUT:.0f} s: {', '.join(late)}")

    def _announce_external(self) -> None:
        external = [r.name for r in self.scenario.robots if r.policy == "external"]
        if external:
            print(f"waiting up to {self.scenario.bus.controller_timeout:.0f} s for external controller(s) for "
                  f"{', '.join(external)}: endpoints in {self.run_dir / 'endpoints.json'} "
                  f"(cmd {self.endpoints.cmd}, obs {self.endpoints.obs})", flush=True)

    def _beat(self) -> None:
        """Heartbeat every node that said hello (also while others still start)."""
        now = time.monotonic()
        if now - self._last_beat < HEARTBEAT_INTERVAL:
            return
        self._last_beat = now
        for child in self.children.values():
            if child.hello and child.route is not None:
                send(self.control, "heartbeat", "heartbeat", identity=child.route,
                     fields={"node": "supervisor", "state": "running", "drops": self.drops.total})

    def _loop(self) -> None:
        while not self.stopping:
            self._receive(50)
            self._beat()
            self._watch(time.monotonic())
            self._show_progress()

    def _receive(self, timeout_ms: int) -> None:
        if not self.control.poll(timeout_ms):
            return
        while True:
            identity, user, msg = recv_routed(self.control, self.drops, "control")
            if identity is None and msg is None:
                return
            if msg is None:
                continue
            child = self.children.get(user) if user else None
            if child is None or (msg.kind == "episode" and child.kind != "sim"):
                self.drops.record(IdentityMismatch(f"'{msg.kind}' from key '{user}'"), "control")
                continue
            child.route = identity
            child.last_heard = time.monotonic()
            if msg.kind == "hello":
                child.hello = True
                self._write_pids()
            elif msg.kind == "heartbeat":
                child.drops = msg.fields["drops"]
            elif msg.kind == "episode":
                self._episode(msg)

    def _episode(self, msg) -> None:
        try:
            episode = decode_episode(msg)  # the summary travels as a JSON frame (issue 8, item 1)
        except MalformedMessage as err:
            self.drops.record(err, "control")
            return
        episode["restarts"] = {c.name: c.restarts for c in self.children.values() if c.restarts}
        # Heartbeats carry each node's run total: the episode gets the change
        # since the last episode ended (as of the latest heartbeats).
        totals = self._drop_totals()
        episode["dropped_messages_by_node"] = {n: v - self._drops_mark.get(n, 0) for n, v in totals.items()}
        self._drops_mark = totals
        self.summary.add(episode)
        self.progress.clear()
        if not self.quiet:
            print(episode_line(episode), flush=True)
        self._name_silent_controllers(episode)
        if msg.fields["last"]:
            self.summary.finish(True)
            self.stopping = True
            self.stop_reason = None

    def _name_silent_controllers(self, episode: dict) -> None:
        """An external arm that sent no command all episode: say which, and
        the likely cause (a refused connection is silent on both sides)."""
        robots = (episode.get("bus") or {}).get("robots") or {}
        for robot in (r.name for r in self.scenario.robots if r.policy == "external"):
            if (robots.get(robot) or {}).get("commands", 0) == 0:
                self.progress.clear()
                print(f"no command from the external controller of '{robot}' in episode {episode.get('index')}: "
                      f"is it running, with the run's keys ({self.keys_dir}/server.key and "
                      f"controller.{robot}.key_secret)?", file=sys.stderr, flush=True)

    def _drop_totals(self) -> dict[str, int]:
        """Messages each node dropped in the run so far, restarts included."""
        return {**{c.name: c.drops_before + c.drops for c in self.children.values()},
                "supervisor": self.drops.total}

    def _watch(self, now: float) -> None:
        for child in self.children.values():
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._spawn(child)
                continue
            code = child.proc.poll()
            silent = child.hello and now - child.last_heard > LIVENESS * HEARTBEAT_INTERVAL
            if code is None and not silent:
                continue
            if code is None:  # hung: kill it, then treat like a crash
                child.proc.kill()
                child.proc.wait()
                code = "hung"
            reason = f"exit {code}" if code != "hung" else "no heartbeat"
            if child.policy is None:
                raise RobotMirrorError(f"the sim process stopped ({reason}): "
                                       f"{self._last_log_line(child) or 'no output'}; partial summary kept")
            if child.restarts >= child.policy.max_restarts:
                raise RobotMirrorError(f"node '{child.name}' stopped ({reason}) and its restart limit "
                                       f"({child.policy.max_restarts}) is used up: {self._last_log_line(child)}")
            delay = min(child.policy.backoff * (2 ** child.restarts), child.policy.backoff_max)
            child.restarts += 1
            child.restart_at = now + delay
            if not self.quiet:
                self.progress.clear()
                print(f"node '{child.name}' stopped ({reason}); restart {child.restarts}/"
                      f"{child.policy.max_restarts} in {delay:.1f} s", flush=True)

    def _show_progress(self) -> None:
        """Live line: episode, turn number, who holds the turn, real-time factor."""
        if self.quiet or not self.progress.live:
            return
        msg = recv_latest(self.state_sub, self.drops, "state", "state", trusted=True)
        if msg is None:
            return
        episode, holder = msg.fields["episode"], msg.fields["holder"]
        now = time.monotonic()
        if episode != self._live.get("episode"):
            self._live = {"episode": episode, "start": now, "turns": 0, "holder": ""}
        if holder and holder != self._live["holder"]:
            self._live["turns"] += 1
        self._live["holder"] = holder
        wall = now - self._live["start"]
        rtf = msg.t_sim / wall if wall > 0 else 0.0
        restarts = sum(c.restarts for c in self.children.values())
        self.progress.update(f"episode {episode + 1}/{self.scenario.episodes}  turn {self._live['turns']:2d}  "
                             f"holder {holder or '-':<8}  t={msg.t_sim:6.1f}s  rtf {rtf:4.1f}x"
                             + (f"  restarts {restarts}" if restarts else ""))

    # -------------------------------------------------------------- stop
    def _shutdown(self) -> None:
        order = sorted(self.children.values(), key=lambda c: NODE_KINDS[c.kind].stop_rank)
        for child in order:
            if child.proc is not None and child.proc.poll() is None and child.route is not None:
                send(self.control, "stop", "stop", identity=child.route,
                     fields={"reason": self.stop_reason or "run complete"})
        deadline = time.monotonic() + STOP_GRACE
        for child in order:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.terminate()
                try:
                    child.proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait()
        try:  # final heartbeats of the nodes that just stopped
            self._receive(100)
        except RobotMirrorError:
            pass
        self.summary.data["dropped_messages_by_node"] = self._drop_totals()
        self.summary.data["restarts"] = {c.name: c.restarts for c in self.children.values()}
        self.summary.save()
        if not self.summary.data["complete"]:
            self.summary.finish(False, self.stop_reason or self.summary.data.get("stopped_because") or "stopped")
