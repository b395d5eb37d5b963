"""make gpu-kit: a folder of wheels (.gpu-kit/) for the lent GPU machine, which has python3 3.12 with torch,
transformers, peft and accelerate but no package registry and none of DeepSpeed, TRL, Hydra, datasets,
bitsandbytes. bench/gpu_check.sh installs them from it with pip --no-index --no-deps --target.

Each package at the version this venv runs (importlib.metadata): a published wheel for CPython 3.12 on manylinux
x86-64 where there is one (pure-Python or binary), else a wheel built here from its sdist (`pip wheel --no-deps`:
DeepSpeed and antlr4 publish only sdists). The kit must stay under LIMIT_MIB together with the repo (what travels
to the machine per call, 64 MiB); the last line says its size: kit_mib=… wheels=…
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent / ".gpu-kit"
LIMIT_MIB = 58          # 64 MiB per call, less the repo's tracked files and headroom
# What the GPU check imports that the machine lacks (KINDS.md's package list), with their own missing needs.
PACKAGES = ["deepspeed", "hjson", "pydantic", "pydantic-core", "annotated-types", "typing-inspection",
            "trl", "datasets", "dill", "multiprocess", "hydra-core", "omegaconf", "antlr4-python3-runtime",
            "math-verify", "latex2sympy2_extended", "bitsandbytes"]
# Not carried: transformers (13 MiB would bring the kit to the 64 MiB limit); the machine's 5.17 runs the check,
# below pyproject's 5.19 floor: gpu_check.sh prints the versions it ran with.
# The machine's python3 packages (the tool library's KINDS.md, read 2026-11-17): what the kit need not carry.
DEVICE_PACKAGES = {"absl-py", "accelerate", "aiofiles", "aiohappyeyeballs", "aiohttp", "aiosignal", "annotated-doc",
                   "anyio", "attrs", "botorch", "build", "certifi", "charset-normalizer", "chex", "click",
                   "cloudpickle", "cmake", "colorama", "contourpy", "coverage", "cuda-bindings", "cuda-core",
                   "cuda-pathfinder", "cuda-toolkit", "cupy-cuda13x", "cycler", "cython", "diffrax", "e3nn",
                   "einops", "equinox", "etils", "execnet", "filelock", "flatbuffers", "flax", "fonttools",
                   "formulaic", "frozenlist", "fsspec", "gpytorch", "grpcio", "h11", "h5py", "hf-xet", "httpcore",
                   "httpx", "huggingface-hub", "humanize", "hypothesis", "idna", "imageio", "iniconfig",
                   "interface-meta", "jax", "jax-cuda13-pjrt", "jax-cuda13-plugin", "jaxlib", "jaxtyping", "jinja2",
                   "joblib", "kiwisolver", "lazy-loader", "lightning", "lightning-utilities", "linear-operator",
                   "lineax", "llvmlite", "lxml", "markdown", "markdown-it-py", "markupsafe", "matplotlib", "mdurl",
                   "meson", "ml-dtypes", "mpi4py", "mpmath", "msgpack", "multidict", "multipledispatch",
                   "mypy-extensions", "nanobind", "narwhals", "networkx", "ninja", "numba", "numba-cuda", "numpy",
                   "numpyro", "nvidia-cublas", "nvidia-cuda-cupti", "nvidia-cuda-nvrtc", "nvidia-cuda-runtime",
                   "nvidia-cudnn-cu13", "nvidia-cufft", "nvidia-cufile", "nvidia-curand", "nvidia-cusolver",
                   "nvidia-cusparse", "nvidia-cusparselt-cu13", "nvidia-ml-py", "nvidia-nccl-cu13",
                   "nvidia-nvjitlink", "nvidia-nvshmem-cu13", "nvidia-nvtx", "onnx", "onnx-ir", "onnxruntime",
                   "onnxscript", "opencv-python-headless", "optax", "opt-einsum", "opt-einsum-fx", "optimistix",
                   "orbax-checkpoint", "packaging", "pandas", "pathspec", "patsy", "peft", "pillow", "pip", "pluggy",
                   "portalocker", "prometheus-client", "propcache", "protobuf", "psutil", "pyarrow", "pybind11",
                   "py-cpuinfo", "pygments", "pyparsing", "pyproject-hooks", "pyre-extensions", "pytest",
                   "pytest-benchmark", "pytest-cov", "pytest-mock", "pytest-timeout", "pytest-xdist",
                   "python-dateutil", "pytorch-lightning", "pyyaml", "regex", "requests", "rich", "sacrebleu",
                   "safetensors", "scikit-build-core", "scikit-image", "scikit-learn", "scipy", "seaborn",
                   "sentencepiece", "sentence-transformers", "setuptools", "shellingham", "simplejson", "six",
                   "sortedcontainers", "statsmodels", "sympy", "tabulate", "tensorboard", "tensorboard-data-server",
                   "tensorstore", "threadpoolctl", "tifffile", "tiktoken", "timm", "tokenizers", "toolz", "torch",
                   "torchaudio", "torchdiffeq", "torch-geometric", "torchmetrics", "torchvision", "tqdm",
                   "transformers", "treescope", "triton", "typer", "typing-extensions", "typing-inspect", "urllib3",
                   "uvloop", "wadler-lindig", "werkzeug", "wheel", "wrapt", "xarray", "xxhash", "yarl", "zipp"}
SDIST_ONLY = {"deepspeed", "antlr4-python3-runtime"}
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True)


def main() -> int:
    KIT.mkdir(exist_ok=True)
    for old in KIT.glob("*.whl"):
        old.unlink()
    pins = [f"{name}=={version(name)}" for name in PACKAGES]
    binary = [p for p, name in zip(pins, PACKAGES) if name not in SDIST_ONLY]
    pip("download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
        *[a for p in PLATFORMS for a in ("--platform", p)], "-d", str(KIT), *binary)
    built = [p for p, name in zip(pins, PACKAGES) if name in SDIST_ONLY]
    # DS_BUILD_OPS=0 (its default): DeepSpeed compiles its ops on first use, on the machine that runs them
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(KIT), *built)
    wheels = sorted(KIT.glob("*.whl"))
    size = sum(w.stat().st_size for w in wheels) / 2**20
    for w in wheels:
        print(f"{w.stat().st_size / 2**20:6.1f} MiB  {w.name}")
    print(f"kit_mib={size:.1f} wheels={len(wheels)} limit_mib={LIMIT_MIB}")
    return 0 if size <= LIMIT_MIB and len(wheels) == len(PACKAGES) else 1


if __name__ == "__main__":
    sys.exit(main())
