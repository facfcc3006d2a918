"""The domain stays plain Python: it never reaches Django, DRF or the app.

Checked two ways: what a fresh interpreter actually loads when importing the
domain (catches indirect imports), and what the source says (catches imports
hidden inside functions that an import alone would not run).
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOMAIN = PROJECT_ROOT / "domain"
FORBIDDEN = {"django", "rest_framework", "allocation"}

PROBE = (
    "import json, sys, domain.model, domain.exceptions; "
    "print(json.dumps(sorted(m for m in sys.modules "
    "if m.split('.')[0] in {'django', 'rest_framework', 'allocation'})))"
)


def test_importing_the_domain_loads_no_django_drf_or_app_module():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}

    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-c", PROBE],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def forbidden_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [
            f"{path.name}:{node.lineno}: {name}"
            for name in names
            if name.split(".")[0] in FORBIDDEN
        ]
    return found


def test_domain_source_imports_no_django_drf_or_app_module():
    sources = sorted(DOMAIN.glob("*.py"))

    assert {p.name for p in sources} >= {"__init__.py", "model.py", "exceptions.py"}
    assert [hit for path in sources for hit in forbidden_imports(path)] == []


def test_the_source_scan_catches_a_forbidden_import(tmp_path):
    # Guards the guard: a scan that finds nothing must be able to find something.
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\n"
        "from domain import model\n"
        "def later():\n"
        "    from django.db import models\n"
        "    import rest_framework.serializers, allocation\n"
    )

    assert forbidden_imports(sample) == [
        "sample.py:4: django.db",
        "sample.py:5: rest_framework.serializers",
        "sample.py:5: allocation",
    ]
