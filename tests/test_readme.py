"""The README stays true: its code runs, and CI runs its test command verbatim."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_python_examples_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write files
    namespace = {}
    for block in re.findall(r"```python\n(.*?)```", README, re.S):
        exec(block, namespace)
    assert "passed" in capsys.readouterr().out


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
