#!/usr/bin/env bash
# Every figure of docs/usage.md's "From points to answers" table, re-measured with the current model in one go
# (about 25 minutes on 2 cores; needs ../shared/data and the `label` extra for the MediaPipe comparisons):
#   bash benchmarks/answers.sh [--model WEIGHTS]
# writes benchmarks/results/{head_pose,trust,blinks,chips}.md (+ blinks_*.png) and docs/answers.png.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
"$PY" benchmarks/chips.py
"$PY" benchmarks/trust.py --quiet "$@"
"$PY" benchmarks/blinks.py "$@"
"$PY" benchmarks/head_pose.py --quiet "$@"
"$PY" scripts/make_answers_figure.py
