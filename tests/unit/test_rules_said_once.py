"""Each rule is written once: a copy that creeps back into the source fails here.

The domain states rule 1 (``PREFERENCE_ORDER``), "in stock means no eta"
(``BatchStatus.of``) and what an identifier is (``domain/validation.py``);
``allocation/models.py`` turns the first two into queries, and everything else
asks those. The marks searched for are the ones every copy so far carried;
a file allowed to hold one says why in ``ALLOWED``.
"""

import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: A mark of a restated rule -> the files allowed to carry it.
ALLOWED = {
    # Rule 1's field list.
    r"""["']eta["'],\s*["']created_at["'],\s*["']reference["']""": {"domain/model.py"},
    # Where a null eta sorts: the ORM helper; the keyset pagination applies
    # the same to any nullable field it is given (the batch list passes
    # ``allocation.models.NULLS_FIRST``).
    r"nulls_first": {"allocation/models.py", "allocation/api/pagination.py"},
    r"NULLS FIRST": {"allocation/models.py"},
    # In stock = no eta.
    r"eta__isnull": {"allocation/models.py"},
    r"eta\s+IS\s+(NOT\s+)?NULL": set(),
    r"eta\s+is\s+(not\s+)?None": {"domain/model.py"},
    # The identifier pattern, and compiling it (anchored) for a whole value.
    r"\[A-Za-z0-9\]": {"domain/validation.py"},
    r"\{IDENTIFIER_PATTERN\}\\Z": {"domain/validation.py"},
    # DRF's messages come from DRF's fields, never typed in.
    r"This field |A valid integer|Ensure this |Date has wrong format|Not a valid string": set(),
}


def sources() -> list[Path]:
    files = [*(PROJECT_ROOT / "allocation").rglob("*.py"), *(PROJECT_ROOT / "domain").glob("*.py")]
    return sorted(path for path in files if "migrations" not in path.parts)


def restatements(paths: list[Path], root: Path) -> list[str]:
    """``file: mark`` for each mark found in a file not allowed to carry it."""
    found = []
    for path in paths:
        name = path.relative_to(root).as_posix()
        text = path.read_text()
        found += [
            f"{name}: {mark}"
            for mark, allowed in ALLOWED.items()
            if name not in allowed and re.search(mark, text)
        ]
    return found


def test_no_rule_is_restated_outside_its_one_place():
    paths = sources()

    assert {"allocation/models.py", "domain/model.py", "domain/validation.py"} <= {
        p.relative_to(PROJECT_ROOT).as_posix() for p in paths
    }
    assert restatements(paths, PROJECT_ROOT) == []


def test_the_scan_catches_a_restated_rule(tmp_path):
    # Guards the guard: each kind of copy seen before is found again.
    sample = tmp_path / "allocation" / "admin" / "sample.py"
    sample.parent.mkdir(parents=True)
    sample.write_text(
        'ordering = ("product_id", F("eta").asc(nulls_first=True), "created_at", "reference")\n'
        "in_stock = queryset.filter(eta__isnull=True)\n"
        'keyset = Keyset(("product_id", "eta", "created_at", "reference"))\n'
        'SQL = "SELECT reference FROM allocation_batch WHERE eta IS NULL"\n'
        'PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")\n'
        'IDENTIFIER_RE = re.compile(rf"\\A{IDENTIFIER_PATTERN}\\Z")\n'
        'REQUIRED = "This field is required."\n'
    )

    assert restatements([sample], tmp_path) == [
        """allocation/admin/sample.py: ["']eta["'],\\s*["']created_at["'],\\s*["']reference["']""",
        "allocation/admin/sample.py: nulls_first",
        "allocation/admin/sample.py: eta__isnull",
        r"allocation/admin/sample.py: eta\s+IS\s+(NOT\s+)?NULL",
        r"allocation/admin/sample.py: \[A-Za-z0-9\]",
        r"allocation/admin/sample.py: \{IDENTIFIER_PATTERN\}\\Z",
        "allocation/admin/sample.py: This field |A valid integer|Ensure this "
        "|Date has wrong format|Not a valid string",
    ]
