"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typing``, ``nox -s docs``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, on asyncio and trio."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "anyflow", "tests", "benchmarks", "examples")
    session.run("ruff", "format", "--check", "anyflow", "tests", "benchmarks", "examples")


@nox.session
def typing(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy>=1.11")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs-material, mkdocstrings), built with --strict into site/."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """The property tests with a large hypothesis budget (not run in CI)."""
    session.install("-e", ".[test]")
    session.env["ANYFLOW_HYPOTHESIS_PROFILE"] = "soak"
    session.run("pytest", "tests/core", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """anyflow vs llama-index-workflows, side by side (not run by default; ~3 min).

    ``nox -s bench -- --quick`` for a smoke run; results go to bench-results/.
    """
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)
