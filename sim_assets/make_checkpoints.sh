#!/usr/bin/env bash
# How the shipped MirrorNet checkpoints in sim_assets/ were made: exactly
# these commands, run from the project root with the project's venv, on a
# 2-core CPU machine. Demonstrations use seeds from 1000 on (evaluation uses
# seeds below 1000, so they are unseen) and the scenarios' default perception
# (a camera-like tracker: docs/mirror.md, "Perception").
#
# Per task: the shipped network (training seed 0), two more training seeds,
# and the no-alignment ablation at the same three seeds. `robot-mirror
# evaluate` finds the siblings by name (STEM_seedN.pt, STEM_noalign*.pt).
set -euo pipefail
RM=${RM:-.venv/bin/robot-mirror}
DATA=${DATA:-data}

$RM demos launch/tower.yaml --episodes 20 --seed 1000 --out "$DATA/demos_tower" --quiet
$RM demos launch/imitation.yaml --episodes 24 --seed 1000 --out "$DATA/demos_imitation" --quiet

for task in tower imitation; do
  for seed in 0 1 2; do
    suffix=$([ "$seed" = 0 ] && echo "" || echo "_seed$seed")
    $RM train --data "$DATA/demos_$task" --out "sim_assets/mirror_${task}${suffix}.pt" --seed "$seed" --quiet
    $RM train --data "$DATA/demos_$task" --out "sim_assets/mirror_${task}_noalign${suffix}.pt" --seed "$seed" \
      --no-align --quiet
  done
done
