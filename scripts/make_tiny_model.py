"""Build the offline tiny Qwen2 model + tokenizer that tests and the demo use.

    python scripts/make_tiny_model.py --size demo --out .cache/models/demo-qwen2
"""

import argparse

from s1.tiny_model import SIZES, build_tiny_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="tiny", help="tiny: unit tests; demo: make demo")
    p.add_argument("--out", required=True, help="output folder (replaced if present)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and tokenizer corpus")
    args = p.parse_args()
    path = build_tiny_model(args.out, size=args.size, seed=args.seed)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
