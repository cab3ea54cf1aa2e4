"""Make a class-folder dataset of synthetic masks from photos of faces without one.

    python make_masked_faces.py --faces dataset/observations/without_mask \\
        --faces dataset/chandrikadeb7/without_mask --output dataset_synthetic --seed 0
    python make_masked_faces.py --faces dataset/observations/without_mask --grid docs/synthetic_grid.jpg

In each photo with exactly one face, YuNet's five landmarks place a drawn
mask: worn correctly in OUTPUT/with_mask/, below the nose, off the mouth or
on the chin in OUTPUT/incorrect_mask/, and, for some faces, a hand, phone,
cup or beard over the lower face (not a mask) in OUTPUT/without_mask/.
OUTPUT/sources.jsonl names each image's source photo and its sha256, so a
split can keep every image made from a face on the same side as that face.
The same --seed and photos make the same files. Images this script wrote
earlier into OUTPUT are replaced; any other file there stops it.
"""

from mask_detector.cli import at_least, new_parser
from mask_detector.errors import run_cli
from mask_detector.synthetic.dataset import Settings, make_masked_faces


def parse_args(argv):
    parser = new_parser(__doc__)
    parser.add_argument("--faces", action="append", required=True,
                        help="a folder of photos of unmasked faces, or one photo; repeat for more")
    parser.add_argument("-o", "--output", help="the dataset folder to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: %(default)s)")
    parser.add_argument("--per-face-correct", type=at_least(0.0, float), default=1.0,
                        help="images with a mask worn correctly per face (fractions: on average)")
    parser.add_argument("--per-face-incorrect", type=at_least(0.0, float), default=1.0,
                        help="images with a mask worn wrongly per face")
    parser.add_argument("--per-face-negative", type=at_least(0.0, float), default=0.3,
                        help="images with a hand, phone, cup or beard (no mask) per face")
    parser.add_argument("--per-face-touched", type=at_least(0.0, float), default=0.2,
                        help="images with a mask worn correctly and a hand touching it per face (and half as many "
                             "with a mask worn wrongly)")
    # Turned faces with no mask, as masked ones are turned, so that turning is no sign of a mask or of none.
    parser.add_argument("--per-face-turned-bare", type=at_least(0.0, float), default=0.3,
                        help="images of the face turned, with nothing drawn (no mask), per face")
    parser.add_argument("--max-faces", type=at_least(1), help="stop after this many faces")
    parser.add_argument("--grid", help="instead, write a picture of what the engine draws (a JPEG) here")
    args = parser.parse_args(argv)
    if not args.grid and not args.output:
        parser.error("give --output (or --grid)")
    return args


def main(argv=None):
    args = parse_args(argv)
    settings = Settings(
        faces=tuple(args.faces),
        output=args.output,
        grid=args.grid,
        seed=args.seed,
        per_face_correct=args.per_face_correct,
        per_face_incorrect=args.per_face_incorrect,
        per_face_negative=args.per_face_negative,
        per_face_touched=args.per_face_touched,
        per_face_turned_bare=args.per_face_turned_bare,
        max_faces=args.max_faces,
    )
    make_masked_faces(settings)
    return 0


if __name__ == "__main__":
    run_cli(main)
