"""The preflight: what each stage's job needs from the machines, checked on the submitting node before anything is
queued (what stage_checks.stage_needs lists per stage). One line per failure, naming the key, the value and the fix:

- the job's interpreter exists and imports torch built with CUDA (`torch.version.cuda`) where the job asks for GPUs,
  and vLLM / DeepSpeed where the stage's settings use them (run through cluster.setup, as the job will);
- the LLM endpoint the curation judge and domain labels use answers (curate.traces.base_url);
- a hub token where a gated data set is read (GPQA Diamond);
- every hub model and data set is either in the local hub cache (HF_HOME, `make prefetch`) or the hub answers;
- the stage's time limit is at least its estimate (a warning: estimates are rough).

cluster.dry_run=true reports every failure and exits non-zero; a real submission refuses unless cluster.preflight=warn.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from s1.cluster.checks import parse_slurm_time, stage_time
from s1.cluster.render import python_path
from s1.errors import ConfigError
from s1.stage_checks import stage_needs

PROBE = """import json
out = {}
try:
    import torch
    out["torch"], out["cuda"] = torch.__version__, torch.version.cuda
except Exception as e:
    out["torch_error"] = repr(e)[:200]
for name in ("vllm", "deepspeed"):
    try:
        out[name] = __import__(name).__version__
    except Exception as e:
        out[name + "_error"] = repr(e)[:200]
print("S1_PROBE " + json.dumps(out))
"""
PROBE_TIMEOUT_S = float(os.environ.get("S1_PROBE_TIMEOUT_S", "180"))   # importing vLLM takes tens of seconds
HUB_TIMEOUT_S = float(os.environ.get("S1_HUB_TIMEOUT_S", "10"))
GPU_ENV_FIX = ("build the jobs' venv with `make gpu-env` (.venv-gpu, used when cluster.python is null), or point "
               "cluster.python (and cluster.setup: module load / conda activate) at one with CUDA torch and vLLM")
JUDGE_ALTERNATIVES = ("set curate.traces.base_url (+ curate.traces.model, curate.traces.api_key_env) to an "
                      "OpenAI-compatible endpoint (the paper: Claude 3.5 Sonnet); or serve a model in the job with "
                      "curate.traces.serve_model=<dir> curate.traces.serve_backend=vllm; or do without a judge (not "
                      "the paper's): curate.difficulty.grader=math_verify curate.domains.method=labels")


class PreflightFailed(ConfigError):
    """Every failed check, one line each; a ConfigError, so each entry point reports it and submits nothing."""

    def __init__(self, failures: list[str]):
        self.failures = failures
        self.key, self.value = "cluster.preflight", "fail"
        self.fix = "fix the lines above, or submit anyway with cluster.preflight=warn"
        Exception.__init__(self, "\n".join(failures) + f"\n{len(failures)} preflight failure(s); " + self.fix)


def line(key: str, value, fix: str) -> str:
    return f"preflight: {key}={value!r}: {fix}"


def probe_python(python: str, setup: list[str], cache: dict) -> dict:
    """What the job's interpreter imports, run after the job's setup lines (as the job runs them)."""
    ident = (python, tuple(setup))
    if ident not in cache:
        script = "\n".join(["set -eo pipefail", *setup, '"$S1_PROBE_PYTHON" -c "$S1_PROBE_CODE"'])
        env = {**os.environ, "S1_PROBE_PYTHON": python, "S1_PROBE_CODE": PROBE}
        try:
            proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                                  env=env, check=False)
            found = [x for x in proc.stdout.splitlines() if x.startswith("S1_PROBE ")]
            cache[ident] = json.loads(found[-1][9:]) if found else {
                "error": f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-200:]}"}
        except subprocess.TimeoutExpired:
            cache[ident] = {"error": f"no answer in {PROBE_TIMEOUT_S:g} s"}
    return cache[ident]


def check_interpreter(cfg: DictConfig, asks: dict[str, list[str]], cache: dict) -> list[str]:
    """`asks`: what the jobs need from their interpreter -> the stages (and keys) that need it."""
    if not asks:
        return []
    python = python_path(cfg)
    stages = dict.fromkeys(s for k, v in asks.items() if not k.endswith(":keys") for s in v)
    where = (f"the {', '.join(stages)} jobs'" if len(stages) > 1 else f"the {next(iter(stages))} job's") + " interpreter"
    found = probe_python(python, list(cfg.cluster.setup), cache)
    if "error" in found:
        return [line("cluster.python", python, f"{where} does not run: {found['error']}; {GPU_ENV_FIX}")]
    if "torch" not in found:
        return [line("cluster.python", python, f"{where} cannot import torch ({found.get('torch_error')}); "
                     + GPU_ENV_FIX)]
    out = []
    if "cuda" in asks and not found.get("cuda"):
        out.append(line("cluster.python", python, f"{where} has torch {found['torch']} built without CUDA "
                        f"(torch.version.cuda is None) and the jobs ask for cluster.gpus_per_node="
                        f"{cfg.cluster.gpus_per_node} GPUs; {GPU_ENV_FIX}"))
    for module in ("vllm", "deepspeed"):
        if module in asks and module not in found:
            out.append(line("cluster.python", python, f"{where} cannot import {module} "
                            f"({found.get(module + '_error')}), which {', '.join(asks[module + ':keys'])} need; "
                            + GPU_ENV_FIX))
    return out


def post_json(url: str, body: dict, headers: dict, timeout: float) -> tuple[int, str]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(300).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read(300).decode(errors="replace")


def check_endpoint(cfg: DictConfig, prefix: str, used_by: list[str], cache: dict) -> list[str]:
    """One tiny chat completion (max_tokens 1) to the endpoint at <prefix>.base_url."""
    block = cfg.curate.traces if prefix == "curate.traces" else cfg.eval
    url, model = block.base_url, block.get("model", "") if prefix == "curate.traces" else cfg.eval.model_path
    why = ", ".join(used_by)
    alternatives = JUDGE_ALTERNATIVES if prefix == "curate.traces" else "set eval.base_url, or use eval.backend=vllm"
    if not url:
        return [line(f"{prefix}.base_url", url, f"{why} need an LLM endpoint and none is set; {alternatives}")]
    if prefix == "curate.traces" and not model:
        return [line("curate.traces.model", model, f"{why} need a model name for {url}; e.g. "
                     "curate.traces.model=claude-3-5-sonnet-20241022")]
    headers = {}
    if block.api_key_env:
        if not os.environ.get(block.api_key_env):
            return [line(f"{prefix}.api_key_env", block.api_key_env, f"export {block.api_key_env}=<key> before "
                         "submitting (the jobs inherit it), or set the variable that holds your key")]
        headers["Authorization"] = f"Bearer {os.environ[block.api_key_env]}"
    if (url, model) not in cache:
        try:
            status, text = post_json(url.rstrip("/") + "/chat/completions",
                                     {"model": model, "max_tokens": 1,
                                      "messages": [{"role": "user", "content": "Reply with Yes."}]},
                                     headers, HUB_TIMEOUT_S * 3)
            cache[(url, model)] = None if status == 200 else f"HTTP {status}: {text.strip()[:120]}"
        except Exception as e:  # noqa: BLE001  (refused, DNS, timeout: all mean "does not answer")
            cache[(url, model)] = f"no answer ({type(e).__name__}: {str(e)[:120]})"
    if cache[(url, model)]:
        return [line(f"{prefix}.base_url", url, f"{why} need this endpoint and it failed a one-token request "
                     f"({cache[(url, model)]}); fix the URL, model or key, or: {alternatives}")]
    return []


def hub_token() -> str | None:
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # noqa: BLE001
        return os.environ.get("HF_TOKEN")


def hub_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def in_hub_cache(repo_id: str, kind: str) -> bool:
    snapshots = hub_cache() / f"{kind}s--{repo_id.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_answers(cache: dict) -> str | None:
    """None when the hub answers an HTTP request from this node, else why not."""
    if "hub" not in cache:
        try:
            with urllib.request.urlopen(hub_endpoint() + "/api/whoami-v2", timeout=HUB_TIMEOUT_S):
                cache["hub"] = None
        except urllib.error.HTTPError:
            cache["hub"] = None   # 401 without a token: it answered
        except Exception as e:  # noqa: BLE001
            cache["hub"] = f"{type(e).__name__}: {str(e)[:100]}"
    return cache["hub"]


def check_hub(cfg: DictConfig, stage: str, needs, cache: dict) -> list[str]:
    out = []
    gated = sorted({(key, ds) for key, ds in needs.gated})
    if gated and not hub_token():
        for key, ds in gated:
            out.append(line(key, ds, f"the gated data set {ds} ({stage}) needs a hub token: accept its terms on the "
                            "hub, then `export HF_TOKEN=...` or `hf auth login`; or put gpqa_diamond.csv in "
                            f"paths.benchmarks_dir={cfg.paths.benchmarks_dir} (then no token is needed)"))
    reported = cache.setdefault("reported", set())
    missing = [(key, repo, kind) for key, repo, kind in needs.hub if not in_hub_cache(repo, kind) and repo not in reported]
    reported.update(repo for _, repo, _ in missing)   # a repo two stages read: one line
    if not missing:
        return out
    prefetch = 'make prefetch ARGS="<the same overrides>" on a node with internet (HF_HOME on a shared filesystem)'
    if cfg.run.offline or os.environ.get("HF_HUB_OFFLINE") == "1":
        for key, repo, kind in missing:
            out.append(line(key, repo, f"the {stage} job runs offline (run.offline=true or HF_HUB_OFFLINE=1) and this "
                            f"{kind} is not in the hub cache ({hub_cache()}): run {prefetch}, or give a local path"))
    elif why := hub_answers(cache):
        key, repo, _ = missing[0]
        names = ", ".join(sorted({r for _, r, _ in missing}))
        out.append(line(key, repo, f"the hub ({hub_endpoint()}) does not answer from this node ({why}) and the "
                        f"{stage} job reads {names}: run {prefetch} then add run.offline=true, or give local paths "
                        f"for {', '.join(sorted({k for k, _, _ in missing}))}"))
    return out


def check_time(cfg: DictConfig, stage: str, needs) -> list[str]:
    if needs.estimate is None:
        return []
    seconds, how = needs.estimate
    limit = parse_slurm_time(stage_time(cfg.cluster, stage))
    if limit == 0 or limit >= seconds:
        return []
    key = f"cluster.stage_time.{stage}" if cfg.cluster.stage_time[stage] else "cluster.time"
    return [f"preflight warning: {key}={stage_time(cfg.cluster, stage)!r}: the {stage} job is estimated at "
            f"{seconds / 3600:.1f} h ({how}); it requeues itself at the limit and resumes, but a longer limit "
            f"wastes less (e.g. {key}={max(1, round(seconds / 3600 * 1.5))}:00:00)"]


def preflight(cfgs: dict[str, DictConfig], stages: list[str], upstream: tuple[str, ...] = ()
              ) -> tuple[list[str], list[str]]:
    """(failures, warnings) for the stages about to be submitted in this order, after `upstream`."""
    failures, warnings, cache, asks = [], [], {}, {}
    stages = [s for s in stages if cfgs[s].cluster.preflight != "off"]
    for i, stage in enumerate(stages):
        cfg = cfgs[stage]
        needs = stage_needs(cfg, stage, (*upstream, *stages[:i]))
        if needs.cuda:
            asks.setdefault("cuda", []).append(stage)
        for key, module in needs.modules:
            asks.setdefault(module, []).append(stage)
            asks.setdefault(module + ":keys", []).append(f"{key}={OmegaConf.select(cfg, key)}")
        for prefix in dict.fromkeys(p for p, _ in needs.endpoints):
            failures += check_endpoint(cfg, prefix, [k for p, k in needs.endpoints if p == prefix], cache)
        failures += check_hub(cfg, stage, needs, cache)
        warnings += check_time(cfg, stage, needs)
    if stages:   # one interpreter for every job (cluster.python / cluster.setup are shared): checked once
        failures = check_interpreter(cfgs[stages[0]], asks, cache) + failures
    return list(dict.fromkeys(failures)), list(dict.fromkeys(warnings))


def run_preflight(cfgs: dict[str, DictConfig], stages: list[str], upstream: tuple[str, ...] = ()) -> None:
    """Print warnings; raise PreflightFailed on failures (a dry run reports them too), unless cluster.preflight=warn."""
    failures, warnings = preflight(cfgs, stages, upstream)
    for w in warnings:
        print(w)
    mode = cfgs[stages[0]].cluster.preflight
    if failures and (mode == "fail" or cfgs[stages[0]].cluster.dry_run):
        raise PreflightFailed(failures)
    for f in failures:   # cluster.preflight=warn: submitted anyway
        print(f.replace("preflight:", "preflight (cluster.preflight=warn, submitting anyway):", 1))
