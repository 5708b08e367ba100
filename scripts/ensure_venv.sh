# shellcheck shell=bash
# Sourced by the runners: create .venv from requirements.txt on first use, reinstall when it changes.
# Sets PY to the venv's python. Honours PYTHON (the interpreter that builds the venv, default python3).

ensure_venv() {
  local root="$1" venv="$1/.venv" stamp="$1/.venv/.requirements.stamp"
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "Creating virtual environment in $venv (first run only)..." >&2
    "${PYTHON:-python3}" -m venv "$venv" || { echo "error: could not create $venv (is python3-venv installed?)" >&2; return 2; }
  fi
  if [[ ! -f "$stamp" || "$root/requirements.txt" -nt "$stamp" ]]; then
    echo "Installing requirements into $venv..." >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/requirements.txt" \
      || { echo "error: pip could not install requirements.txt" >&2; return 2; }
    touch "$stamp"
  fi
  PY="$venv/bin/python"
}
