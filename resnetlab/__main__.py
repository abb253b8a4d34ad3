"""``python -m resnetlab``: the command line (see :mod:`resnetlab.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
