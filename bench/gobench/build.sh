#!/usr/bin/env bash
# Builds the Go benchmark driver (bench/gobench/main.go) offline with Debian's packages:
# golang-go and golang-github-nats-io-go-nats-dev (nats.go v1.22.1 and its bench package,
# in /usr/share/gocode), in GOPATH mode. Installs them with apt-get when missing.
#
# Usage: bench/gobench/build.sh OUTPUT_BINARY
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
gopath=/usr/share/gocode
if ! command -v go >/dev/null || [ ! -d "$gopath/src/github.com/nats-io/nats.go/bench" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "gobench/build.sh: installing golang-go and golang-github-nats-io-go-nats-dev" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq golang-go golang-github-nats-io-go-nats-dev >/dev/null
fi
case $out in /*) ;; *) out=$PWD/$out ;; esac
export GOCACHE=${GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/go-build}
cd "$here"
GOPATH=$gopath GO111MODULE=off GOFLAGS= go build -o "$out" .
