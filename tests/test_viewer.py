"""The viewer (docs/viewer.md): a headless ``--rrd`` run writes a recording
that the rerun SDK reads back, with the scene, the turn timeline and the
readouts where they belong; in multi-process mode the viewer is a node of
its own that reads the bus, requests and refusals included.

Skipped where rerun-sdk is not installed (it is in the ``test`` extra)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, assert_one_line_error, finish, launch, run_cli, wait_for

pytest.importorskip("rerun")

from rerun.chunk import RrdReader  # noqa: E402

SHORT = ["--set", "task.blocks=2", "--set", "task.time_limit=8"]
EXPERTS = ["--set", "robots.left.policy=expert", "--set", "robots.right.policy=expert"]
SEGMENTS = ["wait", "reach", "grasp", "carry", "place", "retreat"]


def read_back(path: Path) -> dict[str, list[dict]]:
    """entity path -> its rows on the ``tick`` timeline (column name -> value),
    in tick order (an entity with static data only: no rows)."""
    rows: dict[str, list[dict]] = defaultdict(list)
    for chunk in RrdReader(path).stream():
        batch = chunk.to_record_batch()
        batch = batch.select([n for n in batch.schema.names if n == "tick" or ":" in n]).to_pydict()
        if chunk.is_static or "tick" not in batch:
            rows[chunk.entity_path]  # noqa: B018  (the entity exists)
            continue
        for i in range(chunk.num_rows):
            rows[chunk.entity_path].append({k: v[i] for k, v in batch.items()})
    for values in rows.values():
        values.sort(key=lambda r: r["tick"])
    return dict(rows)


def column(rows: list[dict], name: str) -> list:
    return [r[name] for r in rows if r.get(name) is not None]


def test_headless_rrd_of_an_inprocess_run_reads_back(tmp_path: Path) -> None:
    rrd = tmp_path / "run.rrd"
    proc = run_cli("launch", "launch/tower.yaml", "--inprocess", "--episodes", "1", *SHORT, *EXPERTS,
                   "--set", "task.time_limit=6",
                   "--rrd", str(rrd), "--viewer-camera", "--out", str(tmp_path / "run"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = read_back(rrd)
    for path in ("/world/zone", "/world/table/table_link", "/world/blocks", "/world/tower", "/turns/holder",
                 "/turns/events", "/camera/rgb", "/world/arms/left/panda_hand", "/world/arms/right/panda_link0"):
        assert path in rows, (path, sorted(rows))
    # Both arms drawn from their URDF: the Panda's meshes hang under its links.
    assert sum(p.startswith("/world/arms/left/panda_link3/visual_") for p in rows) == 1
    ticks = [r["tick"] for r in rows["/world/blocks"]]
    assert len(ticks) > 100 and ticks == sorted(set(ticks))  # the timeline is not empty, one frame per tick drawn
    hand = np.array([t[0] for t in column(rows["/world/arms/left/panda_hand"], "Transform3D:translation")])
    assert np.ptp(hand, axis=0).max() > 0.05  # the arm moves in the recording
    assert column(rows["/turns/holder"], "StateChange:state")[0] == ["left"]  # task.first
    texts = " | ".join(t[0] for t in column(rows["/turns/events"], "TextLog:text"))
    assert "episode 0 starts" in texts and "left     turn_start" in texts and "stacked" in texts, texts


class WithReadouts:
    """A scripted expert plus the readouts contract, with known values: the
    prediction is 1 s during the partner's turn, the segment probabilities
    put 0.9 on the partner's true segment, the core is the tick's phase."""

    def __init__(self, inner, partner_box: list) -> None:
        self.inner, self.partner_box = inner, partner_box
        self.obs = None

    def reset(self) -> None:
        self.inner.reset()

    def act(self, obs):
        self.obs = obs
        return self.inner.act(obs)

    def labels(self):
        return self.inner.labels()

    def readouts(self) -> dict:
        partner_turn = bool(self.obs["holder"]) and not self.obs["my_turn"]
        seg = self.partner_box[0].labels()[0]
        probs = [0.9 if s == seg else 0.02 for s in SEGMENTS]
        return {"turn_end_pred_s": 1.0 if partner_turn else None, "segment_probs": probs,
                "target_probs": [0.5, 0.5], "core": list(np.sin(np.arange(16) + self.obs["t"])),
                "segment_names": SEGMENTS}


def test_readouts_against_the_truth(tmp_path: Path) -> None:
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.env import TurnTakingEnv
    from robot_mirror.policies import build_policies, rollout
    from robot_mirror.viewer.config import ViewerConfig
    from robot_mirror.viewer.logger import Viewer, inprocess_hook

    scenario = load_scenario(ROOT / "launch/tower.yaml", [*SHORT[1::2], *EXPERTS[1::2]])
    env = TurnTakingEnv(scenario)
    inner = build_policies(env, scenario)
    boxes = {"left": [], "right": []}
    policies = {n: WithReadouts(p, boxes["right" if n == "left" else "left"]) for n, p in inner.items()}
    boxes["left"].append(policies["left"])
    boxes["right"].append(policies["right"])
    viewer = Viewer(scenario, ViewerConfig(rrd=str(tmp_path / "r.rrd"), heatmap_every=10, heatmap_window=50))
    try:
        summary = rollout(env, policies, scenario.seed, inprocess_hook(viewer, env, policies))
    finally:
        viewer.close()
        env.close()
    assert summary["turns"] >= 2  # the left arm's turn ended: its truth is known
    rows = read_back(tmp_path / "r.rrd")
    right = "/mirror/right"
    predicted = rows[f"{right}/turn_end/predicted"]
    true = column(rows[f"{right}/turn_end/true"], "Scalars:scalars")
    assert len(predicted) > 60 and len(true) >= len(predicted) - 1
    # The true time to the partner's turn end, logged back at each tick of
    # that turn once it ended: it falls by one tick per tick, to ~0.
    values = np.array([v[0] for v in true])
    first_turn = values[: int(np.argmin(values)) + 1]
    assert np.allclose(np.diff(first_turn), -1 / 60, atol=1e-6) and first_turn[-1] < 0.05
    truth = column(rows[f"{right}/segment/truth"], "Scalars:scalars")
    assert truth and truth == column(rows[f"{right}/segment/recognised"], "Scalars:scalars")
    assert {len(p) for p in column(rows[f"{right}/segment/probs"], "Scalars:scalars")} == {len(SEGMENTS)}
    modes = [m[0] for m in column(rows[f"{right}/mode"], "StateChange:state")]
    assert modes[0] == "observing" and "executing" in modes, modes
    # The core heatmap: a picture every 10 ticks of readouts.
    assert len(rows["/mirror/left/core"]) == len(rows["/mirror/left/segment/recognised"]) // 10 > 0


@pytest.mark.multiprocess
def test_viewer_node_reads_the_bus_requests_and_refusals_included(tmp_path: Path) -> None:
    from robot_mirror.client import Controller

    out, rrd = tmp_path / "mp", tmp_path / "mp.rrd"
    proc = launch(out, "launch/tower_external.yaml", "--set", "task.blocks=2", "--set", "task.time_limit=6",
                  "--set", "task.first=right", "--rrd", str(rrd))
    path = wait_for(out / "endpoints.json")
    try:
        # The sim never waits for the viewer: act only once it reads the bus.
        log = wait_for(out / "logs" / "viewer.log")
        deadline = time.monotonic() + 90
        while "viewer: reading state" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with Controller("left", path, timeout=60) as arm:
            arm.next_observation()
            arm.request_turn()
            arm.wait_reply()
            for _ in range(10):  # straight at the tower while the partner holds the turn
                arm.next_observation()
                arm.send_ee([0.0, 0.0, 0.2, 1.0, 0.0, 0.0, 0.0])
                arm.wait_reply()
            for _ in arm.observations(timeout=3.0):  # then hold still to the end of the run
                arm.hold()
    finally:
        summary = finish(proc, out)
    assert summary["_returncode"] == 0, summary["_stderr"]
    assert (out / "logs" / "viewer.log").is_file()
    rows = read_back(rrd)
    texts = " | ".join(t[0] for t in column(rows["/turns/events"], "TextLog:text"))
    assert len(rows["/turns/left/refused"]) >= 1 and len(rows["/turns/left/turn_request"]) == 1, texts
    assert "left     refused" in texts and "left     turn_request" in texts, texts
    assert len(rows["/world/arms/right/panda_hand"]) > 30
    assert column(rows["/turns/holder"], "StateChange:state")[0] == ["right"]


def test_a_run_without_viewer_never_imports_rerun() -> None:
    """``make run`` does not pay for the viewer: every module a launch
    imports, the viewer node's included, leaves rerun unloaded."""
    code = ("import sys, robot_mirror.cli, robot_mirror.launch.runner, robot_mirror.launch.supervisor, "
            "robot_mirror.nodes.viewer; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('rerun', 'rerun_bindings', 'pyarrow')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout


@pytest.mark.parametrize("args, needle", [
    (["--viewer-camera"], "--viewer-camera: give --viewer"),
    (["--rrd", "x.rrd", "--viewer-camera"], "--viewer-camera needs --inprocess"),
    (["--viewer"], "--viewer needs a display"),
    (["--rrd", "/proc/nope/x.rrd"], "--rrd /proc/nope/x.rrd"),
    (["--viewer-url", "rerun+http://127.0.0.1:1/proxy"], "no viewer listening there"),
    (["--viewer-url", "http//nowhere"], "not a rerun URL"),
])
def test_viewer_flags_refused_in_one_line(args: list[str], needle: str, monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert_one_line_error(run_cli("launch", "launch/tower.yaml", *args), needle)
