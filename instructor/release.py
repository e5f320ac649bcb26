#!/usr/bin/env python3
"""Builds the student kit: everything but the instructor material, as a folder and a zip.

    python instructor/release.py --out build/release [--zip]

The release has no instructor/ folder (reference solution, grader, these tools); its notebook,
student stubs, tests and helpers are the kit's as committed. Its own test command (`make test`,
bootstrap.py's test job) runs the test folders it holds, tests/kit; the student tests fail there
with the stubs, as they should, until the students fill them in.
"""

import argparse
import shutil
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from files import atomic_output  # noqa: E402
from instructor import kit  # noqa: E402


def build_release(out_dir, make_zip=False):
    """Writes the student kit into out_dir/microkws (and out_dir/microkws.zip); returns the folder."""
    out_dir = Path(out_dir)
    folder = out_dir / "microkws"
    if folder.exists():
        shutil.rmtree(folder)
    kit.copy_kit(folder)
    if make_zip:
        with atomic_output(out_dir / "microkws.zip") as handle, zipfile.ZipFile(
                handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, Path("microkws") / path.relative_to(folder))
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=kit.ROOT / "build" / "release")
    parser.add_argument("--zip", action="store_true", help="also write microkws.zip")
    args = parser.parse_args(argv)
    folder = build_release(args.out, args.zip)
    print(f"Student kit in {folder}" + (f" and {args.out / 'microkws.zip'}" if args.zip else ""))


if __name__ == "__main__":
    main()
