"""MkDocs hooks: pages made at build time from the code and the README, so they cannot go stale.

- ``cli.md``: the command-line reference, written by Typer's own documentation generator
  (``python -m typer infomorphic.cli utils docs``) from the ``infomorphic`` app, i.e. from the
  same help texts that ``infomorphic <command> --help`` prints.
- ``notebooks/*.ipynb``: the tutorial notebooks are copied into the site, so the tutorials page
  links to the files themselves.
- ``{{ readme_section("Heading") }}`` on a line of its own in any page is replaced by the
  README section whose heading starts with ``Heading``, from that heading up to the next heading
  of the same or a higher level.  Links to ``docs/...`` in the README are made relative to the docs folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DIRECTIVE = re.compile(r'^\{\{\s*readme_section\("(?P<heading>[^"]+)"\)\s*\}\}\s*$', re.MULTILINE)
HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.+?)\s*$")

CLI_INTRO = """\
Generated from the `infomorphic` command's own help texts each time the documentation is
built. Every command also prints its help with `--help`, e.g. `infomorphic train --help`.
Malformed input or options end a command with a one-line `error: ...` on stderr and exit code 2.

"""


def cli_markdown() -> str:
    """The CLI reference as Markdown, generated from the Typer app."""
    env = dict(os.environ, NO_COLOR="1", TERM="dumb")
    cmd = [
        sys.executable,
        "-m",
        "typer",
        "infomorphic.cli",
        "utils",
        "docs",
        "--name",
        "infomorphic",
        "--title",
        "Command line reference",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise PluginError(
            f"could not generate the CLI reference ({' '.join(cmd[1:])}): "
            f"{proc.stderr.strip() or 'no output'}"
        )
    title, _, rest = proc.stdout.partition("\n")
    return f"{title}\n\n{CLI_INTRO}{rest.lstrip()}"


def readme_section(heading: str, readme: str | None = None) -> str:
    """The README section whose heading starts with ``heading``, heading line included."""
    lines = (README.read_text(encoding="utf-8") if readme is None else readme).splitlines()
    start = level = None
    fence = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fence = not fence
        m = None if fence else HEADING.match(line)
        if m is None:
            continue
        if start is None:
            if m.group("text").startswith(heading):
                start, level = i, len(m.group("hashes"))
        elif len(m.group("hashes")) <= level:  # type: ignore[operator]
            return _relink("\n".join(lines[start:i]).strip("\n"))
    if start is None:
        raise PluginError(f'README.md has no section headed "{heading}..."')
    return _relink("\n".join(lines[start:]).strip("\n"))


def _relink(text: str) -> str:
    # README links point into docs/ from the repository root; pages live inside docs/.
    return re.sub(r"\]\(docs/", "](", text)


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    files.append(File.generated(config, "cli.md", content=cli_markdown()))
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        files.append(File.generated(config, f"notebooks/{notebook.name}", abs_src_path=str(notebook)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files, **kwargs: Any) -> str:
    if "readme_section" not in markdown:
        return markdown
    depth = page.file.src_uri.count("/")

    def replace(match: re.Match[str]) -> str:
        text = readme_section(match.group("heading"))
        return re.sub(r"\]\((?!https?:|#|/)", "](" + "../" * depth, text) if depth else text

    return DIRECTIVE.sub(replace, markdown)
