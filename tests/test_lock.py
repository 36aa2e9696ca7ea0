"""pyproject.toml and the lock files agree: every dependency is pinned `==` in the lock at a version
its specifier allows, with hashes, and the running venv has exactly the locked versions.

After changing a dependency in pyproject.toml, refresh the locks with `./dev lock` and commit them."""

from __future__ import annotations

import importlib.metadata
import os
import tomllib

import pytest

try:
    from packaging.markers import default_environment
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # pragma: no cover - packaging comes with pytest; pip vendors it too
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
    from pip._vendor.packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYPROJECT = os.path.join(ROOT, "pyproject.toml")
RUNTIME_LOCK = os.path.join(ROOT, "requirements", "runtime.lock")
TEST_LOCK = os.path.join(ROOT, "requirements", "test.lock")
REFRESH = "run ./dev lock and commit requirements/"


def direct_requirements(pyproject_path, extras=()):
    """The project's dependencies plus those of `extras`, as Requirements that apply here."""
    with open(pyproject_path, "rb") as f:
        project = tomllib.load(f)["project"]
    lines = [(line, "") for line in project.get("dependencies", [])]
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        lines += [(line, extra) for line in optional.get(extra, [])]
    reqs = []
    for line, extra in lines:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(dict(default_environment(), extra=extra)):
            continue
        reqs.append(req)
    return reqs


def parse_lock(lock_path):
    """{canonical name: (requirement text, [hash options])} for each entry of a pip-compile lock."""
    with open(lock_path, encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    entries = {}
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line or line.startswith("-"):      # comments, blank lines, global options (--index-url …)
            continue
        words = line.split()
        req_words = [w for w in words if not w.startswith("--")]
        options = [w for w in words if w.startswith("--")]
        req_text = " ".join(req_words)
        try:
            name = canonicalize_name(Requirement(req_text).name)
        except InvalidRequirement:
            name = req_text
        entries[name] = (req_text, options)
    return entries


def check_lock(pyproject_path, lock_path, extras=()):
    """Problems (strings; none when the two agree) between pyproject.toml and one lock file."""
    problems = []
    entries = parse_lock(lock_path)
    lock_name = os.path.basename(lock_path)
    pins = {}
    for name, (req_text, options) in entries.items():
        try:
            req = Requirement(req_text)
        except InvalidRequirement:
            problems.append(f"{lock_name}: cannot read the entry {req_text!r}")
            continue
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            problems.append(f"{lock_name}: {req_text!r} is not pinned with == to one version")
        else:
            pins[name] = specs[0].version
        if not any(o.startswith("--hash=sha256:") and len(o) > len("--hash=sha256:") for o in options):
            problems.append(f"{lock_name}: {req_text!r} has no --hash=sha256:")
    for req in direct_requirements(pyproject_path, extras):
        name = canonicalize_name(req.name)
        if name not in entries:
            problems.append(f"{lock_name}: {req} from pyproject.toml is missing; {REFRESH}")
        elif name in pins and not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{lock_name}: pins {req.name}=={pins[name]}, which pyproject.toml's "
                            f"{req} does not allow; {REFRESH}")
    return problems


def check_installed(pyproject_path, lock_path, extras=()):
    """Problems where the running environment's direct dependencies differ from the lock's pins."""
    problems = []
    entries = parse_lock(lock_path)
    for req in direct_requirements(pyproject_path, extras):
        name = canonicalize_name(req.name)
        if name not in entries:
            continue                              # check_lock reports it
        locked = next(iter(Requirement(entries[name][0]).specifier)).version
        try:
            installed = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != locked:
            problems.append(f"{req.name}: installed {installed or 'nothing'}, the lock pins {locked}; "
                            f"reinstall: .venv/bin/pip install --require-hashes -r {os.path.relpath(lock_path, ROOT)}")
    return problems


# -- the real files ---------------------------------------------------------------------------------

def test_runtime_lock_matches_pyproject():
    problems = check_lock(PYPROJECT, RUNTIME_LOCK)
    assert not problems, "\n".join(problems)


def test_test_lock_matches_pyproject_with_test_extra():
    problems = check_lock(PYPROJECT, TEST_LOCK, extras=["test"])
    assert not problems, "\n".join(problems)


def test_runtime_and_test_locks_pin_shared_packages_alike():
    """Tests run against the versions the image ships: a package in both locks has one version."""
    runtime, test = parse_lock(RUNTIME_LOCK), parse_lock(TEST_LOCK)
    missing = sorted(set(runtime) - set(test))
    differ = sorted(n for n in set(runtime) & set(test) if runtime[n][0] != test[n][0])
    assert not missing and not differ, (
        f"only in runtime.lock: {missing}; pinned differently: {[(runtime[n][0], test[n][0]) for n in differ]}; {REFRESH}")


def test_running_venv_has_the_locked_versions():
    problems = check_installed(PYPROJECT, TEST_LOCK, extras=["test"])
    assert not problems, "\n".join(problems)


# -- the checks can fail --------------------------------------------------------------------------

LOCK_ENTRY = "{name}=={version} \\\n    --hash=sha256:{digest}\n    # via -r pyproject.toml\n"


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


SMALL_PINS = [("tornado", "6.6.1"), ("segno", "1.6.6"), ("pytest", "9.2.0")]


def small_lock(skip=()):
    return "".join(LOCK_ENTRY.format(name=n, version=v, digest=str(i) * 64)
                   for i, (n, v) in enumerate(SMALL_PINS) if n not in skip)


@pytest.fixture
def small_pair(tmp_path):
    pyproject = write(tmp_path / "pyproject.toml",
                      '[project]\nname = "x"\nversion = "0"\n'
                      'dependencies = ["tornado~=6.6", "segno~=1.6"]\n'
                      '[project.optional-dependencies]\ntest = ["pytest~=9.2"]\n')
    return tmp_path, pyproject, small_lock()


def test_a_matching_small_pair_passes(small_pair):
    tmp_path, pyproject, lock = small_pair
    assert check_lock(pyproject, write(tmp_path / "ok.lock", lock), extras=["test"]) == []


def test_a_specifier_the_lock_does_not_satisfy_is_a_problem(small_pair):
    tmp_path, pyproject, lock = small_pair
    old = write(tmp_path / "pyproject.toml",
                open(pyproject, encoding="utf-8").read().replace("tornado~=6.6", "tornado~=5.0"))
    problems = check_lock(old, write(tmp_path / "ok.lock", lock))
    assert len(problems) == 1 and "tornado==6.6.1" in problems[0] and "tornado~=5.0" in problems[0]
    # and against the real lock too
    real = write(tmp_path / "real-pyproject.toml",
                 open(PYPROJECT, encoding="utf-8").read().replace('"tornado~=6.6"', '"tornado~=5.0"'))
    assert any("tornado" in p for p in check_lock(real, RUNTIME_LOCK))


def test_a_lock_missing_a_package_is_a_problem(small_pair):
    tmp_path, pyproject, lock = small_pair
    without_segno = small_lock(skip=["segno"])
    problems = check_lock(pyproject, write(tmp_path / "short.lock", without_segno))
    assert len(problems) == 1 and "segno" in problems[0] and "missing" in problems[0]
    # the test extra's packages are checked only with extras=["test"]
    no_pytest = small_lock(skip=["pytest"])
    assert check_lock(pyproject, write(tmp_path / "rt.lock", no_pytest)) == []
    assert any("pytest" in p for p in check_lock(pyproject, tmp_path / "rt.lock", extras=["test"]))


def test_a_lock_entry_without_a_hash_or_pin_is_a_problem(small_pair):
    tmp_path, pyproject, lock = small_pair
    no_hash = lock.replace("segno==1.6.6 \\\n    --hash=sha256:" + "1" * 64 + "\n", "segno==1.6.6\n")
    assert no_hash != lock
    problems = check_lock(pyproject, write(tmp_path / "nohash.lock", no_hash))
    assert len(problems) == 1 and "segno==1.6.6" in problems[0] and "--hash" in problems[0]
    unpinned = lock.replace("segno==1.6.6", "segno>=1.6")
    problems = check_lock(pyproject, write(tmp_path / "unpinned.lock", unpinned))
    assert len(problems) == 1 and "not pinned" in problems[0]


def test_an_installed_version_other_than_the_lock_is_a_problem(tmp_path):
    pyproject = write(tmp_path / "pyproject.toml",
                      '[project]\nname = "x"\nversion = "0"\ndependencies = ["pytest~=9.2"]\n')
    lock = write(tmp_path / "x.lock", LOCK_ENTRY.format(name="pytest", version="9.0.0", digest="a" * 64))
    problems = check_installed(pyproject, lock)
    assert len(problems) == 1 and "the lock pins 9.0.0" in problems[0]
