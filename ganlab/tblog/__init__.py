"""TensorBoard logging without TensorFlow: event files, image grids, and reading them back.

``read`` is not imported here: it pulls in TensorBoard's reader, which the
trainer does not need.
"""

from ganlab.tblog.grid import image_grid, save_png, to_uint8
from ganlab.tblog.writer import RunWriter

__all__ = ["RunWriter", "image_grid", "save_png", "to_uint8"]
