"""The ``bayes-scaling`` command line.

Each sub-module registers its sub-commands (``register(subparsers)``); errors become one line on stderr and
exit status 2, never a traceback. Warnings (exclusions, convergence) are printed as ``warning: ...`` lines.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from bayes_scaling.errors import BayesScalingError

__all__ = ["main"]

EXIT_USAGE = 2


def _modules():
    from bayes_scaling.cli import transfer

    mods = [transfer]
    for name in ("scratch", "predict", "report", "calibrate", "experiment"):  # added as the features land
        try:
            mods.append(__import__(f"{__name__}.{name}", fromlist=[name]))
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    return mods


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage too; keep it short)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from bayes_scaling import __version__

    parser = _Parser(prog="bayes-scaling", description="Bayesian scaling laws for transfer "
                     "(D_T = k * D_F**alpha * N**beta), fitted by NUTS.")
    parser.add_argument("--version", action="version", version=f"bayes-scaling {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for mod in _modules():
        mod.register(sub)
    return parser


def _warning_line(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _warning_line
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `bayes-scaling summary fit.nc --csv | head`
        sys.stderr.close()
        return 0
    except (BayesScalingError, ValueError, OSError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"bayes-scaling {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("bayes-scaling: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
