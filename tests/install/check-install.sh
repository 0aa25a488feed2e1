#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then builds and runs an out-of-tree project
# that uses find_package(dango) and dango::rpc.
set -euo pipefail
build_dir=$1
source_dir=$2
cxx_flags=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/tests/install/consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_CXX_FLAGS="$cxx_flags" >/dev/null
cmake --build "$work/build" -j 2 >/dev/null
"$work/build/consumer"
