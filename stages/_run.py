"""Run a stage's typer app so that known errors print one line and exit 1."""

from __future__ import annotations

import sys

import typer

from audioprobe.runtime.errors import AudioprobeError


def run(app: typer.Typer) -> None:
    """Invoke `app`; an AudioprobeError becomes `error: <one line>` on stderr and exit 1."""
    try:
        # Non-standalone typer returns (not raises) the code of an Exit, including the
        # 130 it makes of a KeyboardInterrupt; ignoring it would report success.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except AudioprobeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # click usage errors come through here in non-standalone mode
        # typer >= 0.20 vendors its own click (typer._click), so match click's usage-error
        # interface (show() + exit_code) rather than the class of the click package.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        raise
