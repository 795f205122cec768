"""``ganlab sample``: an image grid (and optionally a Keras file) from a trained run."""

from __future__ import annotations

from pathlib import Path

import click

from ganlab.cli.db_option import db_option, open_db
from ganlab.cli.types import Seed
from ganlab.errors import ConfigError
from ganlab.limits import MAX_EXPERIMENT_ID
from ganlab.training.backend import imported_backend, prefer_backend
from ganlab.training.run_dir import RunDir

# Images per grid: the whole batch is generated at once.
MAX_SAMPLES = 65536


@click.command("sample")
@db_option
@click.argument("run_dir", metavar="RUN_DIR_OR_ID")
@click.option("-n", "count", type=click.IntRange(1, MAX_SAMPLES), default=64, show_default=True, help="Images to generate.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="samples.png", show_default=True,
              help="PNG file for the grid.")
@click.option("--checkpoint", "which", type=click.Choice(["latest", "previous", "best"]), default="latest",
              show_default=True,
              help="Which checkpoint's weights to use (previous: the one before latest; best: lowest Fréchet distance).")
@click.option("--seed", type=Seed, default=0, show_default=True, help="Seed of the noise (labels cycle through the classes).")
@click.option("--ncols", type=click.IntRange(1, MAX_SAMPLES), default=None, help="Grid columns (default: about square).")
@click.option("--export", "export", type=click.Path(dir_okay=False), default=None,
              help="Also save the generator as a Keras file (.keras) that keras.saving.load_model can read.")
@click.pass_context
def sample(ctx: click.Context, run_dir: str, count: int, output: str, which: str, seed: int,
           ncols: int | None, export: str | None) -> None:
    """Write an image grid from the generator of a run: its directory, or a queued experiment's id.

    Uses the EMA weights when the run kept them.
    """
    if export is not None and not export.endswith(".keras"):
        raise ConfigError(f"--export {export}: the file name must end in .keras")
    run_dir = _resolve_run(ctx, run_dir)
    config = RunDir(run_dir).load_config()
    # Checkpoints name no backend: use the run's unless keras is already running another one.
    if imported_backend() is None:
        prefer_backend(config.train["backend"])

    from ganlab.tblog import image_grid, save_png
    from ganlab.training.export import load_generator

    gen = load_generator(run_dir, ctx.obj.registry(), which)
    images = gen.sample(count, seed=seed)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    save_png(image_grid(images, ncols=ncols), output)
    click.echo(f"wrote {count} samples from step {gen.step} ({which}{', EMA' if gen.ema else ''}) to {output}")
    if export is not None:
        Path(export).parent.mkdir(parents=True, exist_ok=True)
        gen.model.save(export)
        inputs = "[z, labels]" if gen.num_classes else "z"
        click.echo(f"exported the generator to {export}: call it on {inputs} with z of shape (n, {gen.latent_dim})")


def _resolve_run(ctx: click.Context, target: str) -> str:
    """A run directory as given, or the run directory the queue recorded for experiment ``target``."""
    try:
        is_dir = Path(target).is_dir()
    except (OSError, ValueError) as exc:  # a name too long to look up, an embedded NUL
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        shown = target if len(target) <= 80 else f"{target[:60]}... ({len(target)} characters)"
        raise ConfigError(f"cannot look up run directory {shown!r}: {why}; give a run's folder or an experiment id") from None
    if is_dir or not (target.isascii() and target.isdigit()):
        return target
    if not 1 <= int(target) <= MAX_EXPERIMENT_ID:
        raise ConfigError(f"{target} is neither a run directory nor an experiment id (ids are 1 to {MAX_EXPERIMENT_ID})")
    from ganlab.store.storage import Store

    with open_db(ctx, Store, read_only=True) as store:
        record = store.get(int(target))
    if not record.run_dir:
        raise ConfigError(f"experiment {target} has not started yet (status {record.status}); it has no run to sample")
    if not Path(record.run_dir).is_dir():
        raise ConfigError(f"experiment {target}'s run directory {record.run_dir} is not on this machine "
                          f"(it ran on {record.run_host}); run 'ganlab sample' there or share the runs folder")
    return record.run_dir
