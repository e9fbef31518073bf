"""Entry point of the ``egopressdiff`` console script."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import signal
import sys
import threading

# name -> module under egopressdiff.cli; the order is the order in --help.
COMMANDS = [
    "synth",
    "info",
    "train",
    "predict",
    "evaluate",
    "render",
    "demo",
    "bench",
    "models",
]

DESCRIPTION = """\
EgoPressDiff: hand-surface contact pressure from egocentric video, as UV-pressure maps (kPa).

Typical flow:
  egopressdiff synth DATA                      # synthetic data in the EgoPressure layout
  egopressdiff train --config tiny --data DATA --output RUN
  egopressdiff predict --checkpoint RUN --data DATA --output PRED
  egopressdiff evaluate --pred PRED --data DATA
  egopressdiff render --pred PRED --data DATA --output PICS
  egopressdiff demo                            # all of it, on built-in data with the shipped model
"""


def _available_commands():
    for name in COMMANDS:
        if importlib.util.find_spec(f"egopressdiff.cli.{name}") is not None:
            yield name


def build_parser() -> argparse.ArgumentParser:
    from egopressdiff import __version__

    parser = argparse.ArgumentParser(
        prog="egopressdiff", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"egopressdiff {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for input errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _available_commands():
        mod = importlib.import_module(f"egopressdiff.cli.{name}")
        p = sub.add_parser(
            name,
            help=mod.HELP.splitlines()[0],
            description=mod.HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser




class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that ``with``/``finally`` blocks discard half-written outputs."""


def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None, **run_kwargs) -> int:
    """Run the command line ``argv``; returns the exit code.

    ``run_kwargs`` go to the command's ``run`` (``train`` takes ``callbacks=``, see
    egopressdiff.training.callbacks), for programs that embed the CLI.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from egopressdiff.errors import EgoPressDiffError

    debug = args.debug or os.environ.get("EGOPRESSDIFF_DEBUG") == "1"
    # SIGTERM (e.g. a cluster scheduler) unwinds like SIGINT: temporaries are removed, finished files kept.
    # `train` installs its own graceful handlers (checkpoint, then exit) while it trains.
    installed = threading.current_thread() is threading.main_thread()
    if installed:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        rc = args._module.run(args, **run_kwargs)
        sys.stdout.flush()  # here, so that a closed pipe is caught below rather than at interpreter exit
        return int(rc or 0)
    except EgoPressDiffError as e:
        if debug:
            raise
        print(f"egopressdiff {args.command}: error: {e.one_line()}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        # the reader went away (`egopressdiff evaluate ... | head`): files are already written; stop quietly
        # instead of a traceback, and keep Python from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a program killed by it
    except KeyboardInterrupt as e:
        term = isinstance(e, Terminated)
        print(f"egopressdiff {args.command}: {'terminated' if term else 'interrupted'}; "
              "finished outputs were kept, unfinished ones removed", file=sys.stderr)
        return 143 if term else 130
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


if __name__ == "__main__":
    raise SystemExit(main())
