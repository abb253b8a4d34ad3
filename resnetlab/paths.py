"""Where the course lives on disk: its root, found from the package itself.

A notebook may run from any working directory (Colab starts in ``/content``; a restarted
runtime forgets a ``%cd``), so the course root is found from where ``resnetlab`` is
installed: an editable install or a checkout on ``sys.path`` is the checkout itself.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The course's GitHub repository (owner/name): every notebook's Colab badge and install cell
#: use it (tests/test_course_links.py checks); a fork changes it with
#: ``python -m resnetlab.tools.course_repo OWNER/NAME``, which rewrites them all.
COURSE_REPO = "resnetlab/resnetlab"


def _is_root(p: Path) -> bool:
    return (p / "pyproject.toml").is_file() and (p / "resnetlab").is_dir()


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The checkout's root (the folder holding ``pyproject.toml``, ``resnetlab/`` and
    ``data/``): the one the package was imported from; else the first found upwards from
    ``start`` (default: the working directory); else the working directory."""
    here = Path(__file__).resolve().parents[1]
    if start is None and _is_root(here):
        return here
    begin = Path(start or os.getcwd()).resolve()
    for p in (begin, *begin.parents):
        if _is_root(p):
            return p
    return here if _is_root(here) else begin


__all__ = ["COURSE_REPO", "project_root"]
