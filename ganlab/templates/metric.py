"""A ganlab metric plugin: how far the generated images' per-pixel spread is from the real images' (collapse shows).

Check it with:  ganlab plugins check my-metric
Queue it with:  ganlab queue add --arch mlp --steps 200 --set train.metrics=fd,kid,my-metric
"""

import numpy as np

import ganlab

NAME = "my-metric"
#: The score's name in compare, TensorBoard and --objective: the plugin's name with '_' for '-'.
SCORE = NAME.replace("-", "_")


class Pixels:
    """Features = the raw pixels, flattened: no weights to load, nothing resized."""

    def card(self):
        # Goes on every score's metric card: what the numbers were computed on.
        return {"backbone": "pixels", "weights": "none", "resize": "none"}

    def __call__(self, images):
        return np.asarray(images, dtype=np.float64).reshape(len(images), -1)


def spread_gap(real, fake, ctx):
    """Mean over pixels of |std(fake) - std(real)| / (std(real) + eps); 0 when the spreads match."""
    real_std, fake_std = real.std(axis=0), fake.std(axis=0)
    gap = np.abs(fake_std - real_std) / (real_std + ctx.params["eps"])
    return {SCORE: float(gap.mean())}


@ganlab.hookimpl
def register_metrics(register):
    register(ganlab.MetricSpec(
        name=NAME,
        description="per-pixel spread of generated vs real images (edit me)",
        outputs=(SCORE,),
        # Metrics that name the same extractor share one extraction per evaluation.
        features=ganlab.FeatureSpec(f"{NAME}-pixels", "raw pixels, flattened", lambda ctx: Pixels()),
        compute=spread_gap,
        params=(ganlab.Param("eps", float, 0.05, "added to the real spread, so flat pixels do not divide by 0",
                             low=1e-6, high=1.0),),
        lower_is_better=True,
        min_samples=8,
    ))
