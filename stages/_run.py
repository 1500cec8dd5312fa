"""Run a stage's typer app so that known errors print one line and exit 1."""

from __future__ import annotations

import sys

import typer

from audioprobe.errors import AudioprobeError


def run(app: typer.Typer) -> None:
    """Invoke `app`; an AudioprobeError becomes `error: <one line>` on stderr and exit 1."""
    try:
        app(standalone_mode=False)
    except AudioprobeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
