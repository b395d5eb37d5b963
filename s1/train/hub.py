"""Push the trained model to the hub: train.push_to_hub=true, train.hub_model_id=owner/name.

The token comes from HF_TOKEN in the environment and is never logged or written; the repo is created private
unless train.hub_private=false. HF_ENDPOINT points huggingface_hub at another hub (the tests: a local stand-in).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("s1")


def push_model(folder: Path, repo_id: str, private: bool = True) -> dict:
    """Create the repo (kept if it exists) and upload `folder` as one commit; returns the repo's URL and commit."""
    from huggingface_hub import HfApi

    api = HfApi(token=os.environ["HF_TOKEN"])
    url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                               commit_message="s1: trained model")
    log.info("pushed %s to %s (%s, commit %s)", folder, url, "private" if private else "public", commit.oid)
    return {"repo": repo_id, "url": str(url), "private": private, "commit": commit.oid}
