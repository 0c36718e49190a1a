"""Gather the human-labelled 300-W training faces under one folder of links, and the held-out part beside it.

    python scripts/make_human_split.py ../shared/data/300w work/human68 work/human68_val

`work/human68/{afw,helen,lfpw}` links every image and `.pts` of AFW (337), HELEN train (870) and LFPW train (805);
`work/human68_val/...` links only the validation identities (facemark.labels.cache.is_validation_identity at 10%, the
split `facemark cache --val-fraction 0.1` makes): 54 AFW, 94 HELEN and 86 LFPW faces, which no model trained on.
LFPW's files are named `image_0001.jpg`; `identity_of` would read them all as one person ("image"), so their
links are named `lfpw0001.jpg` (each photo its own identity, as AFW's and HELEN's image ids are).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from facemark.labels.cache import identity_of, is_validation_identity

SETS = {"afw": "afw", "helen": "helen_train", "lfpw": "lfpw_train"}


def link_name(set_name: str, file: Path) -> str:
    return "lfpw" + file.name.removeprefix("image_") if set_name == "lfpw" else file.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="the 300-W folder (afw/, helen_train/, lfpw_train/)")
    parser.add_argument("all", help="folder for every face")
    parser.add_argument("heldout", help="folder for the held-out faces")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    args = parser.parse_args()
    counts = {}
    for set_name, folder in SETS.items():
        for out in (Path(args.all) / set_name, Path(args.heldout) / set_name):
            out.mkdir(parents=True, exist_ok=True)
        for file in sorted((Path(args.source) / folder).iterdir()):
            name = link_name(set_name, file)
            targets = [Path(args.all) / set_name / name]
            if is_validation_identity(identity_of(Path(name).stem + ".jpg"), args.val_fraction):
                targets.append(Path(args.heldout) / set_name / name)
                counts[set_name] = counts.get(set_name, 0) + (file.suffix == ".pts")
            for target in targets:
                if not target.exists():
                    os.symlink(file.resolve(), target)
    print(f"held out: {counts} -> {args.heldout}; everything -> {args.all}")


if __name__ == "__main__":
    main()
