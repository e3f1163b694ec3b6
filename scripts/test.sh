#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need when it is missing (the Go
# reference server from Debian's nats-server package for interop tests, tmux for the
# nats-top terminal test, curl as the HTTPS monitoring client, Debian's prometheus package
# whose server and promtool check /metrics), builds every binary once, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
command -v curl >/dev/null 2>&1 || need+=(curl)
{ [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; } || need+=(prometheus)
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  # No recommends: prometheus would bring its node exporter, which the tests do not use.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
/usr/sbin/nats-server --version

# The integration tests run the built binaries as processes, so build them first.
cargo build --workspace --bins
cargo test --workspace "$@"
