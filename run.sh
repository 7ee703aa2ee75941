#!/usr/bin/env bash
# One entry point for set-up and the two README commands.
#   ./run.sh demo [ARGS...]   install into .venv, then run the main job on bundled input
#   ./run.sh test [ARGS...]   install into .venv, then run the whole test suite
# Needs only Python 3.11 on PATH (python3.11 or python3). Re-installs when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV=.venv
STAMP="$VENV/.install-stamp"

ensure_env() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "[drscreen] creating virtual environment in $VENV with $PYTHON"
        "$PYTHON" -m venv "$VENV"
    fi
    local want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
        echo "[drscreen] installing drscreen and its dependencies (first run: a few minutes)"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -e ".[test]"
        echo "$want" > "$STAMP"
    fi
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    demo)
        ensure_env
        exec "$VENV/bin/drscreen" demo "$@"
        ;;
    test)
        ensure_env
        set +e
        "$VENV/bin/python" -m pytest "$@"
        rc=$?
        set -e
        if [ "$rc" -eq 5 ]; then
            echo "[drscreen] pytest collected no tests: treating that as a failure" >&2
            exit 1
        fi
        exit "$rc"
        ;;
    *)
        echo "usage: ./run.sh demo|test [ARGS...]" >&2
        exit 2
        ;;
esac
