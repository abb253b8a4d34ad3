"""One setting for where the course lives on GitHub: :data:`resnetlab.paths.COURSE_REPO`.

Every notebook starts with a Colab badge and an install cell that name the repository. This
module writes both from the one setting, so a lecturer who forks the course runs

    python -m resnetlab.tools.course_repo OWNER/NAME

and every badge, every install cell and the setting itself point at the fork.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from ..paths import COURSE_REPO, project_root

BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/{repo}/blob/main/notebooks/{notebook})")
INSTALL = '''# On Colab: fetch the course and install it (a no-op where resnetlab is installed already).
# The notebooks find the course's data/ and figures/ from the package, from any folder.
try:
    import resnetlab  # noqa: F401
except ImportError:
    !git clone -q https://github.com/{repo}
    %pip install -q -e {name}
    import sys; sys.path.insert(0, "{name}")'''


def badge(notebook: str, repo: str = COURSE_REPO) -> str:
    return BADGE.format(repo=repo, notebook=notebook)


def install_cell(repo: str = COURSE_REPO) -> str:
    return INSTALL.format(repo=repo, name=repo.split("/")[1])


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + [parts[-1]]


def rewrite(repo: str = COURSE_REPO, root: Path | None = None) -> list[Path]:
    """Write the badge (first line of the first cell) and the install cell (the second cell)
    of every notebook for ``repo``; returns the notebooks changed."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
        raise ValueError(f"a repository is OWNER/NAME, got {repo!r}")
    changed = []
    for nb_path in sorted((root or project_root()).glob("notebooks/*.ipynb")):
        nb = json.loads(nb_path.read_text())
        first, install = nb["cells"][0], nb["cells"][1]
        before = json.dumps([first["source"], install["source"]])
        first["source"][0] = badge(nb_path.name, repo) + "\n"
        install["source"] = _lines(install_cell(repo))
        if json.dumps([first["source"], install["source"]]) != before:
            nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(nb_path)
    return changed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m resnetlab.tools.course_repo OWNER/NAME", file=sys.stderr)
        return 2
    repo = args[0]
    root = project_root()
    changed = rewrite(repo, root)
    setting = root / "resnetlab" / "paths.py"
    setting.write_text(re.sub(r'COURSE_REPO = "[^"]*"', f'COURSE_REPO = "{repo}"', setting.read_text()))
    print(f"{len(changed)} notebook(s) and resnetlab/paths.py now point at {repo}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
