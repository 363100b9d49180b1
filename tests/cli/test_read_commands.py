"""Commands that read what a store recorded refuse a store that is not there
(a mistyped path used to become a new, empty database: "no runs recorded"),
and ``serve`` names the workflows a target's file has, as ``run`` does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


@pytest.mark.parametrize(
    "command",
    [
        ["runs", "list"],
        ["runs", "show", "greet-1"],
        ["replay", "greet-1"],
        ["draw", "tests/cli/flows.py:Hello", "--run", "greet-1", "-o", "out.mmd"],
    ],
)
def test_a_store_that_does_not_exist_is_an_error_for_a_read_command(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "mistyped.db"
    status, out, err = cli(*command, "--store", f"sqlite:///{missing}")
    assert status == 2
    assert out == ""
    assert err == (
        f"error: no store at sqlite:///{missing}: {str(missing)!r} does not exist (check the "
        "path; a store is made by the process that records runs, e.g. anyflow serve --store)\n"
    )
    assert not missing.exists()


def test_the_memory_store_has_nothing_to_read(cli: Callable[..., tuple[int, str, str]]) -> None:
    status, _, err = cli("runs", "list", "--store", "memory")
    assert status == 2
    assert err.startswith("error: the memory store keeps nothing between processes")


def test_a_store_that_exists_is_read(
    cli: Callable[..., tuple[int, str, str]], store_url: str
) -> None:
    status, out, _ = cli("runs", "list", "--store", store_url)
    assert status == 0
    assert "greet-1" in out


def test_serve_names_the_workflows_of_a_target_that_is_not_there(
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    status, _, err = cli("serve", "tests/cli/flows.py:Nope")
    assert status == 2
    assert err.startswith("error: 'tests/cli/flows.py' has no 'Nope'; its workflows are: ")
    assert "Hello" in err
