"""Where robot and scene descriptions come from, and how they are made loadable.

PyBullet's ``loadURDF`` does not resolve ROS ``package://`` mesh paths
(bullet3 #3224, #2175), which is the most common reason a user's own robot
fails to load. :func:`prepare_urdf` rewrites every mesh reference to an
absolute path against the URDF's own folder (or the enclosing ROS package)
and loads a private copy, leaving the user's file untouched.

The private copy lives in memory (an anonymous ``memfd`` opened through
``/proc/self/fd``), not in a temp folder: a folder removed by ``atexit``
outlived every killed process (a kill drill left 16 behind), while the
kernel frees an anonymous file with the process however it ends.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pybullet_data

from robot_mirror.errors import URDFError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SIM_ASSETS = PROJECT_ROOT / "sim_assets"
PYBULLET_DATA = Path(pybullet_data.getDataPath())

_PREPARED_DIR: Path | None = None  # only where memfd is unavailable (not Linux)
_PREPARED: dict[str, Path] = {}    # content hash -> loadable copy, one per process


def resolve_urdf(spec: str | Path, base_dir: Path | None = None) -> Path:
    """Find a URDF given as a path (absolute, relative to ``base_dir`` or the
    working directory, or to the project root) or as a pybullet_data name."""
    spec = str(spec)
    candidates = [Path(spec)]
    if base_dir is not None:
        candidates.append(Path(base_dir) / spec)
    candidates += [PROJECT_ROOT / spec, PYBULLET_DATA / spec]
    for path in candidates:
        if path.is_file():
            return path.resolve()
    raise URDFError(f"URDF not found: '{spec}' (looked as a path and in pybullet_data)")


def _find_package_root(urdf_path: Path, package: str) -> Path | None:
    """The folder of ROS package ``package`` at or above the URDF's folder."""
    for folder in [urdf_path.parent, *urdf_path.parents]:
        if folder.name == package:
            return folder
        manifest = folder / "package.xml"
        if manifest.is_file():
            try:
                name = ET.parse(manifest).getroot().findtext("name")
            except ET.ParseError:
                name = None
            if name == package:
                return folder
        sibling = folder / package
        if sibling.is_dir():
            return sibling
    return None


def _resolve_mesh(filename: str, urdf_path: Path) -> str:
    if filename.startswith("package://"):
        package, _, rest = filename[len("package://"):].partition("/")
        root = _find_package_root(urdf_path, package)
        if root is None:
            raise URDFError(
                f"{urdf_path}: mesh '{filename}' names ROS package '{package}', "
                "which is not a folder at or above the URDF"
            )
        target = root / rest
    elif filename.startswith("file://"):
        target = Path(filename[len("file://"):])
    else:
        target = Path(filename)
        if not target.is_absolute():
            target = urdf_path.parent / target
    if not target.is_file():
        raise URDFError(f"{urdf_path}: mesh file not found: '{filename}' (resolved to {target})")
    return str(target.resolve())


def parse_urdf(path: Path) -> ET.ElementTree:
    """Parse a URDF, turning XML errors into one line naming file and position."""
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise URDFError(f"{path}: malformed XML ({exc})") from None
    if tree.getroot().tag != "robot":
        raise URDFError(f"{path}: root element is <{tree.getroot().tag}>, expected <robot>")
    return tree


def prepare_urdf(path: Path) -> Path:
    """A loadable copy of the URDF with every mesh path made absolute.

    Returns the original path when it has no mesh references to rewrite.
    Copies are cached by content hash for the life of the process and never
    touch the disk (see the module docstring).
    """
    tree = parse_urdf(path)
    meshes = tree.getroot().iter("mesh")
    changed = False
    for mesh in meshes:
        filename = mesh.get("filename")
        if filename is None:
            raise URDFError(f"{path}: <mesh> without a filename attribute")
        absolute = _resolve_mesh(filename, path)
        if absolute != filename:
            mesh.set("filename", absolute)
            changed = True
    if not changed:
        return path
    text = ET.tostring(tree.getroot(), encoding="unicode")
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    if digest not in _PREPARED:
        _PREPARED[digest] = _write_private(text, f"{path.stem}-{digest}")
    return _PREPARED[digest]


def _write_private(text: str, name: str) -> Path:
    """A file only this process can name, holding ``text``: an anonymous
    in-memory file where the OS has them (freed with the process, even on
    SIGKILL), else a temp folder removed at exit."""
    data = text.encode()
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create(f"robot_mirror_urdf_{name}"[:200])  # close-on-exec: children never see it
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        return Path(f"/proc/self/fd/{fd}")
    global _PREPARED_DIR
    if _PREPARED_DIR is None:
        _PREPARED_DIR = Path(tempfile.mkdtemp(prefix="robot_mirror_urdf_"))
        atexit.register(shutil.rmtree, _PREPARED_DIR, True)
    out = _PREPARED_DIR / f"{name}.urdf"
    out.write_text(text)
    return out


def asset(name: str) -> Path:
    """A project-authored scene file from ``sim_assets/``."""
    path = SIM_ASSETS / name
    if not path.is_file():
        raise URDFError(f"missing project asset: {path}")
    return path
