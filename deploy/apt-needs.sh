#!/bin/sh
# Install, with one apt-get call, the Debian packages whose commands are missing.
# Usage: apt-needs.sh [--no-recommends] WHY COMMAND:PACKAGE...   (WHY: which tests or tools need them)
# As root the packages are installed; otherwise the apt-get line to run is printed and it fails.
set -eu
options=""
if [ "$1" = --no-recommends ]; then
  options="--no-install-recommends"
  shift
fi
why=$1
shift
missing=""
for pair in "$@"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing="$missing ${pair#*:}"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  apt-get update -q
  # One word per package and option.
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $options $missing
else
  echo "run 'sudo apt-get install$missing': $why need them" >&2
  exit 1
fi
