"""`siji`: the command line, thin over the library, one module per family of commands.

Every command prints one line saying how to fix what went wrong, never a
traceback (set SIJI_DEBUG=1 to see one). Commands that change the node run
in one write transaction: they change everything or nothing.

``common`` holds the root group and the helpers; ``cases``, ``warnings``,
``users``, ``notices``, ``network`` (links between nodes) and ``node``
(init, rebuild, check, figures, serve, demo) and ``simulate`` each add their commands to it
when imported.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from node import i18n
from node.cli import (  # noqa: F401 - each adds its commands
    cases,
    network,
    node,
    notices,
    office,
    rounds,
    simulate,
    users,
    warnings,
)
from node.cli.common import cli
from node.errors import NodeError

__all__ = ["cli", "main"]


def _error_language(argv: list[str]) -> str:
    """The language for a message about an error that may stop click parsing --lang."""
    lang = os.environ.get("SIJI_LANG", "zh")
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            lang = argv[i + 1]
        elif arg.startswith("--lang="):
            lang = arg.partition("=")[2]
    return lang if lang in ("zh", "en") else "zh"


def _refusal(e: NodeError, lang: str) -> str:
    """A refusal in one line: every field's error (ValidationError.all), each naming its
    field in people's words and, for `-f NAME=...`, by its name."""
    parts = []
    for x in getattr(e, "all", [e]):
        field = x.params.get("field")
        named = isinstance(field, str) and i18n.field_name(field, lang) != field
        parts.append(i18n.message(x, lang) + (f" [{field}]" if named else ""))
    return "; ".join(parts)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format="siji: %(levelname)s: %(message)s")
    # urllib3 logs a malformed answer from a flaky link with a traceback; we say it in one line
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    if argv is None:
        argv = sys.argv[1:]
    lang = _error_language(argv)
    try:
        cli.main(args=argv, prog_name="siji", standalone_mode=False)
    except NodeError as e:
        click.echo("siji: " + _refusal(e, lang), err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("siji: aborted", err=True)
        return 1
    except click.UsageError as e:
        command = e.ctx.command_path if e.ctx else "siji"
        click.echo(f"siji: {e.format_message()} (see `{command} --help`)", err=True)
        return e.exit_code
    except click.ClickException as e:
        click.echo(f"siji: {e.format_message()}", err=True)
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - the edge: one line, never a traceback
        if os.environ.get("SIJI_DEBUG"):
            raise
        click.echo(f"siji: unexpected error ({type(e).__name__}); run again with SIJI_DEBUG=1 "
                   "and report it", err=True)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
