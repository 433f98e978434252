"""The programs of docs/elsewhere.md run as they stand, each in its own process."""

import os
import re
import subprocess
import sys

import pytest

PAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "elsewhere.md")


def _programs():
    text = open(PAGE).read()
    sections = re.split(r"\n## ", text)[1:]
    return {section.splitlines()[0]: re.search(r"```python\n(.*?)```", section, re.S).group(1) for section in sections}


PROGRAMS = _programs()


def test_the_page_has_the_three_programs():
    assert len(PROGRAMS) == 3, list(PROGRAMS)


@pytest.mark.slow
@pytest.mark.parametrize("title", list(PROGRAMS))
def test_a_program_of_the_page_runs(title, tmp_path):
    code = PROGRAMS[title]
    for module in re.findall(r"^(?:from|import) (\w+)", code, re.M):
        pytest.importorskip(module)
    script = tmp_path / "example.py"
    script.write_text(code)
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    loss = float(re.search(r"loss (-?[0-9.]+)", run.stdout).group(1))
    assert loss == loss and abs(loss) < 1e3  # a finite loss was printed
    assert sorted(os.listdir(tmp_path)) == ["example.py"]  # nothing written beside it


def test_every_test_docs_reliability_md_names_exists_in_its_file():
    """docs/reliability.md names, for each fault, the test that shows it: each name is a test
    function of the file it is listed under (a renamed or removed test fails here)."""
    docs = os.path.join(os.path.dirname(PAGE), "reliability.md")
    named = 0
    for row in open(docs):
        current = None
        for file, name in re.findall(r"(?:(test_\w+\.py))?::(test_\w+)", row):
            current = file or current
            assert current, row
            source = open(os.path.join(os.path.dirname(os.path.dirname(PAGE)), "tests", current)).read()
            assert f"def {name}(" in source, (current, name)
            named += 1
    assert named >= 30
