"""Simulation: the PyBullet world, URDF-driven arms, tasks and the scripted
expert. This package is the only one that imports pybullet; submodules are
imported explicitly so pybullet-free ones (``spec``, ``zone``) stay light."""
