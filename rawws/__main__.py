"""``python -m rawws``: the command line. Each subcommand lives in its own module; this one only
registers them (``docs/cli.md``).

* ``python -m rawws echo``: an echo server (:mod:`rawws.commands.echo`).
* ``python -m rawws client URI``: a client for the terminal and for scripts, like wscat and
  websocat (:mod:`rawws.commands.client`).
* ``python -m rawws serve ...`` and ``python -m rawws chat ...``: the chat-and-notify server and
  its terminal client (:mod:`rawws.chat.cli`).
* ``trace``, ``replay``, ``craft``: the study tools (:mod:`rawws.tools`).

``--debug`` (a transcript of every frame) goes before or after the subcommand. Exit statuses:
0 success, 1 a runtime failure, 2 a usage or configuration error, 130 interrupted; a failure
is one line on stderr, never a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

from .commands import DefaultsHelpFormatter, OneLineParser
from .commands.echo import EchoListener
from .redact import RedactingFilter

__all__ = ["EchoListener", "main"]

#: The subcommands of rawws itself, then the study tools: each module has add_parser().
COMMANDS = ("rawws.commands.echo", "rawws.commands.client")
TOOLS = ("trace_proxy", "replay", "craft")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--debug"] and argv[1:2] in (["serve"], ["chat"]):
        argv = [argv[1], "--debug", *argv[2:]]  # the same transcript as for echo and client
    if argv and argv[0] in ("serve", "chat"):
        # The chat layer is imported only for these commands.
        cli = importlib.import_module("rawws.chat.cli")
        run = cli.main_serve if argv[0] == "serve" else cli.main_chat
        return int(run(argv[1:]))

    parser = OneLineParser(prog="python -m rawws",
                                     description="rawws WebSocket tools",
                                     formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="log a transcript of every frame (< received, > sent); also "
                             "accepted after the subcommand")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(name).add_parser(commands)
    commands.add_parser("serve", help="the chat and notify server "
                                      "(python -m rawws serve --help)")
    commands.add_parser("chat", help="a terminal chat client (python -m rawws chat --help)")
    # rawws/tools: each module registers its subcommand
    for tool in TOOLS:
        importlib.import_module(f"rawws.tools.{tool}").add_parser(commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    for handler in logging.getLogger().handlers:  # no secret reaches a log (rawws.redact)
        handler.addFilter(RedactingFilter())
    if args.debug:
        logging.getLogger("rawws").setLevel(logging.DEBUG)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line, unless --debug asks for the traceback
        if args.debug:
            raise
        print(f"rawws {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(--debug shows the traceback)", file=sys.stderr)
        return 1

if __name__ == "__main__":
    sys.exit(main())
