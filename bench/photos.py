"""Real photographs for the benchmarks, from a package that ships them: scikit-image's wheel.

Generated noise does not compress, decode or scale like a photograph. scikit-image's wheel
carries a dozen real photographs in `skimage/data/` (an astronaut, a cat, coffee, a stereo
pair of a motorcycle, a rocket, the Hubble deep field, grass, gravel, brick, a greyscale
camera-man): 0.1 to 0.4 MP, PNG and JPEG, colour and greyscale. The wheel is downloaded once
from PyPI (`pip download --no-deps`, nothing installed) into ~/.cache/image-server-bench and
only these files are read out of it.
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


if __name__ == "__main__":
    for name, data in package_photos().items():
        print(f"{name}: {len(data)} bytes")
