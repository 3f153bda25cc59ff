"""Real photographs for the benchmarks, from packages that ship them.

Generated noise does not compress, decode or scale like a photograph.
- `package_photos`: scikit-image's wheel carries a dozen real photographs in `skimage/data/` (an
  astronaut, a cat, coffee, a stereo pair of a motorcycle, a rocket, the Hubble deep field,
  grass, gravel, brick, a greyscale camera-man): 0.1 to 0.4 MP, PNG and JPEG, colour and
  greyscale. Downloaded once from PyPI (`pip download --no-deps`, nothing installed).
- `wallpaper_photos`: Debian's `plasma-workspace-wallpapers` ships KDE's wallpapers, among them
  photographs (autumn leaves, a lake, water, cups, a sunset, a path...): ten at 2560x1600 (4.1 MP)
  and one at 5120x2880 (14.7 MP), JPEG. Downloaded once with `apt-get download` (nothing installed) and only these
  files read out of it.
Both are kept in ~/.cache/image-server-bench.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

CACHE = Path.home() / ".cache" / "image-server-bench"
PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "camera.png",
    "grass.png",
    "gravel.png",
    "brick.png",
)


def package_photos() -> dict[str, bytes]:
    """The photographs by name, downloading scikit-image's wheel the first time."""
    wheels = sorted(CACHE.glob("scikit_image-*.whl"))
    if not wheels:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
                str(CACHE),
                "scikit-image",
            ],
            check=True,
        )
        wheels = sorted(CACHE.glob("scikit_image-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        return {name: wheel.read(f"skimage/data/{name}") for name in PHOTOS}


# (wallpaper, size): the photographs among the package's wallpapers (its smaller sizes are links
# to the largest, so each is taken once, at its largest).
WALLPAPERS = (
    *(
        (name, "2560x1600")
        for name in (
            "Autumn",
            "BytheWater",
            "ColdRipple",
            "ColorfulCups",
            "EveningGlow",
            "FallenLeaf",
            "Kite",
            "OneStandsOut",
            "Path",
            "summer_1am",
        )
    ),
    ("SafeLanding", "5120x2880"),
)


def wallpaper_photos() -> dict[str, bytes]:
    """The photographs among Debian's plasma-workspace-wallpapers, by `name-size.jpg`."""
    debs = sorted(CACHE.glob("plasma-workspace-wallpapers_*.deb"))
    if not debs:
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "plasma-workspace-wallpapers"], cwd=CACHE, check=True)
        debs = sorted(CACHE.glob("plasma-workspace-wallpapers_*.deb"))
    tree = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[-1])], capture_output=True, check=True).stdout
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(tree)) as archive:
        return {
            f"{name}-{size}.jpg": archive.extractfile(  # type: ignore[union-attr]
                f"./usr/share/wallpapers/{name}/contents/images/{size}.jpg"
            ).read()
            for name, size in WALLPAPERS
        }


if __name__ == "__main__":
    for name, data in (package_photos() | wallpaper_photos()).items():
        print(f"{name}: {len(data)} bytes")
