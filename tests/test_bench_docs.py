"""docs/benchmarks.md has one writer (corecall_testing.bench_docs): a benchmark's --write-docs
replaces its own marked section and nothing else, and refuses a file whose markers are damaged
instead of eating a neighbour's figures."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from corecall_testing.bench_docs import markers, replace_section, write_section

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"

DOC = """# Benchmarks

Prose written by hand.

<!-- a-bench:start -->
## A
old figures of A
<!-- a-bench:end -->

Notes kept between sections.

<!-- b-bench:start -->
## B
figures of B
<!-- b-bench:end -->
"""


def test_a_section_is_replaced_in_place_and_everything_else_is_kept():
    new = replace_section(DOC, "a-bench", "## A\nnew figures of A\n\n")
    assert "old figures of A" not in new
    assert "<!-- a-bench:start -->\n## A\nnew figures of A\n<!-- a-bench:end -->" in new
    assert new.replace("new figures", "old figures") == DOC


def test_replacing_a_section_with_its_own_text_changes_nothing():
    body = DOC.split("<!-- b-bench:start -->\n")[1].split("<!-- b-bench:end -->")[0]
    assert replace_section(DOC, "b-bench", body) == DOC


def test_a_new_section_is_appended_with_its_heading_outside_the_markers():
    new = replace_section(DOC, "c-bench", "figures of C", heading="## C (`bench/c.py`)")
    assert new.startswith(DOC.rstrip("\n"))
    assert new.endswith(
        "figures of B\n<!-- b-bench:end -->\n\n## C (`bench/c.py`)\n\n"
        "<!-- c-bench:start -->\nfigures of C\n<!-- c-bench:end -->\n"
    )


@pytest.mark.parametrize(
    "damaged",
    [
        DOC.replace("<!-- a-bench:end -->", ""),  # start without end
        DOC.replace("<!-- a-bench:start -->", ""),  # end without start
        DOC + "<!-- a-bench:start -->\n",  # two starts
        DOC.replace("a-bench:start", "@@")
        .replace("a-bench:end", "a-bench:start")
        .replace("@@", "a-bench:end"),  # end before start
    ],
    ids=["no-end", "no-start", "two-starts", "reversed"],
)
def test_damaged_markers_are_refused_and_the_file_is_left_alone(tmp_path, damaged):
    docs = tmp_path / "benchmarks.md"
    docs.write_text(damaged)
    with pytest.raises(ValueError, match=r"a-bench:start.*repair it by hand"):
        write_section(docs, "a-bench", "new figures of A")
    assert docs.read_text() == damaged
    assert [p.name for p in tmp_path.iterdir()] == ["benchmarks.md"]


def test_a_missing_file_is_started_with_a_title(tmp_path):
    docs = tmp_path / "benchmarks.md"
    write_section(docs, "a-bench", "figures")
    assert docs.read_text() == (
        "# Benchmarks\n\n<!-- a-bench:start -->\nfigures\n<!-- a-bench:end -->\n"
    )


@pytest.mark.parametrize("name", ["", "A-bench", "a bench", "a--b", "a:start -->"])
def test_section_names_are_plain_hyphenated_words(name):
    with pytest.raises(ValueError, match="lower-case words"):
        markers(name)


def _bench_scripts_writing_docs() -> dict[Path, str]:
    found = {}
    for script in sorted((REPO / "bench").glob("*.py")):
        tree = ast.parse(script.read_text())
        if "--write-docs" not in script.read_text():
            continue
        names = [
            node.value.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "DOCS_SECTION" for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ]
        found[script] = names[0] if names else ""
    return found


def test_every_benchmark_writes_its_own_section_of_the_real_file_through_the_one_writer():
    scripts = _bench_scripts_writing_docs()
    assert len(scripts) >= 8, scripts
    text = BENCHMARKS_MD.read_text()
    for script, name in scripts.items():
        source = script.read_text()
        assert name, f"{script.name} has --write-docs but no DOCS_SECTION name"
        assert re.search(r"from corecall_testing\.bench_docs import .*\bwrite_section\b", source), (
            script.name
        )
        # No second copy of the marker-splitting writer.
        assert not re.search(r"\.split\(\s*(START|END|DOCS_BEGIN|DOCS_END)", source), script.name
        start, end = markers(name)
        assert text.count(start) == text.count(end) == 1, f"{script.name}: {name} markers"
    assert len(set(scripts.values())) == len(scripts), "two benchmarks share a section"
