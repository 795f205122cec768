"""Writing one run's TensorBoard event files with the ``tensorboard`` package alone.

TensorFlow is never imported: the trainer may run on JAX where it is absent,
and even where it is installed, importing it costs seconds and a second
framework in the process. ``tensorboard``'s own ``EventFileWriter`` goes
through ``tensorboard.compat.tf``, which imports TensorFlow whenever it is
installed, so this module frames records itself with TensorBoard's
``RecordWriter`` on a plain file. Summaries use the plugins' own metadata and
the tensor form TensorFlow 2 writes, so the Scalars, Images, Text and HParams
dashboards read them like any other run.

HParams, as TensorBoard 2.21 reads them (``plugins/hparams/backend_context.py``
and ``list_session_groups.py``):

* Each run directory holding a ``session_start_info`` is one session (a row).
* Experiment summary: if *any* run in the logdir has one, TensorBoard takes the
  first it finds as the whole experiment, hparam and metric columns alike. With
  several runs each writing their own, the columns would come from one
  arbitrary run and hide the hyperparameters only other runs have (runs of
  different architectures do not share hyperparameters). Without any,
  TensorBoard builds the experiment from the union of every run's
  ``session_start_info`` and lists every scalar tag of those runs as a metric.
  ganlab therefore writes none by default; ``experiment_summary=True`` is for
  a logdir whose runs all share the same hyperparameter names.
* Readers keep the *first* summary metadata they meet per run and tag, and the
  HParams plugin reads session status from that metadata, so a second
  ``session_end_info`` in a run is ignored. A resumed run that failed before
  must still end as "success"; hence the status lives in its own small event
  file, replaced on every ``hparams_end`` so a run holds exactly one. A
  TensorBoard that is already running keeps the status it read first;
  restarting it shows the new one.
"""

from __future__ import annotations

import io
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.compat.proto.summary_pb2 import SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2, summary_v2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.plugins.text import metadata as text_metadata
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from ganlab.atomicfile import atomic_write

__all__ = ["RunWriter", "STATUS_FILE_SUFFIX"]

STATUS_FILE_SUFFIX = ".ganlab-status"
_STATUSES = {
    "success": api_pb2.STATUS_SUCCESS,
    "failure": api_pb2.STATUS_FAILURE,
    "running": api_pb2.STATUS_RUNNING,
    "unknown": api_pb2.STATUS_UNKNOWN,
}
# Two writers opened in the same second by one process must not share a file name.
_file_counter = itertools.count()


def _event_file_path(logdir: str, suffix: str) -> str:
    """A new event file name that sorts after every event file already in ``logdir``.

    Readers select files by "tfevents" in the name and read them in name order
    (time first); a resumed run's file must come after the files it continues.
    """
    latest = max((_name_time(n) for n in os.listdir(logdir) if "tfevents" in n), default=0)
    stamp = max(int(time.time()), latest + 1)
    name = f"events.out.tfevents.{stamp:010d}.{socket.gethostname()}.{os.getpid()}.{next(_file_counter)}"
    return os.path.join(logdir, name + suffix)


def _name_time(name: str) -> int:
    parts = name.split(".")
    try:
        return int(parts[parts.index("tfevents") + 1])
    except (ValueError, IndexError):
        return 0


def _header_event() -> event_pb2.Event:
    # file_version 2 tells readers to honour SessionLog.START when a run restarts.
    return event_pb2.Event(
        wall_time=time.time(),
        file_version="brain.Event:2",
        source_metadata=event_pb2.SourceMetadata(writer="ganlab.tblog"),
    )


def _png(image: np.ndarray) -> tuple[bytes, int, int]:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3):
        got = f"{getattr(image, 'dtype', type(image).__name__)} {getattr(image, 'shape', '')}"
        raise ValueError(f"image must be a uint8 array (H, W, C) with C 1 or 3, got {got}; see ganlab.tblog.image_grid")
    h, w, c = image.shape
    pil = Image.fromarray(image[..., 0] if c == 1 else image, mode="L" if c == 1 else "RGB")
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue(), h, w


def _hparam_value(name: str, value: object) -> bool | int | float | str:
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (bool, int, float, str)):
        raise TypeError(f"hparam {name!r} = {value!r} must be a bool, int, float or str, got {type(value).__name__}")
    return value


class RunWriter:
    """Writes one run's scalars, images, text and HParams session into ``logdir``.

    Each writer appends a new event file, so a resumed run reuses its
    directory and TensorBoard shows the curves continuing.

    Args:
        logdir: the run's directory (created if missing).
        filename_suffix: appended to the event file's name.
        resume_step: when resuming from a checkpoint taken at this step, pass
            it: a ``SessionLog.START`` at that step makes TensorBoard drop the
            points the interrupted process logged at or after it, so the curve
            has no doubled tail. Leave it out for a new run, and for a second
            writer adding to a run (it must not purge anything).
        flush_secs: events reach the disk at least this often while writing.
    """

    def __init__(
        self,
        logdir: str | os.PathLike,
        *,
        filename_suffix: str = "",
        resume_step: int | None = None,
        flush_secs: float = 10.0,
    ) -> None:
        self._logdir = os.fspath(logdir)
        os.makedirs(self._logdir, exist_ok=True)
        new_run = not any("tfevents" in n for n in os.listdir(self._logdir))
        self.path = _event_file_path(self._logdir, filename_suffix)
        # "x": a name collision must fail loudly instead of truncating someone's events.
        self._file = open(self.path, "xb")
        self._records = RecordWriter(self._file)
        self._lock = threading.Lock()
        self._described: set[str] = set()
        self._flush_secs = float(flush_secs)
        self._last_flush = time.monotonic()
        self._closed = False
        self._write(_header_event())
        # TensorBoard's Python reader takes a run's first START as its beginning and
        # purges steps >= any later START's step; the Rust reader (data server 0.7)
        # purges at every START. So a new run gets one at step 0, a resume one at its
        # step, and any other writer none.
        start_step = int(resume_step) if resume_step is not None else 0 if new_run else None
        if start_step is not None:
            start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            self._write(event_pb2.Event(wall_time=time.time(), step=start_step, session_log=start))
        self.flush()

    @property
    def logdir(self) -> str:
        return self._logdir

    # ----------------------------------------------------------------- summaries

    def scalar(self, tag: str, value: float, step: int) -> None:
        """One point of the curve ``tag`` (Scalars dashboard; HParams metric)."""
        self._emit(step, [(tag, _scalar_tensor(value), scalar_metadata.create_summary_metadata)])

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        """Several scalars at the same step, in one event."""
        self._emit(step, [(tag, _scalar_tensor(v), scalar_metadata.create_summary_metadata) for tag, v in values.items()])

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """One PNG-encoded image, ``(H, W, C)`` uint8 with C 1 or 3 (Images dashboard)."""
        png, height, width = _png(image)
        # The image plugin's tensor form: [width, height, encoded image ...].
        tensor = tensor_util.make_tensor_proto(np.array([str(width).encode(), str(height).encode(), png], dtype=object))
        self._emit(step, [(tag, tensor, image_metadata.create_summary_metadata)])

    def text(self, tag: str, text: str, step: int) -> None:
        """Markdown shown by the Text dashboard."""
        tensor = tensor_util.make_tensor_proto(np.array(str(text).encode("utf-8"), dtype=object))
        self._emit(step, [(tag, tensor, text_metadata.create_summary_metadata)])

    # ------------------------------------------------------------------- hparams

    def hparams_start(
        self,
        hparams: Mapping[str, bool | int | float | str],
        metrics: Sequence[str] = (),
        *,
        group_name: str | None = None,
        start_time: float | None = None,
        experiment_summary: bool = False,
    ) -> None:
        """Declare this run an HParams session with these hyperparameter values.

        Args:
            hparams: name -> value; numpy scalars are accepted.
            metrics: the scalar tags that score the run. TensorBoard already
                lists every scalar of the run as a metric column; these are
                used only with ``experiment_summary``.
            group_name: runs sharing it form one row whose metrics are
                averaged; by default each run is its own row.
            start_time: seconds since the epoch; now by default.
            experiment_summary: also write an experiment summary naming
                exactly these hyperparameters and metrics. Only for a logdir
                whose runs all share hyperparameter names (see module docs).
        """
        values = {str(k): _hparam_value(str(k), v) for k, v in hparams.items()}
        metric_tags = [str(m) for m in metrics]
        if any(not m for m in metric_tags):
            raise ValueError(f"metric tags must be non-empty strings, got {list(metrics)!r}")
        # An empty trial id keeps group_name empty: TensorBoard then uses the run name.
        start = summary_v2.hparams_pb(values, trial_id=group_name or "", start_time_secs=start_time)
        if experiment_summary:
            infos = [api_pb2.HParamInfo(name=name, type=_hparam_type(v)) for name, v in sorted(values.items())]
            experiment = api_pb2.Experiment(
                hparam_infos=infos,
                metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in metric_tags],
                time_created_secs=start_time if start_time is not None else time.time(),
            )
            data = plugin_data_pb2.HParamsPluginData(experiment=experiment)
            start.value.append(_hparams_value(hparams_metadata.EXPERIMENT_TAG, data))
        self._write(event_pb2.Event(wall_time=time.time(), step=0, summary=start))
        self.flush()

    def hparams_end(self, status: str, *, end_time: float | None = None) -> None:
        """Record the session's status: "success", "failure", "running" or "unknown".

        Replaces the status any earlier writer left in this run (module docs say why).
        """
        if status not in _STATUSES:
            raise ValueError(f"status should be one of {sorted(_STATUSES)}. Received: status={status!r}")
        end = plugin_data_pb2.SessionEndInfo(
            status=_STATUSES[status], end_time_secs=end_time if end_time is not None else time.time()
        )
        data = plugin_data_pb2.HParamsPluginData(session_end_info=end)
        value = _hparams_value(hparams_metadata.SESSION_END_INFO_TAG, data)
        event = event_pb2.Event(wall_time=time.time(), step=0, summary=summary_pb2.Summary(value=[value]))
        with self._lock:
            self._check_open()
            old = [n for n in os.listdir(self._logdir) if n.endswith(STATUS_FILE_SUFFIX)]
            final = _event_file_path(self._logdir, STATUS_FILE_SUFFIX)
            # The temporary name lacks "tfevents" so no reader picks up a half-written file.
            with atomic_write(Path(final), temp_prefix=".ganlab-status.") as f:
                records = RecordWriter(f)
                records.write(_header_event().SerializeToString())
                records.write(event.SerializeToString())
            for name in old:
                if os.path.join(self._logdir, name) != final:
                    try:
                        os.remove(os.path.join(self._logdir, name))
                    except FileNotFoundError:  # another writer of this run removed it first
                        pass

    # ----------------------------------------------------------------- lifetime

    def flush(self) -> None:
        """Push buffered events to the file so readers see them."""
        with self._lock:
            if not self._closed:
                self._records.flush()
                self._last_flush = time.monotonic()

    def close(self) -> None:
        """Flush, sync and close the event file; further writes raise."""
        with self._lock:
            if self._closed:
                return
            self._records.flush()
            os.fsync(self._file.fileno())
            self._records.close()
            self._closed = True

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def _emit(self, step: int, items: list[tuple[str, TensorProto, Callable[[str, str], SummaryMetadata]]]) -> None:
        """Write one event holding a value per ``(tag, tensor, metadata factory)``."""
        for tag, _, _ in items:
            if not isinstance(tag, str) or not tag:
                raise ValueError(f"summary tag must be a non-empty string, got {tag!r}")
        event = event_pb2.Event(wall_time=time.time(), step=int(step))
        with self._lock:
            for tag, tensor, make_metadata in items:
                value = event.summary.value.add(tag=tag, tensor=tensor)
                # Readers keep only the first metadata per tag; repeating it would only grow the file.
                if tag not in self._described:
                    value.metadata.CopyFrom(make_metadata(tag, ""))
                    self._described.add(tag)
            self._write_locked(event)

    def _write(self, event: event_pb2.Event) -> None:
        with self._lock:
            self._write_locked(event)

    def _write_locked(self, event: event_pb2.Event) -> None:
        self._check_open()
        self._records.write(event.SerializeToString())
        if time.monotonic() - self._last_flush >= self._flush_secs:
            self._records.flush()
            self._last_flush = time.monotonic()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"RunWriter for {self._logdir} is closed")


def _scalar_tensor(value: float) -> TensorProto:
    # float32, as TensorFlow 2 writes scalars; both readers (Python and Rust) convert it.
    return tensor_util.make_tensor_proto(np.float32(float(value)))


def _hparam_type(value: bool | int | float | str) -> int:
    if isinstance(value, bool):
        return api_pb2.DATA_TYPE_BOOL
    if isinstance(value, str):
        return api_pb2.DATA_TYPE_STRING
    return api_pb2.DATA_TYPE_FLOAT64


def _hparams_value(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary.Value:
    # The HParams plugin reads everything from the metadata; the tensor is an empty placeholder.
    return summary_pb2.Summary.Value(
        tag=tag, metadata=hparams_metadata.create_summary_metadata(data), tensor=hparams_metadata.NULL_TENSOR
    )
