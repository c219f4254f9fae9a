#!/usr/bin/env bash
# How the shipped MirrorNet checkpoints in sim_assets/ were made: exactly
# these commands, run from the project root with the project's venv.
# Demonstrations use seeds from 1000 on, so evaluation seeds 0..N are unseen.
set -euo pipefail
RM=${RM:-.venv/bin/robot-mirror}

$RM demos launch/tower.yaml --episodes 20 --seed 1000 --out data/demos_tower --quiet
$RM train --data data/demos_tower --out sim_assets/mirror_tower.pt --seed 0 --quiet
$RM train --data data/demos_tower --out sim_assets/mirror_tower_nocontrastive.pt --seed 0 --no-contrastive --quiet

$RM demos launch/imitation.yaml --episodes 24 --seed 1000 --out data/demos_imitation --quiet
$RM train --data data/demos_imitation --out sim_assets/mirror_imitation.pt --seed 0 --quiet
