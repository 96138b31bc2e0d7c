"""python-for-android recipe for orjson (a Rust extension built with maturin, like pydantic-core).

python-for-android has no orjson recipe (kivy/python-for-android issue 3001); this local one
follows the upstream pydantic-core recipe, whose build (RustCompiledComponentsRecipe: rustup
target, NDK clang as the cargo linker, PyO3 cross-compiling against the target Python) fits any
PyO3/maturin project. buildozer.spec points ``p4a.local_recipes`` here. It has not been built:
the Android SDK and NDK cannot be fetched on the machine this was written on (docs/android.md).
"""

from pythonforandroid.recipe import RustCompiledComponentsRecipe


class OrjsonRecipe(RustCompiledComponentsRecipe):
    name = "orjson"
    # The desktop tests run this release; keep the two equal (buildozer.spec pins orjson==3.13.0).
    version = "3.13.0"
    url = "https://github.com/ijl/orjson/archive/refs/tags/{version}.tar.gz"
    site_packages_name = "orjson"


recipe = OrjsonRecipe()
