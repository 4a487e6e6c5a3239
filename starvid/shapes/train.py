"""Train the shapes model: ``python -m starvid.shapes.train [--steps N] [--max-minutes M] ...``.

Each step draws a fresh batch of world videos (seeded by the step, so a resumed run continues the
same stream), adds noise with a DDPM schedule and regresses the clean latents (x0, by default;
weighted like a velocity loss, ``1/(1 - alpha_bar)``, clipped at ``--max-weight``) or the
velocity (``--prediction v_prediction``). An
auxiliary loss pulls the cross-attention of each caption's colour and noun tokens (by default)
into the masks of that word's objects, on every spatial cross-attention layer (``attn2``): the
maps come from ``starvid.attention``'s recording processor with gradients kept. Without it, noun
maps of a briefly trained small model do not localize, and StarVid's guidance has nothing to
steer.

State: the full training state (raw weights, EMA weights, AdamW moments, step) is written to
``--state`` (default ``runs/shapes/state.safetensors``, not in git) and the EMA weights, in the
diffusers folder layout, to ``--out`` (default ``assets/shapes``, fp16, a few MB, in git), every
``--save-minutes`` and at the end (also on SIGTERM / Ctrl-C). A run resumes from ``--state`` when
it exists, else warm-starts from the weights in ``--out`` (fresh optimizer), else starts from
scratch. Loss goes to ``<out>/train_log.jsonl`` and a sample grid (rows: captions; columns:
frames) to ``<out>/samples.png`` every ``--sample-every`` steps, with the scorer's verdict on
those samples logged next to the loss.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor
from safetensors.torch import load_file

from starvid.attention import (
    AttentionStore,
    RecordingAttnProcessor,
    install_recorders,
    select_layers,
)
from starvid.errors import StarVidError
from starvid.shapes import model as M
from starvid.shapes.losses import (
    aux_loss,
    denoising_loss,
    drift_loss,
    learning_rate,
    sample_timesteps,
    temporal_loss,
)
from starvid.shapes.monitor import MAX_WORDS, append_jsonl, write_preview
from starvid.shapes.world import MOTIONS, VOCAB, WorldConfig, sample_scene

AUX_ROLES = ("color", "noun")


# -- batches ----------------------------------------------------------------------------------


def make_batch(
    seeds: list[int], world: WorldConfig, roles=AUX_ROLES, drop: list[bool] | None = None
):
    """World videos for `seeds` as training tensors.

    Returns (latents ``(b, C, f, h, w)``, captions, aux targets ``(b, P, f, H, W)`` float masks
    of each recorded token position (zero where that token has no target), aux weights
    ``(b, P)``). `drop[i]` replaces sample i's caption by "" (classifier-free guidance) and
    clears its targets.
    """
    samples = [sample_scene(s, world) for s in seeds]
    b, f, size = len(samples), world.frames, world.size
    targets = np.zeros((b, MAX_WORDS, f, size, size), dtype=np.float32)
    weights = np.zeros((b, MAX_WORDS), dtype=np.float32)
    captions = []
    for i, s in enumerate(samples):
        if drop is not None and drop[i]:
            captions.append("")
            continue
        captions.append(s.caption)
        gm = s.group_masks()
        for w in s.words:
            if w.role in roles and w.index < MAX_WORDS:
                targets[i, w.index] = gm[w.group]
                weights[i, w.index] = 1.0
    video = np.stack([s.video for s in samples])
    return M.video_to_latents(video), captions, torch.from_numpy(targets), torch.from_numpy(weights)


def set_fast_attention(unet) -> None:
    """Plain matmul-softmax attention where nothing is recorded.

    On the CPU, for this model's short sequences (64 pixels, 8 frames) the explicit attention in
    bf16 costs less than the fused SDPA kernel (``benchmarks/train_throughput.py``).
    """
    plain = AttnProcessor()
    unet.set_attn_processor(
        {
            name: proc if isinstance(proc, RecordingAttnProcessor) else plain
            for name, proc in unet.attn_processors.items()
        }
    )


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Set every dropout layer's rate (diffusers' temporal convolutions hard-code 0.1)."""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = p


# -- state ------------------------------------------------------------------------------------


class Trainer:
    """Model, EMA copy, optimizer and the step counter, with save and resume."""

    def __init__(self, args):
        self.args = args
        self.device = torch.device(args.device)
        self.out = Path(args.out)
        self.state_path = Path(args.state)
        self.world = WorldConfig(
            size=32,
            frames=8,
            max_kinds=args.max_kinds,
            kind_weights=args.kind_weights,
            count_weights=args.count_weights,
            motion_weights=args.motion_weights,
        )
        self.step = 0
        self.started = time.time()
        if self.state_path.is_file() and not args.from_scratch:
            self._build_from(self.out if (self.out / "training.json").is_file() else None)
            self._load_state()
            self.resumed = f"state {self.state_path} (step {self.step})"
        elif (self.out / "unet" / "config.json").is_file() and not args.from_scratch:
            self._build_from(self.out)
            self.step = int(M.read_training_info(self.out).get("step", 0))
            self.resumed = f"weights in {self.out} (step {self.step}, fresh optimizer)"
        else:
            self._build_from(None)
            self.resumed = "scratch"
        self.ema_unet.requires_grad_(False)
        self.ema_text.requires_grad_(False)
        self.alphas = M.build_train_scheduler().alphas_cumprod.to(self.device)

    def _build_from(self, folder: Path | None) -> None:
        if folder is None:
            torch.manual_seed(self.args.seed)  # a from-scratch run starts from the same weights
            self.cfg = M.ShapesModelConfig(
                channels=tuple(self.args.channels),
                prediction=self.args.prediction,
                frame_positions=self.args.frame_positions,
            )
            self.tokenizer = M.write_tokenizer(self.out / "tokenizer")
            self.unet = M.build_unet(self.cfg)
            self.text = M.build_text_encoder(self.tokenizer, self.cfg)
        else:
            self.unet, self.text, self.tokenizer, self.cfg = M.load_parts(folder)
        if self.cfg.prediction != self.args.prediction:
            # Warm start across objectives: the features and the text encoder carry over, the
            # output layer relearns what it predicts.
            print(f"switching prediction {self.cfg.prediction} -> {self.args.prediction}")
            self.cfg = replace(self.cfg, prediction=self.args.prediction)
        if self.args.frame_positions and not self.cfg.frame_positions:
            # Warm start with frame positions added: no new weights, the temporal attention
            # learns to read them.
            print("adding sinusoidal frame positions to the temporal attention")
            self.cfg = replace(self.cfg, frame_positions=True)
            M.add_frame_positions(self.unet)
        self.ema_unet = M.build_unet(self.cfg)
        self.ema_unet.load_state_dict(self.unet.state_dict())
        self.ema_text = M.build_text_encoder(self.tokenizer, self.cfg)
        self.ema_text.load_state_dict(self.text.state_dict())
        for m in (self.unet, self.text, self.ema_unet, self.ema_text):
            m.to(self.device)
        self.params = list(self.unet.parameters()) + list(self.text.parameters())
        self.opt = torch.optim.AdamW(self.params, lr=self.args.lr, weight_decay=0.01)

    def _named_state(self) -> dict[str, torch.Tensor]:
        sd = {}
        for prefix, m in (
            ("unet.", self.unet),
            ("text.", self.text),
            ("ema_unet.", self.ema_unet),
            ("ema_text.", self.ema_text),
        ):
            sd.update({prefix + k: v for k, v in m.state_dict().items()})
        names = {id(p): n for n, p in self._param_names()}
        for p, st in self.opt.state.items():
            for k in ("exp_avg", "exp_avg_sq"):
                sd[f"adam.{k}.{names[id(p)]}"] = st[k]
        sd["step"] = torch.tensor(self.step)
        return sd

    @torch.no_grad()
    def split_tokens(self, pairs: list[tuple[str, str]], seed: int = 0) -> dict:
        """Set each pair's input embeddings to their mean plus and minus one random direction,
        as far apart as two typical distinct world words; the live and EMA encoders alike.

        Why: the jointly trained encoder can let two opposite words collapse onto one embedding
        ("left" and "right" at cosine 0.93 in round 7) when the U-Net has not yet used their
        difference; after that nothing separates them again, and the U-Net cannot learn a sign
        it is never told. Returns what was done, for the training log.
        """
        gen = torch.Generator("cpu").manual_seed(seed)
        emb = self.text.get_input_embeddings().weight
        ids = {w: self.tokenizer.convert_tokens_to_ids(w + "</w>") for w in VOCAB}
        world = emb[list(ids.values())].float()
        distance = float(torch.pdist(world).median())
        record = {"step": self.step, "split_tokens": [], "distance": round(distance, 4)}
        for a, b in pairs:
            if a not in ids or b not in ids:
                raise StarVidError(f"--split-tokens: {a!r} or {b!r} is not a world word")
            ia, ib = ids[a], ids[b]
            before = float(F.cosine_similarity(emb[ia], emb[ib], dim=0))
            centre = (emb[ia] + emb[ib]).float() / 2
            u = torch.randn(centre.shape, generator=gen)
            u -= (u @ centre) / (centre @ centre) * centre  # keep the pair's shared part as it is
            u *= distance / 2 / u.norm()
            for enc in (self.text, self.ema_text):
                w = enc.get_input_embeddings().weight
                w[ia] = (centre + u).to(w.dtype)
                w[ib] = (centre - u).to(w.dtype)
            after = float(F.cosine_similarity(emb[ia], emb[ib], dim=0))
            record["split_tokens"].append(
                {"pair": [a, b], "cos_before": round(before, 4), "cos_after": round(after, 4)}
            )
        return record

    def _param_names(self):
        yield from (("unet." + n, p) for n, p in self.unet.named_parameters())
        yield from (("text." + n, p) for n, p in self.text.named_parameters())

    def _load_state(self) -> None:
        sd = load_file(self.state_path, device=str(self.device))
        for prefix, m in (
            ("unet.", self.unet),
            ("text.", self.text),
            ("ema_unet.", self.ema_unet),
            ("ema_text.", self.ema_text),
        ):
            m.load_state_dict({k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)})
        self.step = int(sd["step"])
        for name, p in self._param_names():
            if f"adam.exp_avg.{name}" in sd:
                self.opt.state[p] = {
                    "step": torch.tensor(float(self.step)),
                    "exp_avg": sd[f"adam.exp_avg.{name}"].clone(),
                    "exp_avg_sq": sd[f"adam.exp_avg_sq.{name}"].clone(),
                }

    def save(self) -> None:
        """Full state to --state, then the EMA model (fp16) to --out."""
        M._save_tensors(self.state_path, self._named_state())
        extra = {
            "step": self.step,
            "aux_weight": self.args.aux_weight,
            "aux_roles": list(self.args.aux_roles),
            "batch": self.args.batch,
            "lr": self.args.lr,
            "anneal_to": self.args.anneal_to,
            "ema": self.args.ema,
            "world": {
                "size": self.world.size,
                "frames": self.world.frames,
                "max_kinds": self.world.max_kinds,
            },
            "max_weight": self.args.max_weight,
            "temporal_weight": self.args.temporal_weight,
            "drift_weight": self.args.drift_weight,
            "high_noise_share": self.args.high_noise_share,
            "precision": self.args.precision,
            "attention": self.args.attention,
            "dropout": self.args.dropout,
            "curriculum": {
                "kind_weights": self.args.kind_weights,
                "count_weights": self.args.count_weights,
                "motion_weights": self.args.motion_weights,
            },
        }
        M.save_model(self.out, self.ema_unet, self.ema_text, self.tokenizer, self.cfg, extra=extra)

    @torch.no_grad()
    def update_ema(self) -> None:
        # Warm-up: early EMA follows the weights closely, later it averages ~1/(1-decay) steps.
        decay = min(self.args.ema, (1 + self.step) / (10 + self.step))
        for ema, live in ((self.ema_unet, self.unet), (self.ema_text, self.text)):
            for pe, pl in zip(ema.parameters(), live.parameters(), strict=True):
                pe.lerp_(pl, 1 - decay)

    @contextlib.contextmanager
    def training_mode(self) -> Iterator[None]:
        """Recorders on every cross-attention layer (the aux loss), the run's attention kernel
        and dropout, train mode; the U-Net's processors come back on exit."""
        layers = select_layers(self.unet, "all")
        self.store = AttentionStore(list(range(1, MAX_WORDS + 1)), layers, keep_grad=True)
        with install_recorders(self.unet, self.store):
            if self.args.attention == "plain":
                set_fast_attention(self.unet)
            set_dropout(self.unet, self.args.dropout)
            self.unet.train()
            self.text.train()
            # Compiled once per call (minutes, see the model card): it pays on a round, not on
            # a test.
            self.forward = torch.compile(self.unet) if self.args.compile else self.unet
            yield

    def train_step(self, lr: float, clock: PhaseClock | None = None) -> dict[str, float]:
        """One optimizer step on a fresh batch (seeded by the step); returns its losses.

        Inside ``training_mode``. `clock`, when given, adds the CPU seconds of each phase.
        """
        args, dev = self.args, self.device
        clock = clock or PhaseClock()
        rng = np.random.default_rng([args.seed, self.step])
        seeds = [int(x) for x in rng.integers(0, 2**31, args.batch)]
        drop = list(rng.random(args.batch) < args.cond_drop)
        x0, caps, tgt, wts = make_batch(seeds, self.world, args.aux_roles, drop)
        x0, tgt, wts = x0.to(dev), tgt.to(dev), wts.to(dev)
        gen = torch.Generator("cpu").manual_seed(int(rng.integers(2**31)))
        noise = torch.randn(x0.shape, generator=gen).to(dev)
        t = sample_timesteps(args.batch, len(self.alphas), args.high_noise_share, gen).to(dev)
        a = self.alphas[t].view(-1, 1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        clock.mark("data")
        with torch.autocast(dev.type, torch.bfloat16, enabled=args.precision == "bf16"):
            ctx = self.text(M.tokenize(self.tokenizer, caps).to(dev))[0]
            pred = self.forward(xt, t, encoder_hidden_states=ctx).sample.float()
        clock.mark("forward")
        mse = denoising_loss(pred, x0, noise, a, self.cfg.prediction, args.max_weight)
        zero = torch.zeros((), device=dev)
        aux = aux_loss(self.store, tgt, wts) if args.aux_weight > 0 else zero
        temporal = temporal_loss(pred, x0, a, args.max_weight) if args.temporal_weight else zero
        drift = drift_loss(pred, x0) if args.drift_weight else zero
        loss = mse + args.aux_weight * aux + args.temporal_weight * temporal
        loss = loss + args.drift_weight * drift
        clock.mark("loss")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clock.mark("backward")
        gnorm = torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.step()
        clock.mark("optimizer")
        self.step += 1
        self.update_ema()
        clock.mark("ema")
        values = {"loss": loss, "mse": mse, "aux": aux, "temporal": temporal, "drift": drift}
        values["grad_norm"] = gnorm
        return {k: float(v.detach()) for k, v in values.items()}


class PhaseClock:
    """CPU seconds (this process, all threads) spent in each phase of training steps."""

    def __init__(self):
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self._last = time.process_time()

    def mark(self, phase: str) -> None:
        """Charge the CPU time since the previous mark to `phase`."""
        now = time.process_time()
        self.seconds[phase] += now - self._last
        self._last = now


# -- the loop ---------------------------------------------------------------------------------


def train(args) -> dict:
    """Run training as configured by the parsed `args`; returns a summary dict."""
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    tr = Trainer(args)
    log_path = tr.out / "train_log.jsonl"
    print(
        f"shapes training: resume from {tr.resumed}; device {tr.device}; "
        f"{sum(p.numel() for p in tr.unet.parameters()) / 1e6:.2f} M U-Net parameters",
        flush=True,
    )
    if args.split_tokens:
        rec = tr.split_tokens(args.split_tokens, seed=args.seed)
        append_jsonl(log_path, rec)
        print(json.dumps(rec), flush=True)
    stop = {"flag": False}

    def _on_signal(signum, frame):
        stop["flag"] = True

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    deadline = tr.started + args.max_minutes * 60 if args.max_minutes else math.inf
    end_step = tr.step + args.steps
    first_step = tr.step

    def progress(step: int) -> float:
        # Share of this call done: by steps or by time, whichever limit comes first.
        by_steps = (step - first_step) / max(1, end_step - first_step)
        by_time = (time.time() - tr.started) / (deadline - tr.started)
        return min(1.0, max(by_steps, by_time))

    last_save = time.time()
    times: list[float] = []
    summary = {"start_step": tr.step}
    try:
        with tr.training_mode():
            while tr.step < end_step and not stop["flag"] and time.time() < deadline:
                t0 = time.time()
                values = tr.train_step(learning_rate(args, tr.step, progress(tr.step)))
                times.append(time.time() - t0)
                if tr.step % args.log_every == 0 or tr.step == end_step:
                    rec = {"step": tr.step} | {k: round(v, 5) for k, v in values.items()}
                    rec["s_per_step"] = round(float(np.mean(times[-args.log_every :])), 3)
                    rec["time"] = round(time.time() - tr.started, 1)
                    append_jsonl(log_path, rec)
                    print(json.dumps(rec), flush=True)
                if args.sample_every and tr.step % args.sample_every == 0:
                    write_preview(tr, log_path)
                if time.time() - last_save >= args.save_minutes * 60:
                    tr.save()
                    last_save = time.time()
                    print(f"saved step {tr.step}", flush=True)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    tr.save()
    if args.sample_every:
        write_preview(tr, log_path)
    summary.update(
        end_step=tr.step,
        s_per_step=float(np.mean(times)) if times else None,
        s_per_step_after_first=float(np.mean(times[1:])) if len(times) > 1 else None,
        minutes=(time.time() - tr.started) / 60,
    )
    print(json.dumps({"done": summary}), flush=True)
    return summary


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    ap = argparse.ArgumentParser(
        prog="python -m starvid.shapes.train", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--steps", type=int, default=100_000, help="steps to run in this call")
    ap.add_argument(
        "--max-minutes", type=float, default=0, help="stop after this long (0: no limit)"
    )
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--lr", type=float, default=8e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument(
        "--anneal-to",
        type=float,
        default=None,
        help="cosine-decay the learning rate to this over this call (its --steps or --max-minutes)",
    )
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--aux-weight", type=float, default=0.5)
    ap.add_argument("--prediction", choices=M.PREDICTIONS, default="sample")
    ap.add_argument(
        "--max-weight", type=float, default=5.0, help="clip of the x0 loss weight 1/(1-alpha_bar)"
    )
    ap.add_argument(
        "--aux-roles",
        type=lambda s: tuple(s.split(",")),
        default=AUX_ROLES,
        help="word roles whose attention the aux loss localizes (color,noun,count,verb,direction)",
    )
    ap.add_argument("--cond-drop", type=float, default=0.1, help="share of empty captions (CFG)")
    ap.add_argument("--max-kinds", type=int, default=3)

    def weights(text: str) -> tuple[float, ...]:
        return tuple(float(v) for v in text.split(","))

    ap.add_argument(
        "--kind-weights", type=weights, default=None, help="weights of 1,2,3 kinds a video"
    )
    ap.add_argument("--count-weights", type=weights, default=None, help="weights of counts 1,2,3,4")
    ap.add_argument(
        "--motion-weights",
        type=weights,
        default=None,
        help="weights of the motions " + ",".join(MOTIONS),
    )
    ap.add_argument(
        "--temporal-weight",
        type=float,
        default=0.0,
        help="weight of the frame-difference loss (x0 prediction only)",
    )
    ap.add_argument(
        "--drift-weight",
        type=float,
        default=0.0,
        help="weight of the drift loss: each frame's spatial moments fitted over the clip"
        " (x0 prediction only)",
    )
    ap.add_argument(
        "--high-noise-share",
        type=float,
        default=0.0,
        help="share of timesteps drawn from the noisiest 40 %% of the schedule",
    )
    ap.add_argument(
        "--frame-positions",
        action="store_true",
        help="sinusoidal frame positions in the temporal attention (added on a warm start)",
    )
    ap.add_argument(
        "--precision",
        choices=("bf16", "fp32"),
        default="bf16",
        help="forward passes in bfloat16 autocast (weights, optimizer and losses stay float32)",
    )
    ap.add_argument(
        "--attention",
        choices=("plain", "sdpa"),
        default=None,
        help="unrecorded attention layers: matmul-softmax (default on the CPU, where it is faster "
        "for this model's short sequences) or fused SDPA (default on a GPU)",
    )
    ap.add_argument(
        "--dropout", type=float, default=0.0, help="dropout of the U-Net (diffusers' default 0.1)"
    )
    ap.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the U-Net's training forward (minutes to compile, then faster steps)",
    )
    ap.add_argument("--channels", type=int, nargs="+", default=[64, 96])
    ap.add_argument("--out", default=str(M.SHAPES_DIR))
    ap.add_argument("--state", default="runs/shapes/state.safetensors")
    ap.add_argument("--from-scratch", action="store_true", help="ignore saved state and weights")
    ap.add_argument("--save-minutes", type=float, default=4.0)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--sample-every", type=int, default=250, help="0: no sample grids")
    ap.add_argument("--sample-steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--split-tokens",
        default="",
        metavar="A/B,C/D",
        help="once, before this call's first step: move each pair of world words apart in the"
        " text encoder's input embeddings (e.g. left/right,up/down)",
    )
    return ap


def split_pairs(text: str) -> list[tuple[str, str]]:
    """``"left/right,up/down"`` -> ``[("left", "right"), ("up", "down")]``."""
    pairs = [tuple(p.split("/")) for p in text.split(",") if p]
    if any(len(p) != 2 or not all(p) for p in pairs):
        raise StarVidError(f"--split-tokens takes pairs like left/right,up/down, got {text!r}")
    return pairs


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad options or input print one line and exit 2."""
    try:
        args = build_parser().parse_args(argv)
        if args.attention is None:
            args.attention = "plain" if args.device == "cpu" else "sdpa"
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise StarVidError("--device cuda requested but CUDA is not available here")
        if args.temporal_weight > 0 and args.prediction != "sample":
            raise StarVidError("--temporal-weight needs --prediction sample")
        if args.drift_weight > 0 and args.prediction != "sample":
            raise StarVidError("--drift-weight needs --prediction sample")
        bad = set(args.aux_roles) - {"color", "noun", "count", "verb", "direction"}
        if bad:
            raise StarVidError(f"unknown --aux-roles {sorted(bad)}")
        args.split_tokens = split_pairs(args.split_tokens)
        train(args)
    except StarVidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
