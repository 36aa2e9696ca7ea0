"""docs/wechat-protocol.md has a heading for every section the code cites, and names its sources.

Comments cite the notes as `wechat-protocol.md §6.2` or `docs/wechat-protocol.md §6.2`, sometimes
several at once (`§1, §3.7 and §9`, `§8.1/§8.2`) or as a range (`§3.2-3.4`, `§6.5-§6.7`). Every
number named must be the first token of a heading in the doc. No network needed.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "wechat-protocol.md"
SCANNED_SUFFIXES = {".py", ".html", ".js", ".md"}
SKIPPED_DIRS = {".venv", ".venv-lock", ".git", "docs", "node_modules", "__pycache__", ".pytest_cache"}

NUM = r"\d+(?:\.\d+)*"
# "wechat-protocol.md §6.2", with an optional "docs/" in front and an optional space after §,
# followed by any further numbers of the same citation: ", §3.7", " and §9", "/§8.2", "-3.4",
# "–§6.7". A further number needs its own § unless it follows a range dash.
CITATION = re.compile(
    rf"(?:docs/)?wechat-protocol\.md\s*§\s*(?P<first>{NUM})"
    rf"(?P<rest>(?:\s*[-–]\s*§?\s*{NUM}|(?:\s*(?:,|/|and|or|&)\s*)§\s*{NUM})*)"
)
FURTHER = re.compile(rf"§?\s*({NUM})")
HEADING = re.compile(rf"^#{{2,6}}\s+({NUM})\.?(?=\s)", re.MULTILINE)


def scanned_files():
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS for part in rel.parts[:-1]):
            continue
        if path == Path(__file__).resolve():
            continue  # this file's examples are test data, not citations
        if path.suffix in SCANNED_SUFFIXES and path.is_file():
            yield path


def cited_sections(text):
    """The section numbers cited in `text`, each once, in order of first appearance."""
    found = []
    for match in CITATION.finditer(text):
        numbers = [match["first"]] + FURTHER.findall(match["rest"])
        found.extend(n for n in numbers if n not in found)
    return found


# A bare "§6.2" in a comment also means these notes (the sandbox and protocol modules cite them
# that way), unless it names another document: "§2.2 of the XML spec", "RFC 6749 §10.12",
# "DESIGN.md §3".
BARE = re.compile(rf"(?<![\w.])(?P<before>(?:RFC\s*\d+|[\w.-]+\.(?:md|txt|html|rst))?\s*)§\s*(?P<num>{NUM})(?P<after>\s+of\b)?")


def bare_sections(text):
    found = []
    for match in BARE.finditer(text):
        before = match["before"].strip()
        if match["after"] or (before and "wechat-protocol.md" not in before):
            continue
        if match["num"] not in found:
            found.append(match["num"])
    return found


def doc_sections(text):
    return set(HEADING.findall(text))


def all_citations(find=cited_sections):
    """{section number: ["path:line", ...]} over the whole repository (docs/ excluded)."""
    cited = {}
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), 1):
            for number in find(line):
                cited.setdefault(number, []).append(f"{path.relative_to(ROOT)}:{lineno}")
    return cited


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see wechat-protocol.md §4.4.", ["4.4"]),
        ("docs/wechat-protocol.md §8.3 and more", ["8.3"]),
        ("wechat-protocol.md § 12.1", ["12.1"]),
        ("wechat-protocol.md §1, §3.7 and §9", ["1", "3.7", "9"]),
        ("wechat-protocol.md §8.1/§8.2", ["8.1", "8.2"]),
        ("wechat-protocol.md §3.2-3.4", ["3.2", "3.4"]),
        ("wechat-protocol.md §6.5–§6.7", ["6.5", "6.7"]),
        ("wechat-protocol.md §7, 40033", ["7"]),  # an error code is not a section
        ("§2.2 of the XML spec", []),  # not a citation of our notes
    ],
)
def test_citation_forms_are_recognised(text, expected):
    assert cited_sections(text) == expected


def test_headings_are_recognised():
    text = "## 4. Inbound XML\n### 4.4 Retries and de-duplication\n#### 10.1 Official\n# 99 title\n"
    assert doc_sections(text) == {"4", "4.4", "10.1"}


def test_the_code_cites_the_protocol_notes():
    # Guards the scanner itself: if it found nothing, the next test would pass vacuously.
    assert len(all_citations()) >= 10


def test_every_cited_section_has_a_heading():
    headings = doc_sections(DOC.read_text(encoding="utf-8"))
    missing = {n: where for n, where in all_citations().items() if n not in headings}
    assert not missing, "cited but not in docs/wechat-protocol.md: " + "; ".join(
        f"§{n} ({', '.join(where[:3])}{' …' if len(where) > 3 else ''})" for n, where in sorted(missing.items())
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CODE_TTL = 300  # §6.3: an authorization code expires 5 min", ["6.3"]),
        ("(§8.1/§8.2) and (protocol §6)", ["8.1", "8.2", "6"]),
        ("# Characters XML 1.0 forbids (§2.2 of the XML spec)", []),
        ("RFC 6749 §10.12 and DESIGN.md §3", []),
        ("see wechat-protocol.md §4.4", ["4.4"]),
    ],
)
def test_bare_citation_forms_are_recognised(text, expected):
    assert bare_sections(text) == expected


def test_every_bare_section_sign_has_a_heading():
    # Comments in the sandbox and protocol modules say just "§6.2"; they mean these notes too.
    headings = doc_sections(DOC.read_text(encoding="utf-8"))
    missing = {n: where for n, where in all_citations(bare_sections).items() if n not in headings}
    assert not missing, "'§N' used but not in docs/wechat-protocol.md: " + "; ".join(
        f"§{n} ({', '.join(where[:3])}{' …' if len(where) > 3 else ''})" for n, where in sorted(missing.items())
    )


def test_doc_has_a_sources_section_with_official_urls():
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"^## (\d+)\. Sources\b(?P<body>.*?)(?=^## \d+\. )", text, re.MULTILINE | re.DOTALL)
    assert match, "no '## N. Sources' section"
    assert "https://developers.weixin.qq.com/" in match["body"]


def test_parts_one_and_two_are_all_there():
    # Sections 1-18 are cited by number across the code and by later work; none may go missing.
    headings = doc_sections(DOC.read_text(encoding="utf-8"))
    assert {str(n) for n in range(1, 19)} <= headings
