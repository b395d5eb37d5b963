"""`python -m s1.lm_eval <lm_eval arguments>` (or `s1-lm-eval ...`): the harness's own CLI with `--model s1` registered."""

from __future__ import annotations


def main() -> None:
    from lm_eval.__main__ import cli_evaluate

    import s1.lm_eval  # noqa: F401  registers --model s1

    cli_evaluate()


if __name__ == "__main__":
    main()
