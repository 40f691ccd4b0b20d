#!/bin/sh
# SPDX-License-Identifier: MIT
# Make sure the Debian packages hmmu builds with are present: install them
# when running as root, otherwise name them and fail.
set -eu

PKGS="cmake make gcc clang pkg-config liburcu-dev libcmocka-dev"

have_all() {
	command -v cmake >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 &&
		command -v clang >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1 &&
		pkg-config --exists liburcu-bp cmocka
}

have_all && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "hmmu: installing build dependencies: $PKGS"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq $PKGS >/dev/null
	have_all && exit 0
fi
echo "hmmu: missing build dependencies. Install the Debian packages:" >&2
echo "  apt-get install $PKGS" >&2
exit 1
