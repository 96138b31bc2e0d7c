"""android/buildozer.spec, read by buildozer's own parser, against the code it packages.

No Android SDK is needed: ``buildozer.Buildozer(filename)`` reads the spec with its
``SpecParser`` and runs its configuration checks, and its source copy (the step that fills the
APK's app folder) runs on any machine. What python-for-android itself does with the spec (the
recipes, the NDK, the APK) is not exercised here; docs/android.md says what was checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from buildozer import Buildozer
from buildozer.specparser import SpecParser
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from tests.android.device_deps import (
    DEVICE_PACKAGES,
    ROOT,
    SERVER_PACKAGES,
    closure,
    compiled,
    declared,
    device_requirements,
    distributions_of,
    imported_modules,
    pyproject,
    third_party,
)

ANDROID = ROOT / "android"
SPEC = ANDROID / "buildozer.spec"

#: python-for-android v2026.05.09 (tag commit below): the first release whose recommended NDK is
#: r28c, the NDK that links 16 KB-aligned native libraries by default.
P4A_RELEASE_COMMIT = "58d21141f17c889bf8585f5665921d72028f8831"
#: Recipes of that release the spec relies on (read in its pythonforandroid/recipes/ folder).
P4A_RECIPES = frozenset(
    canonicalize_name(n)
    for n in (
        "python3",
        "sqlite3",
        "openssl",
        "libffi",
        "kivy",
        "cryptography",
        "cffi",
        "pydantic-core",
        "Pillow",
        "httpx",
        "setuptools",
        "pyjnius",
        "android",
        "sdl2",
        "pyzbar",
        "libzbar",
    )
)
#: Recipes that bring their own dependencies (their desktop metadata is not what they install):
#: kivy (sdl2, pyjnius, android and its python_depends), cryptography (openssl, cffi, pycparser).
SELF_CONTAINED_RECIPES = frozenset({"kivy", "cryptography"})
#: Distributions with compiled parts on the desktop that need no recipe, and why.
PURE_ON_ANDROID = {
    "pyyaml": "its C speed-up is optional: pip builds the sdist without libyaml, pure Python",
}
#: Distributions in the device's closure that the APK leaves out on purpose, and why.
NOT_PACKAGED = {
    "pip": "sqlite-utils requires it for its 'sqlite-utils install' command, which the device never runs",
}
#: Standard-library modules that python-for-android builds only when their recipe is named.
STDLIB_RECIPES = {"sqlite3": "sqlite3", "ssl": "openssl", "ctypes": "libffi"}
#: pydantic releases and the pydantic-core each one requires exactly (from their PyPI metadata).
PYDANTIC_CORE_OF = {"2.12.3": "2.41.4"}
#: Google Play: new apps and updates must target Android 16 (API 36) from 31 August 2026.
PLAY_TARGET_API = 36
#: Android 8.0, the architecture specification's minimum (section 4.2).
MIN_API = 26


@pytest.fixture(scope="module")
def buildozer() -> Iterator[Buildozer]:
    # Buildozer reads the spec and runs its own configuration checks in its constructor
    # (it exits on an error); relative paths in the spec are relative to android/.
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ANDROID)
        yield Buildozer(str(SPEC))


@pytest.fixture(scope="module")
def config(buildozer: Buildozer) -> SpecParser:
    return buildozer.config


def spec_requirements(config: SpecParser) -> dict[NormalizedName, Requirement]:
    reqs = [Requirement(text) for text in config.getlist("app", "requirements", [])]
    return {canonicalize_name(r.name): r for r in reqs}


def pinned(req: Requirement) -> str | None:
    specs = list(req.specifier)
    return specs[0].version if len(specs) == 1 and specs[0].operator == "==" else None


def local_recipes(config: SpecParser) -> dict[NormalizedName, Path]:
    folder = ANDROID / config.get("app", "p4a.local_recipes")
    return {canonicalize_name(p.parent.name): p for p in folder.glob("*/__init__.py")}


def device_closure() -> dict[NormalizedName, set[NormalizedName]]:
    return closure(device_requirements(), stop_at=SELF_CONTAINED_RECIPES)


def test_buildozer_reads_the_spec_and_finds_no_error(buildozer: Buildozer) -> None:
    assert buildozer.config.get("app", "title") == "Tombola POS"
    assert buildozer.config.get("app", "package.name") == "tombolapos"
    assert buildozer.config.get("app", "package.domain") == "org.tombola"


def test_version_is_the_projects(buildozer: Buildozer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ANDROID)
    assert buildozer.get_version() == pyproject()["project"]["version"]


def test_requirements_cover_every_third_party_import_of_the_device_code(config: SpecParser) -> None:
    names = set(spec_requirements(config))
    uncovered = {}
    for module, files in sorted(third_party(imported_modules()).items()):
        dists = distributions_of(module)
        if not dists or not dists & names:
            uncovered[module] = (sorted(dists), sorted(files)[:3])
    assert uncovered == {}, f"imported by the device code, missing from buildozer.spec requirements: {uncovered}"


def test_requirements_name_the_recipes_of_the_standard_modules_the_device_uses(config: SpecParser) -> None:
    names = set(spec_requirements(config))
    used = set(imported_modules()) | {"ssl"}  # httpx opens https connections through ssl
    for module, recipe in STDLIB_RECIPES.items():
        if module in used:
            assert recipe in names, f"{module} needs the {recipe} recipe"
    assert "python3" in names


def test_requirements_name_the_whole_device_closure(config: SpecParser) -> None:
    # p4a installs the named pure-Python distributions with pip --no-deps when its resolver gives
    # up (any dependency without an Android wheel makes it give up), so each one is named.
    names = set(spec_requirements(config))
    missing = {
        name: sorted(parents)
        for name, parents in device_closure().items()
        if name not in names and name not in NOT_PACKAGED and not parents <= SELF_CONTAINED_RECIPES
    }
    assert missing == {}, f"needed on the device (name: asked for by), missing from requirements: {missing}"


def test_every_compiled_distribution_has_a_recipe(config: SpecParser) -> None:
    recipes = P4A_RECIPES | set(local_recipes(config))
    names = set(spec_requirements(config))
    without = sorted(
        name
        for name, parents in device_closure().items()
        if not parents <= SELF_CONTAINED_RECIPES and compiled(name) and name not in PURE_ON_ANDROID
        if name not in recipes or name not in names
    )
    assert without == [], f"compiled distributions without a named p4a recipe: {without}"


def test_pins_agree_with_the_recipes(config: SpecParser) -> None:
    reqs = spec_requirements(config)
    core = pinned(reqs[canonicalize_name("pydantic-core")])
    pydantic = pinned(reqs[canonicalize_name("pydantic")])
    assert pydantic in PYDANTIC_CORE_OF and PYDANTIC_CORE_OF[pydantic] == core
    for name, path in local_recipes(config).items():
        version = re.search(r'^\s*version = "([^"]+)"', path.read_text(encoding="utf-8"), re.MULTILINE)
        assert version and name in reqs and pinned(reqs[name]) == version.group(1), name


def test_nothing_of_the_server_is_required(config: SpecParser) -> None:
    server_only = set(closure(declared("server"))) - set(closure(device_requirements()))
    assert set(spec_requirements(config)) & server_only == set()


def test_the_app_folder_holds_main_and_the_device_packages_only(
    buildozer: Buildozer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # buildozer's own copy step, the one `buildozer android debug` runs, into a scratch build dir.
    monkeypatch.chdir(ANDROID)
    monkeypatch.setattr(buildozer, "targetname", "android")
    monkeypatch.setattr(type(buildozer), "buildozer_dir", property(lambda _self: str(tmp_path)))
    buildozer._copy_application_sources()
    app = tmp_path / "android" / "app"
    assert sorted(p.name for p in app.iterdir()) == sorted(["main.py", *DEVICE_PACKAGES])
    copied = {p.relative_to(app).as_posix() for p in app.rglob("*") if p.is_file()}
    for package in DEVICE_PACKAGES:
        sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*") if p.suffix in {".py", ".kv"}}
        assert sources <= copied, f"{package}: not copied {sorted(sources - copied)[:5]}"
    for package in SERVER_PACKAGES:
        assert not any(c.split("/")[0] == package for c in copied)


def test_api_levels(config: SpecParser) -> None:
    assert config.getint("app", "android.api") >= PLAY_TARGET_API
    assert config.getint("app", "android.minapi") == MIN_API
    assert config.getint("app", "android.ndk_api") == MIN_API
    ndk = re.fullmatch(r"(\d+)[a-z]?", config.get("app", "android.ndk"))
    assert ndk and int(ndk.group(1)) >= 28, "NDK r28+ aligns native libraries on 16 KB pages"


def parse_permission(text: str) -> dict[str, str]:
    """One ``android.permissions`` entry as python-for-android's parse_permissions reads it."""
    if text.startswith("(") and text.endswith(")"):
        props = dict(part.split("=", 1) for part in text[1:-1].split(";"))
        assert set(props) <= {"name", "maxSdkVersion", "usesPermissionFlags"}, text
        return props
    return {"name": text if "." in text else f"android.permission.{text}"}


def test_permissions(config: SpecParser) -> None:
    perms = {p["name"]: p for p in map(parse_permission, config.getlist("app", "android.permissions", []))}
    for name in ("INTERNET", "ACCESS_NETWORK_STATE", "CAMERA", "BLUETOOTH_CONNECT", "BLUETOOTH_SCAN"):
        assert f"android.permission.{name}" in perms
        assert "maxSdkVersion" not in perms[f"android.permission.{name}"]
    for legacy in ("BLUETOOTH", "BLUETOOTH_ADMIN"):
        assert perms[f"android.permission.{legacy}"].get("maxSdkVersion") == "30"


def test_python_for_android_is_pinned_to_a_16kb_page_release(config: SpecParser) -> None:
    assert config.get("app", "p4a.branch") == "master"
    assert config.get("app", "p4a.commit") == P4A_RELEASE_COMMIT
    assert not config.has_option("app", "p4a.source_dir") and not config.has_option("app", "p4a.url")
