"""The README stays true: its code runs, and CI runs its test command verbatim."""
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def python_blocks():
    """(file, index, code) for every Python block in README.md and docs/*.md."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for index, code in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.S)):
            yield pytest.param(code, id=f"{path.relative_to(ROOT)}-{index}")


@pytest.mark.parametrize("code", list(python_blocks()))
def test_each_python_block_in_the_docs_runs_on_its_own(code, tmp_path):
    """Each block in a fresh interpreter, in an empty directory: a reader copies one block, not the page."""
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_the_docs_have_python_blocks():
    assert len(list(python_blocks())) >= 3


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", quick_start, re.S)
    assert len(commands) == 2
    main_job, test_command = commands
    assert "minires" in main_job and "pytest" in test_command
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_tutorial_figures_exist_and_its_commands_are_real():
    from minires.cli import build_parser

    tutorial = (ROOT / "docs" / "tutorial.md").read_text()
    figures = re.findall(r"\]\((figures/[^)]+\.png)\)", tutorial)
    assert len(figures) >= 7
    for figure in figures:
        assert (ROOT / "docs" / figure).is_file(), figure
    commands = re.findall(r"^minires (\w+)", tutorial, re.M)
    known = set(build_parser()._subparsers._group_actions[0].choices)
    assert commands and set(commands) <= known


def parity_commands():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return sorted({match.strip() for page in pages
                   for match in re.findall(r"(minires parity [^`#\n]*)", page.read_text())})


@pytest.mark.parametrize("command", parity_commands())
def test_every_parity_command_in_the_docs_passes(command):
    """The docs' parity examples must exit 0 on any machine: the default judges gradients in float64."""
    argv = command.split()[1:]
    result = subprocess.run([sys.executable, "-m", "minires", *argv], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_layout_names_every_module_and_package_of_the_tree():
    layout = README[README.index("## Layout"):]
    layout = layout[:layout.index("\n## ")] if "\n## " in layout else layout
    package = ROOT / "minires"
    names = {p.name for p in package.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    names |= {f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").exists()}
    names |= {p.name for p in (ROOT / "kernels").glob("*.py")}
    names |= {f"{p.name}/" for p in (ROOT / "kernels").iterdir() if (p / "__init__.py").exists()}
    names |= {p.name for p in (ROOT / "kernels" / "direct").glob("*.py") if p.name != "__init__.py"}
    missing = sorted(name for name in names if not re.search(rf"(?<![\w/]){re.escape(name)}", layout))
    assert not missing, f"README's layout does not mention {missing}"


def test_the_readme_is_a_front_door_that_links_to_pages_that_exist():
    """At most ~150 lines; the rest lives in docs/, and every page or file it names exists."""
    assert len(README.splitlines()) <= 150
    for page in re.findall(r"`((?:docs|benchmarks|kernels|minires)/[\w/.]+\.(?:md|py))`", README):
        assert (ROOT / page).is_file(), page
    for name in ("performance", "gpu", "distributed", "verification"):
        assert f"docs/{name}.md" in README
