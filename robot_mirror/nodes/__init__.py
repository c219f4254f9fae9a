"""One module per process: sim, perception, policy, turn (the arbiter).

Every node is a :class:`~robot_mirror.nodes.base.Node`: it talks to the
supervisor over the control channel (hello, heartbeats, stop) and to the
other nodes only through the bus (docs/protocol.md).
"""

NODE_KINDS = ("sim", "perception", "policy", "turn")
