"""The README documents every layer, setting and CLI command (as datasette's docs tests do)."""

from __future__ import annotations

import re

import click
import pytest

from geoapp.config import PROJECT_ROOT, SETTINGS
from geoapp.web.cli import geoapp_cli

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
SOURCES = [*PROJECT_ROOT.glob("geoapp/**/*.py"), PROJECT_ROOT / "gunicorn.conf.py", PROJECT_ROOT / "Makefile"]


def test_readme_starts_with_the_two_commands():
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert "make run" in first_block and "make test" in first_block


def test_every_layer_is_in_the_readme(registry):
    for layer in registry:
        assert f"`{layer.id}`" in README, layer.id
        assert layer.title.zh in README, layer.title.zh


def test_every_setting_is_in_the_readme():
    names = {s.name for s in SETTINGS}
    for path in SOURCES:
        names |= set(re.findall(r"GEOAPP_[A-Z_]+[A-Z]", path.read_text(encoding="utf-8")))
    for name in sorted(names):
        assert f"`{name}`" in README, name


def _commands(group, prefix="geoapp"):
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from _commands(command, path)
        else:
            yield path, command


COMMANDS = dict(_commands(geoapp_cli))


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_cli_command_and_option_is_in_the_readme(path):
    assert path in README
    for param in COMMANDS[path].params:
        for opt in param.opts:
            if opt.startswith("-"):
                assert f"{opt}" in README, f"{path} {opt}"
