#!/usr/bin/env bash
# Fills .whl/ (git-ignored) with what a lent GPU machine needs to run benchmarks/gpu_check.py and lacks:
# wheels of ganlab's pure-Python dependencies that its image does not have (Keras and SQLAlchemy, with
# Keras's namex and optree), for its Python 3.12 on x86-64, at the versions installed here, and the
# hand-written reference programs from ../shared/bench, which do not travel with the checkout.
# Everything else ganlab needs (JAX with CUDA, numpy, scipy, scikit-learn, TensorBoard, Pillow, pluggy,
# click, rich) is in that image; TensorFlow is not needed on the JAX path.
#
#   benchmarks/build_wheelhouse.sh            # then: carry .whl (see benchmarks/gpu_check.py)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.whl
python=${PYTHON:-.venv/bin/python}
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf "$dir" && mkdir -p "$dir/bench"
pins=$("$python" - <<'PY'
from importlib.metadata import version
print(" ".join(f"{name}=={version(name)}" for name in ("keras", "namex", "optree", "sqlalchemy")))
PY
)
# shellcheck disable=SC2086 # one argument per pin
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$dir" $pins
cp ../shared/bench/reference_dcgan_jax.py ../shared/bench/reference_dcgan.py "$dir/bench/"
du -sh "$dir" && ls "$dir"
