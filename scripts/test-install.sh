#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Install the build in $1 into a temporary prefix, then build the example
# driver $2 outside the tree with `pkg-config --cflags --libs hmmu` and run
# it against the installed shared library.  Also checks the installed
# command runs.  Usage: test-install.sh BUILD_DIR EXAMPLE.c
set -eu
build=$1
example=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/pkgconfig | head -n1 | xargs dirname)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
for f in hmmu.h mm.h migrate.h dmirror.h kernel-compat.h; do
	test -f "$prefix/include/hmmu/$f"
done
test -f "$libdir/libhmmu.a"
# shellcheck disable=SC2086 # EXAMPLE_CFLAGS: the build's sanitizer flags, if any
"${CC:-cc}" -std=gnu11 -Wall -Wextra -Werror ${EXAMPLE_CFLAGS:-} -o "$prefix/example" "$example" \
	$(pkg-config --cflags --libs hmmu) -Wl,-rpath,"$libdir"
"$prefix/bin/hmmu" --help >/dev/null
"$prefix/example"
