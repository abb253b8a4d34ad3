"""The command line: ``python -m resnetlab {figures,list,...}``."""

from __future__ import annotations

import argparse
import sys


def _cmd_figures(args: argparse.Namespace) -> int:
    from .figures import make_figures

    results = make_figures(args.figures, args.runs, only=args.only or None)
    failed = False
    for r in results:
        status = "error" if r.error else ("partial" if r.missing else "ok")
        print(f"[{status:7}] {r.name}: " + ", ".join(str(p) for p in r.paths if p.suffix != ".pdf"))
        if r.error:
            failed = True
            print(f"          {r.error}")
        for cmd in r.missing:
            print(f"          missing runs, to record them: {cmd}")
    return 1 if failed else 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .models import list_models

    print("Models the papers name (any 6n+2 / 9n+2 depth builds too):")
    for name, where in list_models().items():
        print(f"  {name:22} {where}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m resnetlab",
        description="Rebuild the figures and tables of the two ResNet papers by really training.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("figures", help="redraw every figure from recorded runs (no GPU needed)")
    p.add_argument("--figures", default="figures", help="output folder (default: figures/)")
    p.add_argument("--runs", default="data/runs", help="recorded runs (default: data/runs/)")
    p.add_argument("--only", nargs="*", help="only these figures")
    p.set_defaults(func=_cmd_figures)

    p = sub.add_parser("list", help="models, experiments and recorded runs")
    p.set_defaults(func=_cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
