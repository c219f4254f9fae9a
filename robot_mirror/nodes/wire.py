"""Observation <-> ``obs`` message, shared by perception (encoder) and the
policy node and external client (decoders)."""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_mirror.bus.codec import Message, encode

_ARRAY_DTYPES = {"f": np.float64, "b": np.bool_, "i": np.int64, "u": np.int64}


def encode_obs(robot: str, obs: dict[str, Any], *, tick: int, episode: int, seq: int) -> list:
    arrays, scalars = {}, {}
    for key, value in obs.items():
        if isinstance(value, np.ndarray):
            arrays[key] = value.astype(_ARRAY_DTYPES.get(value.dtype.kind, np.float64), copy=False)
        elif isinstance(value, np.generic):
            scalars[key] = value.item()
        else:
            scalars[key] = value
    return encode(f"obs.{robot}", "obs", robot=robot, seq=seq, t_sim=float(obs["t"]), tick=tick, fields={
        "holder": obs["holder"], "observed": bool(obs["partner_observed"]), "episode": episode,
        "scalars": scalars,
    }, arrays=arrays, validate=False)


def decode_obs(msg: Message) -> dict[str, Any]:
    """The observation dictionary a policy works on (arrays copied, writable)."""
    obs: dict[str, Any] = dict(msg.fields["scalars"])
    for key, value in msg.arrays.items():
        obs[key] = np.array(value)
    obs["holder"] = msg.fields["holder"]
    obs["partner_observed"] = msg.fields["observed"]
    return obs
