"""A fast reader of a run's event files without TensorFlow or TensorBoard's accumulator.

``ganlab report`` reads thousands of runs; TensorBoard's ``EventAccumulator``
(see :mod:`ganlab.tblog.read`) spends most of its time on bookkeeping the
report does not need. This module walks the TFRecord framing itself (length,
length CRC, payload, payload CRC) and parses each payload with TensorBoard's
``Event`` protobuf, keeping only scalars and images. It follows the same rules
the accumulator applies to the files :class:`ganlab.tblog.writer.RunWriter`
writes: files are read in name order, and a ``SessionLog.START`` after the
run's first one (a resume) drops every point at or after its step. A record
cut short at the end of a file (a run still writing) ends that file quietly.
CRCs are not checked: the files are local and a damaged record fails to parse.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata

__all__ = ["RunEvents", "read_events"]

_HEADER = struct.Struct("<Q")
_START = event_pb2.SessionLog.START


@dataclass
class RunEvents:
    """What one run logged: per tag, points in logged order.

    ``scalars[tag]`` is a list of ``(step, wall_time, value)``;
    ``images[tag]`` a list of ``(step, wall_time, encoded_png)``.
    """

    scalars: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
    images: dict[str, list[tuple[int, float, bytes]]] = field(default_factory=dict)
    start_time: float | None = None


def _records(data: bytes):
    pos, end = 0, len(data)
    while pos + 12 <= end:
        (length,) = _HEADER.unpack_from(data, pos)
        start = pos + 12
        stop = start + length
        if stop + 4 > end:
            return  # a record still being written
        yield data[start:stop]
        pos = stop + 4


def event_files(logdir: str | os.PathLike) -> list[Path]:
    """The run's event files in the order TensorBoard reads them (by name)."""
    folder = Path(logdir)
    return sorted((p for p in folder.iterdir() if "tfevents" in p.name and p.is_file()), key=lambda p: p.name)


def read_events(logdir: str | os.PathLike, *, images: bool = True) -> RunEvents:
    """Scalars (and, unless ``images`` is False, images) of the run in ``logdir``.

    Raises FileNotFoundError when ``logdir`` is not a directory.
    """
    if not os.path.isdir(logdir):
        raise FileNotFoundError(f"no run directory at {os.fspath(logdir)}")
    out = RunEvents()
    kinds: dict[str, str] = {}  # tag -> plugin, from the first metadata seen (as TensorBoard keeps it)
    seen_start = False
    for path in event_files(logdir):
        data = path.read_bytes()
        for payload in _records(data):
            event = event_pb2.Event.FromString(payload)
            if out.start_time is None and event.wall_time:
                out.start_time = event.wall_time
            what = event.WhichOneof("what")
            if what == "session_log":
                if event.session_log.status == _START:
                    if seen_start:
                        _purge(out, event.step)
                    seen_start = True
                continue
            if what != "summary":
                continue
            for value in event.summary.value:
                kind = kinds.get(value.tag)
                if kind is None and value.HasField("metadata"):
                    kind = kinds[value.tag] = value.metadata.plugin_data.plugin_name
                if kind == scalar_metadata.PLUGIN_NAME:
                    number = _scalar(value)
                    if number is not None:
                        out.scalars.setdefault(value.tag, []).append((event.step, event.wall_time, number))
                elif kind == image_metadata.PLUGIN_NAME and images:
                    # The image plugin's tensor: [width, height, encoded image ...].
                    strings = value.tensor.string_val
                    if len(strings) >= 3:
                        out.images.setdefault(value.tag, []).append((event.step, event.wall_time, strings[2]))
    return out


def _scalar(value) -> float | None:
    tensor = value.tensor
    if tensor.float_val:
        return float(tensor.float_val[0])
    if tensor.double_val:
        return float(tensor.double_val[0])
    if tensor.tensor_content:
        # A 0-d float32 (dtype 1) or float64 (dtype 2) packed as bytes.
        fmt = {1: "<f", 2: "<d"}.get(tensor.dtype)
        if fmt and len(tensor.tensor_content) == struct.calcsize(fmt):
            return float(struct.unpack(fmt, tensor.tensor_content)[0])
        return None
    return None


def _purge(out: RunEvents, step: int) -> None:
    for series in (out.scalars, out.images):
        for tag, points in series.items():
            series[tag] = [p for p in points if p[0] < step]
