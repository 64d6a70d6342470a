"""The harden subcommands share option names: --data/-d, --target/-t, --out/--output/-o."""

from __future__ import annotations

import pytest
import typer.main

from modelshield.cli import HARDEN_AREAS, build_app


@pytest.mark.parametrize("sub", ["adversarial", "dp", "fairness", "watermark"])
def test_harden_commands_accept_the_common_option_names(sub):
    group = typer.main.get_command(build_app(HARDEN_AREAS)).commands["harden"]
    opts = {o for p in group.commands[sub].params for o in p.opts}
    assert {"--data", "-d", "--target", "-t", "--out", "--output", "-o"} <= opts, sorted(opts)
