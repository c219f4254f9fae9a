"""One module per process: sim, perception, policy, turn (the arbiter), and
the optional viewer.

Every node is a :class:`~robot_mirror.nodes.base.Node`: it talks to the
supervisor over the control channel (hello, heartbeats, stop) and to the
other nodes only through the bus (docs/protocol.md). :data:`NODE_KINDS` is
the one list of node kinds: the CLI's ``node`` command, the supervisor's
start plan and its stop order all read it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class NodeKind:
    """``options``: the extra ``robot-mirror node`` options this kind takes
    (``robot``: one node per robot whose policy is not external; ``record``:
    a video folder; ``viewer``, ``rrd``: where the viewer sends its data).
    ``restartable``: a crashed node is restarted under the scenario's
    ``nodes.<kind>`` policy; one that is not ends the run. ``stop_rank``:
    lower stops first (sources of commands before the sim). ``optional``:
    started only when the launch asks for it (the viewer: ``--viewer``/``--rrd``)."""

    module: str
    cls: str
    options: tuple[str, ...] = ()
    restartable: bool = True
    stop_rank: int = 0
    optional: bool = False

    @property
    def per_robot(self) -> bool:
        return "robot" in self.options

    def load(self) -> type:
        """The node class (imported on demand: only the sim loads pybullet)."""
        return getattr(importlib.import_module(self.module), self.cls)


# Start order: the arbiter and perception first, the sim (whose first tick
# waits for every subscriber) last.
NODE_KINDS: dict[str, NodeKind] = {
    "turn": NodeKind("robot_mirror.nodes.turn", "TurnNode", stop_rank=2),
    "perception": NodeKind("robot_mirror.nodes.perception", "PerceptionNode", stop_rank=1),
    "policy": NodeKind("robot_mirror.nodes.policy", "PolicyNode", options=("robot",), stop_rank=0),
    "sim": NodeKind("robot_mirror.nodes.sim", "SimNode", options=("record",), restartable=False, stop_rank=3),
    # A reader of the bus like any external program; stopped last, so it sees the final states.
    "viewer": NodeKind("robot_mirror.nodes.viewer", "ViewerNode", options=("viewer", "rrd"), stop_rank=4,
                       optional=True),
}


def node_name(kind: str, robot: str | None = None) -> str:
    """A node's identity on the control channel: ``sim``, ``policy.left``..."""
    return f"{kind}.{robot}" if robot else kind
