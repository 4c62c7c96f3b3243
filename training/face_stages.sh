#!/usr/bin/env bash
# The face CNN's five-stage recipe (perception/models/FACE_EXPRESSION.md), every stage's epoch picked on a tenth of
# FER-2013 train carved out by the trainer (--val-share 0.1), never on the public test split it reports.
# Resumable: a finished stage (its weights written and its log complete) is skipped, an interrupted one resumes.
#   nice -n 19 bash training/face_stages.sh [WORKDIR [SEED]]   (70 epochs; ~100 s each at 40 px, ~125 s at 48 px,
#   with their evaluations, on 2 idle cores here: about 2.3 h). SEED (default 7, the shipped weights') also draws the
#   held-out tenth, so each seed picks its epochs on its own tenth.
set -euo pipefail
W=${1:-.cache/face-v2}
SEED=${2:-7}
PA=${PERSONA_AGENT:-.venv/bin/persona-agent}
prev=""
stage() {  # name epochs args...
  local name=$1 epochs=$2; shift 2
  local out="$W/$name/face_expression.weights.h5" work="$W/$name/work"
  mkdir -p "$W/$name"
  if [ -f "$W/$name/face_expression.training.json" ]; then echo "stage $name done"; prev=$out; return; fi
  local init=(); [ -n "$prev" ] && init=(--init "$prev")
  local resume=(); [ -f "$work/log.json" ] && resume=(--resume)
  "$PA" train face --val-share 0.1 --seed "$SEED" --epochs "$epochs" --workdir "$work" --out "$out" "${init[@]}" "${resume[@]}" "$@"
  prev=$out
}
main() {  # the whole run is one function, so bash has parsed it before any stage starts: editing this file mid-run is safe
stage s1 19 --crop 40 --lr 2e-3 --aug 1 --dropout 0.3
stage s2 12 --crop 40 --lr 1e-3 --aug 0.6 --dropout 0.3
stage s3 18 --crop 40 --lr 5e-4 --aug 0.35 --dropout 0.25
stage s4 7 --crop 48 --lr 3e-4 --aug 0.3 --dropout 0.25
stage s5 14 --crop 48 --lr 2e-4 --aug 0.3 --dropout 0.25
echo "final weights: $prev"
}
main "$@"
