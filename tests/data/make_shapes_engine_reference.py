"""Write ``shapes_engine_reference.npz``: the pre-pipelines engine's output on the shapes model.

The pipelines' equivalence test (``tests/test_pipelines.py``) compares ``StarVidPipeline`` with
what the engine it replaced made. That engine lives at commit e497dff, so this script runs
there, on whatever weights are in its ``assets/shapes`` (one torch thread, as the test):

    git worktree add /tmp/engine e497dff
    cp -r assets/shapes/. /tmp/engine/assets/shapes/      # the weights under test
    # the pixel VAE's class moved after e497dff: keep that commit's own names for it
    git -C /tmp/engine checkout -- assets/shapes/model_index.json assets/shapes/vae
    cd /tmp/engine && PYTHONPATH=. STARVID_THREADS=1 HF_HUB_OFFLINE=1 \\
        python /path/to/tests/data/make_shapes_engine_reference.py OUT.npz --plan-from OLD.npz

The plan is read from an earlier reference (``--plan-from``) so every reference uses the same
boxes.
"""

import argparse

import numpy as np
import torch

from starvid.backbones import load_backbone
from starvid.parsing.parse import parse_prompt
from starvid.plan import Plan
from starvid.run import execute, prepare_run
from starvid.settings import GenerationSettings

PROMPT = "two red circles moving left and a blue square jumping"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--plan-from", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    plan_bytes = np.load(args.plan_from)["plan"]
    plan = Plan.model_validate_json(plan_bytes.tobytes().decode())
    bb = load_backbone("shapes", device="cpu")
    req = prepare_run(parse_prompt(PROMPT), bb, "shapes", GenerationSettings(seed=3), plan, True)
    res = execute(req, bb)
    data = {"plan": plan_bytes}
    for name, run in (("guided", res.guided), ("baseline", res.baseline)):
        data[f"{name}/frames"] = run.frames
        data[f"{name}/inbox_share"] = run.inbox_share
        data[f"{name}/inbox_share_final"] = run.inbox_share_final
        for word, m in run.maps.items():
            data[f"{name}/maps/{word}"] = m
    data["guided/loss_total"] = np.array([row["total"] for row in res.guided.losses])
    np.savez_compressed(args.out, **data)


if __name__ == "__main__":
    main()
