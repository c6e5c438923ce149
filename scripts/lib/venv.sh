# Sourced by scripts/serve and scripts/test: make .venv hold the project with the extras asked for,
# installing only when pyproject.toml or constraints.txt changed since the last install of those extras.
# The stamp (.venv/.vcds-installed) keeps one line per install: "<sha256 of both files> <extras>", so a
# restart with a complete .venv runs no pip at all and works with no network.
# Usage: ensure_venv ""      (the service alone)   ensure_venv dev   (the service and the test tools)

ensure_venv() {
  local extras="$1" digest stamp=.venv/.vcds-installed target=.
  digest="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && { grep -qx "$digest $extras" "$stamp" || grep -qx "$digest dev" "$stamp"; }; then
    return 0  # `dev` includes everything the service needs
  fi
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  [ -n "$extras" ] && target=".[$extras]"
  echo "installing into .venv (pyproject.toml or constraints.txt changed since the last install)" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e "$target"
  # Keep only lines of the current files, then add this install.
  { grep "^$digest " "$stamp" 2>/dev/null || true; echo "$digest $extras"; } | sort -u > "$stamp.new"
  mv "$stamp.new" "$stamp"
}
