"""Seconds per 1,000 images of Inception-V3 feature extraction, against the classifier feature net.

Nothing is downloaded: both backbones run the real InceptionV3 architecture
with random weights (the cost of a forward pass does not depend on the weight
values):

- the Keras path: ``keras.applications.InceptionV3`` saved as a stand-in
  weights file where the locator looks, loaded by ``load_inception("keras")``;
- the TF-FID path: the same network frozen into a GraphDef with the FID
  graph's tensor names (``ExpandDims:0`` in, in-graph ``ResizeBilinear`` to
  299x299, ``pool_3:0`` out), loaded by ``load_inception("tf-fid")``.

The reference, measured in the same run on the same images, is the feature
net behind ganlab's classifier FD (an MLP on 32-pixel inputs). One batch is
run before timing (graph tracing is a one-off cost per process). Also timed:
one FID from two sets of 2048-d statistics (two 2048x2048 eigendecompositions).

    python benchmarks/bench_inception.py                 # writes docs/performance.md
    IMAGES=200 SIZE=64 python benchmarks/bench_inception.py --no-write

Environment: IMAGES (100), SIZE (32, square RGB), BATCH (50).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from perfdoc import machine_description, replace_section  # noqa: E402

HEADING = "Inception features: `benchmarks/bench_inception.py`"


def _standins(home: Path) -> None:
    """Random-weight InceptionV3 files at both sources' paths under ``home/models``."""
    import keras
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from ganlab.metrics.inception_weights import KERAS_IMAGENET, TF_FID_GRAPH

    keras.utils.set_random_seed(0)
    model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None, input_shape=(299, 299, 3))
    h5 = home / "models" / KERAS_IMAGENET.relpath
    h5.parent.mkdir(parents=True, exist_ok=True)
    model.save(h5)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def graph(x):
        x = tf.identity(x, name="ExpandDims")
        x = tf.raw_ops.ResizeBilinear(images=x, size=[299, 299], align_corners=False, name="ResizeBilinear")
        return tf.identity(model((x - 128.0) / 128.0, training=False), name="pool_3")

    frozen = convert_variables_to_constants_v2(graph.get_concrete_function())
    pb = home / "models" / TF_FID_GRAPH.relpath
    pb.parent.mkdir(parents=True, exist_ok=True)
    pb.write_bytes(frozen.graph.as_graph_def().SerializeToString())


def _per_1000(fn, images, batch: int) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) per 1,000 images."""
    fn(images[:batch])  # warm-up: tracing
    started, cpu = time.perf_counter(), time.process_time()
    fn(images)
    scale = 1000 / len(images)
    return (time.perf_counter() - started) * scale, (time.process_time() - cpu) * scale


def _reference(images, batch: int):
    """The classifier feature net's ``features``, fitted (briefly) on images of the same shape."""
    import numpy as np

    from ganlab.metrics.featurenet import FeatureNetConfig, fit, prepare

    rng = np.random.default_rng(0)
    train = rng.uniform(-1, 1, (500, *images.shape[1:])).astype(np.float32)
    net = fit(prepare(train), rng.integers(0, 10, len(train)), FeatureNetConfig(max_iter=2))
    return lambda x: net.features(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    args = parser.parse_args()
    n, size, batch = int(os.environ.get("IMAGES", 100)), int(os.environ.get("SIZE", 32)), int(os.environ.get("BATCH", 50))
    machine = machine_description()

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KERAS_HOME"] = tmp
        _standins(Path(tmp))
        from ganlab.metrics.distances import frechet_from_stats, gaussian_stats
        from ganlab.metrics.inception import load_inception

        images = np.random.default_rng(1).uniform(-1, 1, (n, size, size, 3)).astype(np.float32)
        rows = {}
        rows["classifier feature net (reference)"] = _per_1000(_reference(images, batch), images, batch)
        for source in ("keras", "tf-fid"):
            backbone = load_inception(source, download=False)
            rows[f"Inception-V3, `{source}` path"] = _per_1000(
                lambda x, b=backbone: b.features(x, batch_size=batch), images, batch)
            print(f"{source}: {rows[f'Inception-V3, `{source}` path'][0]:.1f} s per 1,000 images", flush=True)

        from threadpoolctl import threadpool_limits

        rng = np.random.default_rng(2)
        stats = [gaussian_stats(rng.normal(size=(2100, 2048))) for _ in range(2)]
        fid = {}
        for threads in (None, 1):  # BLAS's default threads, then one (what the classifier FD uses)
            with threadpool_limits(limits=threads, user_api="blas"):
                started, cpu = time.perf_counter(), time.process_time()
                frechet_from_stats(*stats[0], *stats[1])
                fid[threads] = (time.perf_counter() - started, time.process_time() - cpu)

    ref = rows["classifier feature net (reference)"]
    table = [f"| {name} | {wall:.2f} s | {wall / ref[0]:,.0f}x | {cpu:.2f} s |" for name, (wall, cpu) in rows.items()]
    print("\n".join(table))
    print(f"one FID from 2048-d statistics: {fid[None][0]:.2f} s wall ({fid[None][1]:.2f} s CPU) with BLAS's "
          f"default threads, {fid[1][0]:.2f} s with one thread")
    section = f"""## {HEADING}

{machine}. {n} random {size}x{size} RGB images, batches of {batch}, after one
warm-up batch; InceptionV3 with random weights (stand-ins: a forward pass
costs the same whatever the weights), on TensorFlow.

| features | wall seconds per 1,000 images | vs reference | CPU seconds (all threads) |
|---|---|---|---|
{chr(10).join(table)}

CPU seconds move far less with the shared VM's load than wall time; on an
idle machine the wall time is roughly the CPU time divided by the cores
TensorFlow can use. One FID from two sets of 2048-d statistics (mean,
covariance; two 2048x2048 eigendecompositions) takes {fid[None][0]:.2f} s wall
({fid[None][1]:.2f} s CPU) with BLAS's default threads and {fid[1][0]:.2f} s with one
BLAS thread: on a loaded machine, threads fighting over the cores cost more
than they bring. Every image is resized to
299x299 first, so the cost hardly depends on the data set's image size. The
real data's statistics are computed once per data set and cached
(`ganlab.metrics.reference_stats`); each evaluation pays only for the
generated images: at 500 per evaluation, about
{rows["Inception-V3, `tf-fid` path"][1] / 2:.0f} CPU seconds of features per evaluation.
"""
    if not args.no_write:
        print(f"wrote {replace_section(HEADING, section)}")


if __name__ == "__main__":
    main()
