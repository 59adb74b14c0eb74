"""Build script for the aiokafka_c._core C extension.

librdkafka's compile and link flags come from ``pkg-config rdkafka``
(Debian: ``apt-get install librdkafka-dev pkg-config``).

Environment switches:
  AIOKAFKA_C_DEBUG=1  -O0 -g3, assertions on (-UNDEBUG)
  AIOKAFKA_C_ASAN=1   AddressSanitizer + UndefinedBehaviorSanitizer; run
                      Python with LD_PRELOAD=$(gcc -print-file-name=libasan.so)
"""

import os
import shlex
import subprocess
import sys
from glob import glob

from setuptools import Extension, setup

# Keep in step with AKC_MIN_RDKAFKA_VERSION in src/module.h.
MIN_RDKAFKA = (2, 0, 2)


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no")


def _pkg_config(*args: str) -> list[str]:
    try:
        out = subprocess.run(
            ["pkg-config", *args, "rdkafka"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except FileNotFoundError:
        sys.exit(
            "aiokafka_c: pkg-config was not found. Install it and librdkafka's "
            "headers first, e.g. `apt-get install pkg-config librdkafka-dev`."
        )
    except subprocess.CalledProcessError as exc:
        sys.exit(
            "aiokafka_c: librdkafka was not found by `pkg-config rdkafka` "
            f"({exc.stderr.strip()}). Install it, e.g. "
            "`apt-get install librdkafka-dev`."
        )
    return shlex.split(out)


def _rdkafka_flags() -> tuple[list[str], list[str], list[str]]:
    version = _pkg_config("--modversion")[0]
    parts = tuple(int(p) for p in version.split(".")[:3] if p.isdigit())
    if parts < MIN_RDKAFKA:
        sys.exit(
            f"aiokafka_c: librdkafka {version} is too old; "
            f"{'.'.join(map(str, MIN_RDKAFKA))} or newer is required."
        )
    cflags = _pkg_config("--cflags")
    libs = _pkg_config("--libs")
    include_dirs = [f[2:] for f in cflags if f.startswith("-I")]
    library_dirs = [f[2:] for f in libs if f.startswith("-L")]
    libraries = [f[2:] for f in libs if f.startswith("-l")]
    return include_dirs, library_dirs, libraries


include_dirs, library_dirs, libraries = _rdkafka_flags()
compile_args = ["-std=c11", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
link_args: list[str] = []
undef: list[str] = []
if _flag("AIOKAFKA_C_DEBUG") or _flag("AIOKAFKA_C_ASAN"):
    compile_args += ["-O0", "-g3"]
    undef.append("NDEBUG")
if _flag("AIOKAFKA_C_ASAN"):
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    compile_args += san + ["-fno-sanitize-recover=undefined"]
    link_args += san
if _flag("AIOKAFKA_C_WERROR"):
    compile_args.append("-Werror")

setup(
    ext_modules=[
        Extension(
            "aiokafka_c._core",
            sources=sorted(glob("src/*.c")),
            depends=sorted(glob("src/*.h")),
            include_dirs=["src", *include_dirs],
            library_dirs=library_dirs,
            libraries=libraries,
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            undef_macros=undef,
        )
    ],
)
