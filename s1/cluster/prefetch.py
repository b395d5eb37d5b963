"""make prefetch ARGS="experiment=paper_s1": every hub model and data set the experiment's stages read, downloaded into
the hub cache (HF_HOME) here, on a login node with internet, so that jobs on compute nodes without it run offline
(add run.offline=true: HF_HUB_OFFLINE=1 in the jobs, and the preflight checks that everything is in the cache).

    python -m s1.cluster.prefetch --plan experiment=paper_s1    # what it would download, and about how much
    python -m s1.cluster.prefetch experiment=paper_s1           # download (skips what the cache holds)

The list is the preflight's (s1/stage_checks.py stage_needs): models as safetensors + tokenizer + config files,
data sets as their files and the load_dataset cache the stage reads.
"""

from __future__ import annotations

import os
import sys

from s1.cluster.pipeline import compose_stage, explain_errors, pipeline_stages
from s1.cluster.preflight import hub_cache, in_hub_cache
from s1.runtime import check_overrides
from s1.stage_checks import stage_needs
from s1.train.memory import KNOWN_MODELS

MODEL_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "tokenizer*"]   # no .bin / .pth duplicates


def plan(overrides: list[str]) -> list[dict]:
    """One entry per hub repo: id, kind, the keys naming it, the load_dataset arguments, size estimate, cached."""
    cfgs = {stage: compose_stage(stage, overrides) for stage in ("curate", "train", "eval")}
    stages = pipeline_stages(cfgs)
    repos: dict[str, dict] = {}
    for i, stage in enumerate(stages):
        needs = stage_needs(cfgs[stage], stage, tuple(stages[:i]))
        for key, repo, kind in needs.hub:
            entry = repos.setdefault(repo, {"repo": repo, "kind": kind, "keys": [], "load_args": None,
                                            "bytes": None, "cached": in_hub_cache(repo, kind)})
            entry["keys"].append(f"{stage}: {key}")
            if repo in needs.load_args:
                entry["load_args"] = needs.load_args[repo]
            if kind == "model" and repo in KNOWN_MODELS:
                entry["bytes"] = KNOWN_MODELS[repo].params * 2   # bfloat16 safetensors
    return list(repos.values())


def hub_size(entry: dict) -> int | None:
    """Bytes of the repo's files, from the hub; None offline or on any error (the plan still prints)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return None
    try:
        from huggingface_hub import HfApi

        api = HfApi()
        info = (api.model_info if entry["kind"] == "model" else api.dataset_info)(entry["repo"], files_metadata=True,
                                                                                   timeout=10)
        return sum(f.size or 0 for f in info.siblings or [])
    except Exception:  # noqa: BLE001  (offline, gated without a token, hub down)
        return None


def describe(entry: dict) -> str:
    if entry["bytes"]:
        size = f"~{entry['bytes'] / 1e9:.1f} GB" + (" (hub)" if entry.get("from_hub") else " (parameters x 2 bytes)")
    else:
        size = "size unknown (no hub answer)"
    state = "in the cache" if entry["cached"] else "to download"
    return f"{entry['kind']:7} {entry['repo']}: {size}, {state}; read by {', '.join(entry['keys'])}"


def download(entry: dict) -> None:
    import datasets
    from huggingface_hub import snapshot_download

    if entry["kind"] == "model":
        snapshot_download(entry["repo"], allow_patterns=MODEL_FILES)
        return
    args = {k: v for k, v in (entry["load_args"] or {}).items() if v is not None}
    snapshot_download(entry["repo"], repo_type="dataset", revision=args.get("revision"),
                      allow_patterns=args.get("data_files"))
    datasets.load_dataset(entry["repo"], **args)   # the stage's own call: its cache holds the prepared split too


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    only_plan = "--plan" in args
    overrides = [a for a in args if a != "--plan"]

    def run() -> int:
        check_overrides(overrides)
        entries = plan(overrides)
        for e in entries:
            if not e["cached"] and (size := hub_size(e)):
                e["bytes"], e["from_hub"] = size, True
        print(f"hub cache: {hub_cache()} (HF_HOME={os.environ.get('HF_HOME', 'unset: ~/.cache/huggingface')})")
        for e in entries:
            print(describe(e))
        todo = [e for e in entries if not e["cached"]]
        known = sum(e["bytes"] or 0 for e in todo)
        unknown = sum(1 for e in todo if not e["bytes"])
        print(f"{len(todo)} of {len(entries)} to download: ~{known / 1e9:.0f} GB"
              + (f" and {unknown} of unknown size" if unknown else ""))
        if only_plan or not todo:
            print("nothing downloaded" + (" (--plan)" if only_plan else ": everything is in the cache"))
            return 0
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            print("HF_HUB_OFFLINE=1 here: unset it to download (this step needs the hub)", file=sys.stderr)
            return 2
        for e in todo:
            print(f"downloading {e['repo']}", flush=True)
            download(e)
        print("done: submit with run.offline=true (the jobs then set HF_HUB_OFFLINE=1 and read this cache)")
        return 0

    return explain_errors(run)


if __name__ == "__main__":
    sys.exit(main())
