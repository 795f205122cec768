"""A ganlab dataset plugin: uint8 images (N, H, W, C), optionally with integer labels.

Check it with:  ganlab plugins check my-dataset
Queue it with:  ganlab queue add --dataset my-dataset --arch mlp --steps 200
"""

import ganlab

NAME = "my-dataset"


def load(params):
    """Make the images; replace this with reading your files (raise ganlab.DatasetUnavailable if absent)."""
    import numpy as np

    count, size = params["count"], params["size"]
    rng = np.random.default_rng(params["layout_seed"])
    # A bright disc on a dark background, at a random place; the label is the quarter of the image it is in.
    centres = rng.uniform(size * 0.25, size * 0.75, size=(count, 2))
    rows, cols = np.mgrid[0:size, 0:size]
    distance = np.hypot(rows[None] - centres[:, 0, None, None], cols[None] - centres[:, 1, None, None])
    images = np.where(distance < size / 5, 255, 0).astype(np.uint8)[..., None]  # (N, H, W, 1)
    labels = (centres[:, 0] > size / 2).astype(np.int32) * 2 + (centres[:, 1] > size / 2)
    return ganlab.ImageData(images, labels, class_names=("top-left", "top-right", "bottom-left", "bottom-right"))


def describe(params):
    """Shape facts without making the images: 'queue add' calls this for every sweep it checks."""
    return ganlab.DataInfo((params["size"], params["size"], 1), num_classes=4, num_examples=params["count"])


@ganlab.hookimpl
def register_datasets(register):
    register(ganlab.DatasetSpec(
        name=NAME,
        description="discs at random places, labelled by quarter (edit me)",
        load=load,
        describe=describe,
        params=(
            ganlab.Param("count", int, 1024, "number of images", low=2, high=1_000_000),
            ganlab.Param("size", int, 16, "height and width in pixels", low=4, high=512),
            ganlab.Param("layout_seed", int, 0, "seed of the disc positions", low=0, high=2**31 - 1),
        ),
    ))
