"""The documentation: the site builds strictly, the README stays short, every env page has Gymnasium's sections,
every relative link resolves, and BENCHMARKS.md holds only generated sections under its header."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README_LIMIT = 8000
ENV_SECTIONS = ("Description", "Action Space", "Observation Space", "Rewards", "Starting State", "Episode End",
                "Arguments")
ENV_PAGES = ("threebody", "diffusion-sampler", "budget-forcing", "planner-budget", "dual-system")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
BLOCK = re.compile(r"<!-- bench:([\w.-]+) -->.*?<!-- /bench:\1 -->", re.S)


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def relative_links(path: Path) -> list[str]:
    """Relative link targets of a markdown file, outside code blocks and code spans, without their anchors."""
    text = FENCE.sub("", path.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = [first or second for first, second in LINK.findall(text)]
    return [target.split("#", 1)[0] for target in targets
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith(("#", "/"))]


def test_readme_is_short():
    length = len((ROOT / "README.md").read_text())
    assert length <= README_LIMIT, f"README.md has {length} characters; keep it to {README_LIMIT}, move detail to docs/"


@pytest.mark.parametrize("page", ENV_PAGES)
def test_env_page_has_gymnasium_sections(page):
    text = (DOCS / "envs" / f"{page}.md").read_text()
    headings = re.findall(r"^## (.+?)\s*$", text, re.M)
    missing = [section for section in ENV_SECTIONS if section not in headings]
    assert not missing, f"docs/envs/{page}.md lacks the sections {missing}"
    order = [headings.index(section) for section in ENV_SECTIONS]
    assert order == sorted(order), f"docs/envs/{page}.md has Gymnasium's sections out of order: {headings}"


def test_relative_links_resolve():
    broken = [f"{path.relative_to(ROOT)}: {target}" for path in markdown_files() for target in relative_links(path)
              if target and not (path.parent / target).exists()]
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_benchmarks_holds_only_generated_sections():
    text = (ROOT / "BENCHMARKS.md").read_text()
    blocks = list(BLOCK.finditer(text))
    assert blocks, "BENCHMARKS.md has no generated section"
    header = text[:blocks[0].start()]
    assert header.startswith("# Benchmarks\n") and "adaptstep bench" in header
    assert len([line for line in header.splitlines() if line.strip()]) <= 2, "BENCHMARKS.md's header is a title and one line"
    between = [text[a.end():b.start()] for a, b in zip(blocks, blocks[1:])] + [text[blocks[-1].end():]]
    stray = [chunk.strip()[:80] for chunk in between if chunk.strip()]
    assert not stray, f"BENCHMARKS.md has hand-written text between generated sections (move it to docs/results/): {stray}"


def test_site_builds_strictly(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        pytest.skip("mkdocs and mkdocstrings are not installed (pip install -e '.[docs]')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                             "-d", str(tmp_path / "site")], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    for page in ("index.html", "envs/threebody/index.html", "results/robot/index.html", "api/evaluation/index.html",
                 "BENCHMARKS/index.html"):
        assert (tmp_path / "site" / page).is_file(), f"the site lacks {page}"
