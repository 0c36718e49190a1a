"""The front doors quote the benchmarks, never their own numbers: every figure in README.md, docs/usage.md,
docs/training.md and the model cards is one that the benchmarks/results/ file it links says; the README's quick
start prints what the README shows, and its package tree names what src/facemark/ holds.

The rule, kept simple so a writer can follow it: the text is cut into blocks (a paragraph, a list item, a table
row; code blocks are skipped). A block that quotes a figure (a number with a unit: 3.70%, 4.6 ms, 0.20 s, 349 MB,
1.19×, 5.85°, 0.33 px, 27/30, 313 images/s) must name the results file it comes from (`benchmarks/results/NAME.md`,
a glob such as `human_labels_heldout_*.md`, or a link to it); a table row without a link of its own takes the
links of its table (the header row and the paragraph just above it). Each figure's number must then appear in one
of those files. A block with figures that names no results file, or a figure that none of its files contains,
fails with the file, the line and the figure. The files are read when the test runs, so a benchmark rerun that
changes a figure makes this fail until the text says the new one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
MODEL_CARDS = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("model_card*.md"))
CHECKED = ["README.md", "docs/usage.md", "docs/training.md", *MODEL_CARDS]

NUM = r"\d[\d,]*(?:\.\d+)?"
DEC = r"\d+\.\d+"
BEFORE = r"(?<![\w.,±~≤≥<>−+/-])(?<![≤≥<>] )"  # not a bound (≤ 0.5 px), a range end (±8%), a path or a word
UNITS = [  # (number pattern, unit pattern): integers with %, ms, MB; decimals only where integers are settings
    (NUM, r"\s?%"), (NUM, r"\s?ms\b"), (NUM, r"\s?[MG]B\b"), (NUM, r"\s?images/s\b"),
    (DEC, r"\s?s\b"), (DEC, r"\s?px\b"), (DEC, r"°"), (DEC, r"×"),
]
FIGURE = re.compile("|".join(f"{BEFORE}({n}){u}" for n, u in UNITS) + rf"|×\s?({DEC})"
                    + r"|(?<![\w./~])(\d+)/(\d+)(?![\w/.])")
LIST = re.compile(r"((?:\d+(?:\.\d+)?\s/\s)+)(\d+(?:\.\d+)?)(\s?(?:%|ms|s|MB|×))")
RESULTS_LINK = re.compile(r"benchmarks/results/([\w*.-]+\.(?:md|json))")


def figures(text: str) -> list[str]:
    """The figures quoted in one block, as the numbers to look for ("3.70", "27/30", ...). A number without a
    unit (a setting, a count of images, a year) is not a figure; nor is an integer size, angle or ratio (640 px,
    90°, 640×480), nor a share of a side (1/10), nor a bound (≤ 0.5 px, ±8%): those are settings."""
    text = re.sub(r"`[^`]*`", " ", text)  # code: option values and commands, not measurements
    text = LIST.sub(lambda m: "".join(f"{n}{m.group(3)} " for n in re.split(r"\s/\s", m.group(1))[:-1])
                    + m.group(2) + m.group(3), text)  # "3.9 / 4.0 / 4.2 ms": each with its unit
    found = []
    for m in FIGURE.finditer(text):
        groups = m.groups()
        a, b = groups[-2:]
        if a is not None:
            if int(a) > 1 or int(b) > 30:  # 27/30 is a count; 1/10 (of the longer side) a share
                found.append(f"{a}/{b}")
        else:
            found.append(next(g for g in groups[:-2] if g is not None).replace(",", ""))
    return found


def blocks(markdown: str) -> list[tuple[int, str, list[str]]]:
    """(line number, text, results files linked) of each paragraph, list item and table row, code skipped."""
    out: list[tuple[int, str, list[str]]] = []
    lines = markdown.splitlines()
    i, previous_paragraph_links, table_links = 0, [], None
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
            i += 1
            continue
        if line.startswith("|"):
            if table_links is None:  # a new table: its header row's links and the paragraph above it
                table_links = previous_paragraph_links + links(line)
            out.append((i + 1, line, links(line) or table_links))
            i += 1
            continue
        table_links = None
        if not line.strip() or line.startswith("#") or line.startswith("!["):
            previous_paragraph_links = [] if line.startswith("#") else previous_paragraph_links
            i += 1
            continue
        start, text = i, [line]
        i += 1
        while i < len(lines) and lines[i].strip() and not lines[i].startswith(("```", "|", "#", "- ", "* ")) \
                and not re.match(r"\d+\. ", lines[i]):
            text.append(lines[i])
            i += 1
        block = "\n".join(text)
        previous_paragraph_links = links(block)
        out.append((start + 1, block, previous_paragraph_links))
    return out


def links(text: str) -> list[str]:
    """The results files a text names: `benchmarks/results/NAME.md` (or .json), globs included."""
    return RESULTS_LINK.findall(text)


def results_numbers(names: list[str]) -> tuple[set[str], list[str]]:
    """Every number (commas dropped) and "a/b" count in the named results files; and the names that match nothing."""
    numbers: set[str] = set()
    missing = []
    for name in names:
        paths = sorted(RESULTS.glob(name))
        if not paths:
            missing.append(name)
        for path in paths:
            text = re.sub(r"(?<=\d),(?=\d{3})", "", path.read_text(encoding="utf-8"))
            numbers.update(re.findall(r"\d+(?:\.\d+)?", text))
            numbers.update(f"{a}/{b}" for a, b in re.findall(r"(\d+)\s?/\s?(\d+)", text))
            numbers.update(f"{a}/{b}" for a, b in re.findall(r"(\d+) of (\d+)", text))
    return numbers, missing


def unbacked_figures(relative: str, markdown: str | None = None) -> list[str]:
    """One line per figure of the file (or of `markdown`, read as that file) that its results files do not say."""
    if markdown is None:
        markdown = (REPO / relative).read_text(encoding="utf-8")
    problems = []
    for line, text, names in blocks(markdown):
        quoted = figures(text)
        if not quoted:
            continue
        if not names:
            problems.append(f"{relative}:{line}: {', '.join(quoted)} but no benchmarks/results/ file named")
            continue
        numbers, missing = results_numbers(names)
        problems += [f"{relative}:{line}: benchmarks/results/{name} does not exist" for name in missing]
        absent = [q for q in quoted if q not in numbers]
        if absent:
            problems.append(f"{relative}:{line}: {', '.join(absent)} not in {', '.join(names)}")
    return problems


@pytest.mark.parametrize("relative", CHECKED)
def test_every_figure_is_in_the_results_file_it_names(relative):
    problems = unbacked_figures(relative)
    assert not problems, ("every figure must be one that a benchmarks/results/ file named in its paragraph or table "
                          "row says (this file's docstring has the rule):\n" + "\n".join(problems))


def test_the_rule_catches_a_changed_figure_and_an_unnamed_source():
    assert figures("NME 3.70% (AFW), 4.6 ms, 0.20 s, 349 MB, 1.19×, 27/30, 640 px, 1/10, `--min-face 40`") == \
        ["3.70", "4.6", "0.20", "349", "1.19", "27/30"]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "| 3.70% |" in readme, "the README's table quotes face88's held-out AFW NME"
    changed = unbacked_figures("README.md", readme.replace("| 3.70% |", "| 9.87% |"))
    assert [p for p in changed if "9.87 not in human_labels_heldout_afw.md" in p]
    unlinked = unbacked_figures("README.md", "A paragraph that quotes 4.6 ms and names no results file.\n")
    assert unlinked == ["README.md:1: 4.6 but no benchmarks/results/ file named"]


def readme_quick_start() -> tuple[str, str]:
    """The README's first ```python block and the ```text block right after it (what it prints)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"```python\n(.*?)```\s*\n(?:[^`\n]*\n)?\s*```text\n(.*?)```", readme, re.S)
    assert m, "README.md: the quick start is a ```python block followed by the ```text block of what it prints"
    return m.group(1), m.group(2)


def test_readme_quick_start_prints_what_the_readme_shows():
    code, shown = readme_quick_start()
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert [line.rstrip() for line in run.stdout.strip().splitlines()] == \
        [line.rstrip() for line in shown.strip().splitlines()]


def test_readme_package_tree_names_every_module_and_wing():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"```text\nsrc/facemark/\n(.*?)```", readme, re.S)
    assert m, "README.md: the package tree is a ```text block starting with src/facemark/"
    listed = {line.split()[0] for line in m.group(1).splitlines() if line.strip()}
    package = REPO / "src" / "facemark"
    present = {p.name + ("/" if p.is_dir() else "") for p in package.iterdir()
               if not p.name.startswith(("_", ".")) and (p.suffix == ".py" or (p.is_dir() and p.name != "__pycache__"))}
    assert listed == present, f"missing from the README: {sorted(present - listed)}; gone: {sorted(listed - present)}"
