# shellcheck shell=bash
# Sourced by scripts/run, scripts/test and .ci/run: make sure ./.venv exists
# and holds the given requirements file, reinstalling only when it changed.
#
#   bootstrap_venv requirements.txt          # runtime
#   bootstrap_venv requirements-dev.txt      # runtime + test tools
#
# Needs only a python3 >= 3.11 on PATH (or PYTHON=/path/to/python3.x).

PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$PROJECT_ROOT/.venv"

die() {
    echo "error: $*" >&2
    exit 1
}

check_python() {
    local python="$1" hint="${2:-}"
    command -v "$python" >/dev/null 2>&1 \
        || die "$python not found. Install Python 3.11 or newer (https://www.python.org/downloads/)."
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python 3.11 or newer is required; $python is $("$python" -V 2>&1).$hint"
}

# Hash of a requirements file, every file it pulls in with "-r", and the
# interpreter version: when it changes, the venv must be brought up to date.
requirements_digest() {
    (cd "$PROJECT_ROOT" && "$VENV/bin/python" - "$1") <<'PY'
import hashlib
import pathlib
import sys

digest = hashlib.sha256(sys.version.encode())
todo, seen = [pathlib.Path(sys.argv[1])], set()
while todo:
    path = todo.pop()
    if path in seen:
        continue
    seen.add(path)
    text = path.read_bytes()
    digest.update(str(path).encode() + b"\0" + text)
    for line in text.decode().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("-r", "--requirement"):
            todo.append(path.parent / parts[1])
print(digest.hexdigest())
PY
}

bootstrap_venv() {
    local requirements="$1"
    local python="${PYTHON:-python3}"

    if [[ ! -x "$VENV/bin/python" ]]; then
        check_python "$python"
        echo "==> creating virtualenv in .venv"
        if ! "$python" -m venv "$VENV"; then
            rm -rf "$VENV"
            die "could not create .venv (on Debian/Ubuntu: apt-get install python3-venv)."
        fi
    fi
    check_python "$VENV/bin/python" " Remove .venv and run again."

    local stamp digest
    stamp="$VENV/.stamp-$(basename "$requirements")"
    digest="$(requirements_digest "$requirements")" || die "could not read $requirements"

    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$digest" ]]; then
        echo "==> installing $requirements into .venv"
        "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet \
            -r "$PROJECT_ROOT/$requirements" \
            || die "pip install -r $requirements failed"
        echo "$digest" >"$stamp"
    fi
}
