"""The README's two commands and the CLI reference stay true."""

from pathlib import Path

import click

from ganlab.cli import cli

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_readme_opens_with_the_main_job_and_the_tests():
    main_job, tests = _readme_commands()[:2]
    assert main_job.endswith("ganlab demo") and "pip install" in main_job
    assert "pytest" in tests and ".[test]" in tests


def test_ci_runs_exactly_the_readme_test_command():
    tests = _readme_commands()[1]
    ci = (REPO / ".ci" / "run").read_text()
    assert tests in ci.splitlines()


def _commands(group: click.Group, prefix: str = "ganlab") -> list[str]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        if getattr(cmd, "hidden", False):
            continue
        full = f"{prefix} {name}"
        out.append(full)
        if isinstance(cmd, click.Group):
            out += _commands(cmd, full)
    return out


def test_every_command_is_in_the_cli_reference():
    reference = (REPO / "docs" / "cli.md").read_text()
    missing = [c for c in _commands(cli) if c not in reference]
    assert not missing, f"not documented in docs/cli.md: {missing}"


def test_every_doc_the_readme_links_exists():
    text = (REPO / "README.md").read_text()
    for part in text.split("](")[1:]:
        target = part.split(")", 1)[0]
        if target.startswith("http"):
            continue
        path, _, anchor = target.partition("#")
        assert (REPO / path).is_file(), target
        if anchor:  # GitHub's heading anchors: lower case, spaces to dashes, punctuation dropped
            headings = [line.lstrip("#").strip() for line in (REPO / path).read_text().splitlines() if line.startswith("#")]
            slugs = {"".join(c for c in h.lower().replace(" ", "-") if c.isalnum() or c in "-_") for h in headings}
            assert anchor in slugs, target


def _all_commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out: list[tuple[tuple[str, ...], click.Command]] = []
    for name, cmd in sorted(group.commands.items()):
        out.append(((*path, name), cmd))
        if isinstance(cmd, click.Group):
            out += _all_commands(cmd, (*path, name))
    return out


def test_every_option_is_in_the_cli_reference():
    reference = (REPO / "docs" / "cli.md").read_text()
    missing = [
        f"ganlab {' '.join(path)} {opt}"
        for path, cmd in _all_commands(cli)
        for param in cmd.params
        if not getattr(param, "hidden", False)
        for opt in param.opts
        if opt.startswith("-") and opt not in ("-h", "--help") and opt not in reference
    ]
    assert not missing, f"options not documented in docs/cli.md: {missing}"
