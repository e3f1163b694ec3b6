#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need when it is missing (the Go
# reference server from Debian's nats-server package for interop tests, tmux for the
# nats-top terminal test, curl as the HTTPS monitoring client, Debian's prometheus package
# whose server and promtool check /metrics, Node.js and npm for the official websocket
# client nats.ws, Chromium for the browser page test, Python 3 and pip for the official Python
# client nats-py), builds every binary once, then runs
# every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
# No recommends for prometheus: they would bring its node exporter, which the tests do not use.
bare=()
{ [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; } || bare+=(prometheus)
if [ "${#need[@]}" -gt 0 ] || [ "${#bare[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]} ${bare[*]}"
  $sudo apt-get update -qq
  if [ "${#need[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ "${#bare[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${bare[@]}" >/dev/null
  fi
fi
/usr/sbin/nats-server --version

# nats.ws (and the `ws` package Node 20 needs for it) from the npm registry, pinned in
# tests/js/package.json; the websocket tests install it too when it is missing.
if [ ! -d tests/js/node_modules/nats.ws ] || [ ! -d tests/js/node_modules/ws ]; then
  (cd tests/js && npm install --no-audit --no-fund --loglevel=error)
fi

# nats-py, the official Python client (tests/py/js.py drives it), pinned, from PyPI.
if ! python3 -c "import nats.js" >/dev/null 2>&1; then
  # Debian's own python3 takes packages from pip only when told it may (PEP 668).
  python3 -m pip install -q --disable-pip-version-check "nats-py==2.16.0" 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check --break-system-packages "nats-py==2.16.0"
fi

# The integration tests run the built binaries as processes, so build them first.
cargo build --workspace --bins
cargo test --workspace "$@"
