#!/usr/bin/env bash
# Proves that an installed libdisrnn is usable from every supported path, using only what
# `make install` puts on a machine and pkg-config:
#   1. make install DESTDIR=<tmp> PREFIX=/usr/local; the staged disrnn.pc is copied with its
#      prefix, libdir and includedir pointed into the staged tree (nothing else changed)
#   2. a downstream C program and a C++ program (RAII wrappers), each linked dynamically
#      (pkg-config --cflags --libs) and statically against libdisrnn.a (pkg-config --static)
#   3. the downstream Makefile project and CMake project (pkg_check_modules)
#   4. the Python ctypes bindings: unittest (with and without numpy) and the example, the example
#      also under valgrind (definite leaks and memory errors in libdisrnn frames fail)
#   5. the Rust crates: header-sync check, cargo test and the example (offline; dynamic and static)
#   6. docs/julia.md checked against the header
#   7. every fit_synthetic run (C, C++, Rust, Python) must print identical result lines
# A part whose tool is missing prints a "skip" line. Exits non-zero on any failure.
#
# Environment: MAKE, CC, CXX, PYTHON (default /usr/bin/python3), CARGO, VALGRIND (set to "" to
# skip valgrind), BUILD/LIBOUT (passed through to make, e.g. to install a build from a
# side folder), KEEP_TMP=1 to keep the temporary folder.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
MAKE=${MAKE:-make}
CC=${CC:-cc}
CXX=${CXX:-c++}
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=$(command -v python3 || true); fi
fi
if [ -z "${CARGO:-}" ]; then
    CARGO=$(command -v cargo || true)
    [ -z "$CARGO" ] && [ -x "$HOME/.cargo/bin/cargo" ] && CARGO=$HOME/.cargo/bin/cargo
fi
VALGRIND=${VALGRIND-$(command -v valgrind || true)}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/disrnn-check-install.XXXXXX") || exit 1
if [ "${KEEP_TMP:-0}" = 1 ]; then echo "temporary folder: $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi

failures=()
results=()   # "label|file" of fit_synthetic outputs to compare
part() { printf '\n== %s\n' "$*"; }
skip() { printf -- '-- skip: %s\n' "$*"; }
fail() { printf -- '!! FAILED: %s\n' "$*"; failures+=("$*"); }
run() { printf '+ %s\n' "$*"; "$@"; }
# Runs a fit_synthetic program, shows its output and records it for the final comparison.
record() {
    local label=$1; shift
    local out="$tmp/out-${label//[^A-Za-z0-9]/_}.txt"
    printf '+ %s\n' "$*"
    if "$@" > "$out" 2> "$out.err"; then
        sed 's/^/    /' "$out"
        results+=("$label|$out")
    else
        sed 's/^/    /' "$out" "$out.err"
        fail "$label"
    fi
}

# ------------------------------------------------------------------------------------------
part "install into a DESTDIR tree"
command -v pkg-config > /dev/null || { echo "pkg-config is required"; exit 1; }
stage=$tmp/stage
prefix=/usr/local
if ! run "$MAKE" --no-print-directory install DESTDIR="$stage" PREFIX="$prefix" > "$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "make install failed"
    exit 1
fi
libdir=$stage$prefix/lib
(cd "$stage" && find . -type f -o -type l | sort | sed 's/^\./    /')
installed_pc=$(find "$stage" -name disrnn.pc | head -n 1)
[ -n "$installed_pc" ] || { echo "make install wrote no disrnn.pc"; exit 1; }
# PKG_CONFIG_SYSROOT_DIR would also prefix the system paths of the private dependencies
# (OpenBLAS, LAPACKE), breaking static links and CMake's imported target; relocating the three
# path variables of our own file is exact.
mkdir -p "$tmp/pkgconfig"
sed -e "s|^prefix=|prefix=$stage|" -e "s|^libdir=/|libdir=$stage/|" -e "s|^includedir=/|includedir=$stage/|" \
    "$installed_pc" > "$tmp/pkgconfig/disrnn.pc"
diff "$installed_pc" "$tmp/pkgconfig/disrnn.pc" | sed 's/^/    /'
unset PKG_CONFIG_SYSROOT_DIR
export PKG_CONFIG_PATH=$tmp/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
if [ ! -f "$libdir/libdisrnn.so" ] || [ ! -f "$libdir/libdisrnn.a" ]; then
    echo "libdir $libdir lacks the libraries"
    exit 1
fi
echo "pkg-config: disrnn $(pkg-config --modversion disrnn)"
echo "  --cflags --libs:  $(pkg-config --cflags --libs disrnn)"
echo "  --static --libs:  $(pkg-config --static --libs disrnn)"
cflags=$(pkg-config --cflags disrnn) || { fail "pkg-config --cflags disrnn"; exit 1; }
libs=$(pkg-config --libs disrnn) || { fail "pkg-config --libs disrnn"; exit 1; }
# Same flags from pkg-config; only the one library name is pinned to the archive (the .so sits
# next to it and would otherwise win).
static_libs=$(pkg-config --static --libs disrnn | sed 's/-ldisrnn\b/-l:libdisrnn.a/') || fail "pkg-config --static"

# Whether a program loads libdisrnn.so (readelf from binutils; without it, assume the link
# mode asked for, so the check can never fail for the wrong reason).
if command -v readelf > /dev/null; then
    needs_libdisrnn() { readelf -d "$1" 2> /dev/null | grep -q 'NEEDED.*libdisrnn'; }
else
    echo "-- skip: readelf not found, link modes not verified"
    needs_libdisrnn() { case $1 in *static*) return 1 ;; *) return 0 ;; esac; }
fi

# ------------------------------------------------------------------------------------------
part "downstream C program (examples/downstream/fit_synthetic.c)"
# shellcheck disable=SC2086  # pkg-config output is a list of words
if run "$CC" -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 examples/downstream/fit_synthetic.c $cflags $libs \
       -o "$tmp/c_shared"; then
    needs_libdisrnn "$tmp/c_shared" || fail "C program is not linked to libdisrnn.so"
    record "C shared" env LD_LIBRARY_PATH="$libdir" "$tmp/c_shared"
else
    fail "C program, shared"
fi
# shellcheck disable=SC2086
if run "$CC" -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 examples/downstream/fit_synthetic.c $cflags $static_libs \
       -o "$tmp/c_static"; then
    needs_libdisrnn "$tmp/c_static" && fail "static C program still needs libdisrnn.so"
    record "C static" env -u LD_LIBRARY_PATH "$tmp/c_static"
else
    fail "C program, static"
fi

# ------------------------------------------------------------------------------------------
part "C++ program with RAII wrappers (examples/cpp)"
if command -v "$CXX" > /dev/null; then
    # shellcheck disable=SC2086
    if run "$CXX" -std=c++11 -Wall -Wextra -Wpedantic -Werror -O2 -Iexamples/cpp examples/cpp/fit_example.cpp \
           $cflags $libs -o "$tmp/cpp_shared"; then
        needs_libdisrnn "$tmp/cpp_shared" || fail "C++ program is not linked to libdisrnn.so"
        record "C++ shared" env LD_LIBRARY_PATH="$libdir" "$tmp/cpp_shared"
    else
        fail "C++ program, shared"
    fi
    # shellcheck disable=SC2086
    if run "$CXX" -std=c++11 -Wall -Wextra -Wpedantic -Werror -O2 -Iexamples/cpp examples/cpp/fit_example.cpp \
           $cflags $static_libs -o "$tmp/cpp_static"; then
        needs_libdisrnn "$tmp/cpp_static" && fail "static C++ program still needs libdisrnn.so"
        record "C++ static" env -u LD_LIBRARY_PATH "$tmp/cpp_static"
    else
        fail "C++ program, static"
    fi
else
    skip "no C++ compiler ($CXX)"
fi

# ------------------------------------------------------------------------------------------
# Built from a copy so nothing is written into the source tree.
cp -R examples/downstream "$tmp/downstream"

part "downstream Makefile project (examples/downstream/make)"
if run "$MAKE" --no-print-directory -C "$tmp/downstream/make" CC="$CC" > "$tmp/make.log" 2>&1; then
    sed 's/^/    /' "$tmp/make.log"
    record "C via Makefile" env LD_LIBRARY_PATH="$libdir" "$tmp/downstream/make/fit_synthetic"
else
    cat "$tmp/make.log"
    fail "downstream Makefile project"
fi

part "downstream CMake project (examples/downstream/cmake, pkg_check_modules)"
if command -v cmake > /dev/null; then
    if run cmake -S "$tmp/downstream/cmake" -B "$tmp/cmake-build" -DCMAKE_C_COMPILER="$CC" > "$tmp/cmake.log" 2>&1 &&
       run cmake --build "$tmp/cmake-build" >> "$tmp/cmake.log" 2>&1; then
        grep -E 'libdisrnn|Built target' "$tmp/cmake.log" | sed 's/^/    /'
        # CMake links the full path found through pkg-config and adds it as build rpath.
        record "C via CMake" env -u LD_LIBRARY_PATH "$tmp/cmake-build/fit_synthetic"
        (cd "$tmp/cmake-build" && run ctest --output-on-failure > "$tmp/ctest.log" 2>&1) || { cat "$tmp/ctest.log"; fail "ctest"; }
    else
        cat "$tmp/cmake.log"
        fail "downstream CMake project"
    fi
else
    skip "cmake not found"
fi

# ------------------------------------------------------------------------------------------
part "Python bindings (bindings/python, ctypes)"
if [ -n "$PYTHON" ] && [ -x "$PYTHON" ]; then
    echo "python: $PYTHON ($("$PYTHON" --version 2>&1))"
    # The package finds libdisrnn through pkg-config (PKG_CONFIG_PATH set above).
    export PYTHONDONTWRITEBYTECODE=1
    if "$PYTHON" -c 'import numpy' 2> /dev/null; then
        run env -u DISRNN_LIBRARY "$PYTHON" -m unittest discover -s bindings/python/tests \
            || fail "Python tests (numpy)"
    else
        skip "numpy not installed: numpy-path tests"
    fi
    run env -u DISRNN_LIBRARY DISRNN_PY_NO_NUMPY=1 "$PYTHON" -m unittest discover -s bindings/python/tests \
        || fail "Python tests (pure Python)"
    record "Python" env -u DISRNN_LIBRARY "$PYTHON" bindings/python/examples/fit_synthetic.py

    part "valgrind: the Python example and the C program"
    if [ -n "$VALGRIND" ] && command -v "$VALGRIND" > /dev/null; then
        vg=("$VALGRIND" --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite
            --num-callers=50 --error-limit=no)
        # Python's own allocations are not ours: fail only on records with a libdisrnn frame.
        # (OpenBLAS picks its CPU kernel from what valgrind's virtual CPU reports, so the checksum
        # printed here may differ from native runs; it is not compared.)
        printf '+ %s %s\n' "${vg[*]}" "$PYTHON bindings/python/examples/fit_synthetic.py"
        if env DISRNN_PY_NO_NUMPY=1 PYTHONMALLOC=malloc OPENBLAS_NUM_THREADS=1 \
               "${vg[@]}" --log-file="$tmp/vg-python.log" "$PYTHON" bindings/python/examples/fit_synthetic.py \
               > "$tmp/vg-python.out" 2>&1; then
            sed 's/^/    /' "$tmp/vg-python.out"
            # A frame is ours when it names the library file or a disrnn_ function (with debug
            # information valgrind shows the source file instead of the library path).
            # Only stack frames ("at 0x..." / "by 0x...") are matched, never the command line.
            awk '
                /^==[0-9]+== *$/ { if (ours) { bad++; print rec } rec = ""; ours = 0; next }
                { rec = rec $0 "\n" }
                /^==[0-9]+== +(at|by) 0x/ && /libdisrnn|[^A-Za-z0-9_]disrnn_/ { ours = 1 }
                END { if (ours) { bad++; print rec } exit bad > 0 }
            ' "$tmp/vg-python.log" > "$tmp/vg-python.bad"
            if [ -s "$tmp/vg-python.bad" ]; then
                cat "$tmp/vg-python.bad"
                fail "valgrind: errors or definite leaks in libdisrnn frames under Python"
            else
                echo "    valgrind: no memory errors and no definite leaks in libdisrnn frames"
                grep -E 'definitely lost|ERROR SUMMARY' "$tmp/vg-python.log" | sed 's/^==[0-9]*== /    (whole process) /'
            fi
        else
            cat "$tmp/vg-python.out"
            fail "Python example under valgrind"
        fi
        # The C program frees everything it creates: it must be clean as a whole.
        if [ -x "$tmp/c_shared" ]; then
            printf '+ %s %s\n' "${vg[*]} --errors-for-leak-kinds=definite,indirect --error-exitcode=99" "$tmp/c_shared"
            if env LD_LIBRARY_PATH="$libdir" OPENBLAS_NUM_THREADS=1 "${vg[@]}" --errors-for-leak-kinds=definite,indirect \
                   --error-exitcode=99 --log-file="$tmp/vg-c.log" "$tmp/c_shared" > /dev/null 2>&1; then
                grep -E 'definitely lost|indirectly lost|ERROR SUMMARY|All heap blocks' "$tmp/vg-c.log" | sed 's/^==[0-9]*== /    /'
            else
                cat "$tmp/vg-c.log"
                fail "C program under valgrind"
            fi
        fi
    else
        skip "valgrind not found"
    fi
else
    skip "python3 not found"
fi

# ------------------------------------------------------------------------------------------
part "Rust crates (bindings/rust: disrnn-sys, disrnn)"
if [ -n "$PYTHON" ] && [ -x "$PYTHON" ]; then
    run "$PYTHON" bindings/rust/disrnn-sys/gen/gen_sys.py --check || fail "disrnn-sys declarations are stale"
fi
if [ -n "$CARGO" ] && [ -x "$CARGO" ]; then
    echo "cargo: $CARGO ($("$CARGO" --version 2>&1))"
    export CARGO_NET_OFFLINE=true
    export CARGO_TARGET_DIR=$tmp/cargo-target
    (
        cd bindings/rust || exit 1
        # The build script asks pkg-config; the rpath it sets lets tests run without LD_LIBRARY_PATH.
        run env -u LD_LIBRARY_PATH -u DISRNN_LIB_DIR "$CARGO" test --offline --quiet
    ) || fail "cargo test"
    if (
        cd bindings/rust || exit 1
        run env -u DISRNN_LIB_DIR "$CARGO" build --offline --quiet --release --example fit_synthetic
    ); then
        needs_libdisrnn "$CARGO_TARGET_DIR/release/examples/fit_synthetic" || fail "Rust example is not linked to libdisrnn.so"
        record "Rust shared" env -u LD_LIBRARY_PATH "$CARGO_TARGET_DIR/release/examples/fit_synthetic"
    else
        fail "Rust example, shared"
    fi
    if (
        cd bindings/rust || exit 1
        run env -u DISRNN_LIB_DIR DISRNN_STATIC=1 CARGO_TARGET_DIR="$tmp/cargo-target-static" \
            "$CARGO" build --offline --quiet --release --example fit_synthetic
    ); then
        needs_libdisrnn "$tmp/cargo-target-static/release/examples/fit_synthetic" && fail "static Rust example needs libdisrnn.so"
        record "Rust static" env -u LD_LIBRARY_PATH "$tmp/cargo-target-static/release/examples/fit_synthetic"
    else
        fail "Rust example, static"
    fi
else
    skip "cargo not found (Rust bindings not built)"
fi

# ------------------------------------------------------------------------------------------
part "Julia guide (docs/julia.md) against the header"
if [ -n "$PYTHON" ] && [ -x "$PYTHON" ]; then
    run "$PYTHON" tests/check_julia_doc.py || fail "docs/julia.md does not match include/disrnn.h"
else
    skip "python3 not found"
fi

# ------------------------------------------------------------------------------------------
part "fit_synthetic results across languages and link modes"
ref_file=""
for entry in "${results[@]}"; do
    label=${entry%%|*}
    file=${entry#*|}
    tail -n +2 "$file" > "$file.result"
    if [ -z "$ref_file" ]; then
        ref_file=$file.result
        ref_label=$label
        sed 's/^/    /' "$ref_file"
    fi
    if cmp -s "$ref_file" "$file.result"; then
        printf '    %-16s matches\n' "$label"
    else
        printf '    %-16s DIFFERS from %s:\n' "$label" "$ref_label"
        diff "$ref_file" "$file.result" | sed 's/^/      /'
        fail "$label result differs"
    fi
done
[ ${#results[@]} -ge 2 ] || fail "fewer than two fit_synthetic results to compare"

echo
if [ ${#failures[@]} -ne 0 ]; then
    echo "check_install: ${#failures[@]} failure(s):"
    printf '  - %s\n' "${failures[@]}"
    exit 1
fi
echo "check_install: all parts passed (${#results[@]} matching fit_synthetic runs)"
