"""Train the bundled text-to-image model on synthetic shape scenes, on CPU, resumably.

    python -m training.tiny_diffusion.train --out /work/diffusion/run \\
        --export qwen_agent/bundled/qwen-tiny-shapes

Two legs: the autoencoder (``--vae-steps``, reconstruction L1 + MSE and a small KL term),
then the UNet and the text encoder together (``--unet-steps``, over ``--bank`` encoded
scene-caption pairs). ``--prediction sample`` predicts the clean latent, ``epsilon`` the
noise with min-SNR weighting; both use offset noise, an EMA of the weights, and the caption
dropped 10% of the time so classifier-free guidance works. A checkpoint resumed with
another ``--prediction`` switches over and starts a fresh EMA; ``training.json`` records it.

Keep ``--out`` outside the repository: it holds ``checkpoint.pt`` (weights, optimizer
state, EMA and the step, written atomically every ``--save-every`` steps), ``latents.pt``
and ``train.log`` (a line per ``--log-every`` steps, with an ETA). Rerun the same command
after an interruption and it resumes. Batches are a function of ``--seed`` and the step.
``--export DIR`` writes a diffusers pipeline directory (fp16 weights) with its
``training.json`` at the end; with ``--export-now``, from the latest checkpoint at once.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import string
import sys
import time
from pathlib import Path

from training.tiny_diffusion import model as M
from training.tiny_diffusion.scenes import random_scene, render, vocabulary

LOG: Path | None = None


def log(msg: str) -> None:
    line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {msg}"
    print(line, flush=True)
    if LOG is not None:
        with LOG.open("a") as f:
            f.write(line + "\n")


def batch(seed: int, step: int, n: int):
    """``n`` images in [-1, 1] (N, 3, 64, 64) and their captions, from (seed, step)."""
    import numpy as np
    import torch

    rng = random.Random(seed * 1_000_003 + step)
    images, captions = [], []
    for _ in range(n):
        scene, text = random_scene(rng)
        images.append(np.asarray(render(scene, M.IMAGE_SIZE), dtype=np.float32))
        captions.append(text)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2) / 127.5 - 1.0
    return x, captions


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


class Run:
    """The models, optimizers and progress of one run; saved and restored whole."""

    def __init__(self, args) -> None:
        import torch

        self.args = args
        torch.manual_seed(args.seed)
        self.tokenizer = M.make_tokenizer()
        self.text_encoder = M.make_text_encoder(len(self.tokenizer))
        self.vae = M.make_vae()
        self.unet = M.make_unet()
        self.ema = self.fresh_ema()
        self.vae_opt = torch.optim.AdamW(self.vae.parameters(), lr=args.vae_lr)
        params = list(self.unet.parameters()) + list(self.text_encoder.parameters())
        self.unet_opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
        self.vae_step = 0
        self.unet_step = 0
        self.scaling_factor: float | None = None
        self.switches: list[dict] = []
        #: each training command and the steps it started from (resumed runs included)
        self.sessions: list[dict] = []
        #: the training.json of the pipeline this run started from
        self.inherited: dict | None = None
        #: the pipeline directory this run started from (``--init``), if any
        self.init: str | None = None
        self.path = Path(args.out) / "checkpoint.pt"
        if self.path.exists():
            self.load()
        elif args.init:
            self.init_from(Path(args.init))

    def init_from(self, path: Path) -> None:
        """Start from an exported pipeline: its autoencoder (the leg is done), text encoder
        and UNet; the optimizer and the EMA start afresh."""
        import torch
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel

        vae = AutoencoderKL.from_pretrained(path / "vae", torch_dtype=torch.float32)
        unet = UNet2DConditionModel.from_pretrained(path / "unet", torch_dtype=torch.float32)
        text = CLIPTextModel.from_pretrained(path / "text_encoder", dtype=torch.float32)
        self.vae.load_state_dict(vae.state_dict())
        self.unet.load_state_dict(unet.state_dict())
        self.text_encoder.load_state_dict(_longer_positions(text.state_dict(), M.MAX_TOKENS))
        self.scaling_factor = float(vae.config.scaling_factor)
        self.vae_step = self.args.vae_steps
        self.ema = self.fresh_ema()
        self.init = str(path)
        self.inherited = json.loads((path / "training.json").read_text())
        log(f"initialised from {path} (scaling factor {self.scaling_factor:.4f})")

    def fresh_ema(self) -> dict:
        """An average of the weights that starts at the weights as they are now."""
        return {
            name: {k: v.detach().clone() for k, v in module.state_dict().items()}
            for name, module in (("unet", self.unet), ("text_encoder", self.text_encoder))
        }

    def state(self) -> dict:
        return {
            "vae": self.vae.state_dict(),
            "unet": self.unet.state_dict(),
            "text_encoder": self.text_encoder.state_dict(),
            "ema": self.ema,
            "vae_opt": self.vae_opt.state_dict(),
            "unet_opt": self.unet_opt.state_dict(),
            "vae_step": self.vae_step,
            "unet_step": self.unet_step,
            "scaling_factor": self.scaling_factor,
            "prediction": self.args.prediction,
            "switches": self.switches,
            "sessions": self.sessions,
            "init": self.init,
            "inherited": self.inherited,
        }

    def save(self) -> None:
        import torch

        tmp = self.path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, self.path)

    def load(self) -> None:
        import torch

        s = torch.load(self.path, map_location="cpu", weights_only=False)
        self.vae.load_state_dict(s["vae"])
        self.vae_opt.load_state_dict(s["vae_opt"])
        self.vae_step, self.scaling_factor = s["vae_step"], s["scaling_factor"]
        self.sessions = s.get("sessions", [])
        self.init, self.inherited = s.get("init"), s.get("inherited")
        if s["unet_step"] == 0:  # nothing of the second leg to keep (the vocabulary may differ)
            log(f"resumed: vae step {self.vae_step}")
            return
        self.unet.load_state_dict(s["unet"])
        self.text_encoder.load_state_dict(s["text_encoder"])
        self.ema = s["ema"]
        self.unet_opt.load_state_dict(s["unet_opt"])
        self.unet_step = s["unet_step"]
        self.switches = s.get("switches", [])
        before = s.get("prediction", "epsilon")
        if before != self.args.prediction:  # the output changes meaning: a fresh average
            log(f"prediction {before} -> {self.args.prediction} at step {self.unet_step}")
            self.switches.append({"step": self.unet_step, "prediction": self.args.prediction})
            self.ema = self.fresh_ema()
        log(f"resumed: vae step {self.vae_step}, unet step {self.unet_step}")


def _longer_positions(state: dict, positions: int) -> dict:
    """A text encoder's weights with ``positions`` position embeddings: a model trained with
    fewer keeps its own, and each new position starts as a copy of its last one."""
    import torch

    key = next(k for k in state if k.endswith("embeddings.position_embedding.weight"))
    old = state[key]
    if len(old) < positions:
        state = {**state, key: torch.cat([old, old[-1:].expand(positions - len(old), -1)])}
    return state


def train_vae(run: Run) -> None:
    import torch

    a = run.args
    run.vae.train()
    t0, done0, ema_loss = time.time(), run.vae_step, None
    while run.vae_step < a.vae_steps:
        step = run.vae_step
        for g in run.vae_opt.param_groups:
            g["lr"] = lr_at(step, a.vae_steps, a.vae_lr, 50)
        x, _ = batch(a.seed, 10_000_000 + step, a.vae_batch)
        if a.vae_crop:  # the decoder's job is local (edges): train on windows, 4x cheaper
            g = random.Random(step)
            c = a.vae_crop
            offs = [
                (4 * g.randrange((64 - c) // 4 + 1), 4 * g.randrange((64 - c) // 4 + 1))
                for _ in range(len(x))
            ]
            x = torch.stack(
                [img[:, oy : oy + c, ox : ox + c] for img, (ox, oy) in zip(x, offs, strict=True)]
            )
        post = run.vae.encode(x).latent_dist
        rec = run.vae.decode(post.sample()).sample
        loss = (rec - x).abs().mean() + (rec - x).pow(2).mean() + 1e-6 * post.kl().mean()
        run.vae_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.vae.parameters(), 1.0)
        run.vae_opt.step()
        run.vae_step += 1
        ema_loss = loss.item() if ema_loss is None else 0.95 * ema_loss + 0.05 * loss.item()
        if run.vae_step % a.log_every == 0 or run.vae_step == a.vae_steps:
            rate = (time.time() - t0) / max(1, run.vae_step - done0)
            eta = rate * (a.vae_steps - run.vae_step + a.unet_steps * 0.9) / 60
            log(
                f"vae step {run.vae_step}/{a.vae_steps} loss {loss.item():.4f} "
                f"(ema {ema_loss:.4f}) {rate:.2f}s/step ETA {eta:.1f} min (both legs)"
            )
        if run.vae_step % a.save_every == 0:
            run.save()
    if run.scaling_factor is None:
        run.vae.eval()
        with torch.no_grad():
            lat = torch.cat(
                [
                    run.vae.encode(batch(a.seed, 20_000_000 + i, 64)[0]).latent_dist.mode()
                    for i in range(4)
                ]
            )
        run.scaling_factor = float(1.0 / lat.std())
        log(f"latent std {lat.std():.4f}: scaling factor {run.scaling_factor:.4f}")
        run.save()


def encode_text(run: Run, captions: list[str]):
    ids = run.tokenizer(
        captions,
        padding="max_length",
        max_length=M.MAX_TOKENS,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return run.text_encoder(ids)[0]


def latent_bank(run: Run):
    """Encoded training pairs, made once after the autoencoder leg and kept in ``--out``:
    encoding cost as much as a UNet step, and the scenes are simple enough to see each a few
    times. Returns (means, stds, captions)."""
    import torch

    a = run.args
    path = Path(a.out) / "latents.pt"
    if path.exists():
        bank = torch.load(path, weights_only=False)
        if len(bank["captions"]) == a.bank:
            return bank["mean"], bank["std"], bank["captions"]
    means, stds, captions = [], [], []
    t0 = time.time()
    with torch.no_grad():
        for i in range(0, a.bank, 64):
            x, caps = batch(a.seed, 30_000_000 + i, min(64, a.bank - i))
            post = run.vae.encode(x).latent_dist
            means.append(post.mean.half())
            stds.append(post.std.half())
            captions.extend(caps)
            if (i // 64) % 40 == 0:
                log(f"latent bank {i + len(caps)}/{a.bank} ({time.time() - t0:.0f} s)")
    bank = {"mean": torch.cat(means), "std": torch.cat(stds), "captions": captions}
    tmp = path.with_suffix(".tmp")
    torch.save(bank, tmp)
    os.replace(tmp, path)
    return bank["mean"], bank["std"], captions


def with_filler(caption: str, rng: random.Random) -> str:
    """``caption`` with one to four made-up words at its ends and before its phrases, as
    people pad a request ("could you please draw ... thanks"). They are random letters, never
    real words, so no held-out wording is trained; the tokenizer spells them out letter by
    letter, as it does any word outside its vocabulary, and the model learns to read past
    them."""
    words = caption.split()
    for _ in range(rng.randint(1, 4)):
        # where people pad: the start, the end, before a phrase ("... red circle, ok, on blue")
        slots = [0, len(words)] + [k for k, w in enumerate(words) if w in _PHRASE_STARTS]
        fake = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 6)))
        if fake in _known_words():  # a made-up "red" would say something
            continue
        words.insert(rng.choice(slots), fake + rng.choice(["", "", "", ",", "!", "?"]))
    return " ".join(words)


_PHRASE_STARTS = {"at", "in", "on", "against", "with", "over", "positioned"}


@functools.cache
def _known_words() -> frozenset[str]:
    return frozenset(vocabulary())


def edge_weights(lat, strength: float):
    """A per-position loss weight, up to 1 + ``strength`` where the clean latent varies: the
    shape's outline and (the autoencoder's codes vary inside it too) the shape, against 1 on
    a plain background. The shape is a small part of the picture, so plain MSE learns colours
    and places long before it learns whether the outline is round, square or pointed."""
    import torch.nn.functional as F

    dx = (lat[:, :, :, 1:] - lat[:, :, :, :-1]).abs().sum(1, keepdim=True)
    dy = (lat[:, :, 1:, :] - lat[:, :, :-1, :]).abs().sum(1, keepdim=True)
    e = F.pad(dx, (0, 1)) + F.pad(dx, (1, 0)) + F.pad(dy, (0, 0, 0, 1)) + F.pad(dy, (0, 0, 1, 0))
    e = F.max_pool2d(e, 3, stride=1, padding=1)  # both sides of the outline
    e = e / e.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    return 1 + strength * e


def train_unet(run: Run) -> None:
    import torch

    a = run.args
    means, stds, bank_captions = latent_bank(run)
    sched = M.make_train_scheduler()
    alphas = sched.alphas_cumprod
    run.vae.eval()
    run.unet.train()
    run.text_encoder.train()
    params = list(run.unet.parameters()) + list(run.text_encoder.parameters())
    t0, done0, ema_loss = time.time(), run.unet_step, None
    rng = torch.Generator().manual_seed(a.seed)
    while run.unet_step < a.unet_steps:
        step = run.unet_step
        rng.manual_seed(a.seed * 7919 + step)
        for g in run.unet_opt.param_groups:
            g["lr"] = lr_at(step, a.unet_steps, a.lr, 200)
        pick = torch.randint(0, len(bank_captions), (a.batch,), generator=rng)
        captions = []
        for i, j in enumerate(pick.tolist()):
            r = random.Random(step * 1000 + i)
            if r.random() < 0.1:
                captions.append("")
            elif r.random() < a.filler:
                captions.append(with_filler(bank_captions[j], r))
            else:
                captions.append(bank_captions[j])
        mean, std = means[pick].float(), stds[pick].float()
        lat = (mean + std * torch.randn(mean.shape, generator=rng)) * run.scaling_factor
        noise = torch.randn(lat.shape, generator=rng)
        noise += 0.1 * torch.randn(lat.shape[0], lat.shape[1], 1, 1, generator=rng)
        # noise levels drawn with density rising toward pure noise (--t-bias 2: linear), where
        # the picture's layout and colours are decided; the easy low-noise end needs fewer
        u = torch.rand(lat.shape[0], generator=rng)
        total_t = sched.config.num_train_timesteps
        t = (total_t * u ** (1 / a.t_bias)).long().clamp(0, total_t - 1)
        noisy = sched.add_noise(lat, noise, t)
        cond = encode_text(run, captions)
        pred = run.unet(noisy, t, cond).sample
        if a.prediction == "sample":  # the clean latent, MSE: every noise level counts
            err = (pred - lat).pow(2)
            if a.edge_weight:
                err = err * edge_weights(mean * run.scaling_factor, a.edge_weight)
            loss = err.mean()
        else:
            snr = alphas[t] / (1 - alphas[t])
            weight = torch.clamp(snr, max=5.0) / snr
            loss = ((pred - noise).pow(2).mean(dim=(1, 2, 3)) * weight).mean()
        run.unet_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        run.unet_opt.step()
        run.unet_step += 1
        since = run.unet_step - (run.switches[-1]["step"] if run.switches else 0)
        decay = min(a.ema, (1 + since) / (10 + since))
        with torch.no_grad():
            for name, module in (("unet", run.unet), ("text_encoder", run.text_encoder)):
                for k, v in module.state_dict().items():
                    e = run.ema[name][k]
                    if v.dtype.is_floating_point:
                        e.mul_(decay).add_(v.detach(), alpha=1 - decay)
                    else:
                        e.copy_(v)
        ema_loss = loss.item() if ema_loss is None else 0.98 * ema_loss + 0.02 * loss.item()
        if run.unet_step % a.log_every == 0 or run.unet_step == a.unet_steps:
            rate = (time.time() - t0) / max(1, run.unet_step - done0)
            eta = rate * (a.unet_steps - run.unet_step) / 60
            log(
                f"unet step {run.unet_step}/{a.unet_steps} loss {loss.item():.4f} "
                f"(ema {ema_loss:.4f}) lr {run.unet_opt.param_groups[0]['lr']:.2e} "
                f"{rate:.2f}s/step ETA {eta:.1f} min"
            )
        if run.unet_step % a.save_every == 0:
            run.save()
    run.save()


def export(run: Run, out: Path) -> None:
    """A diffusers StableDiffusionPipeline directory (fp16 weights) and training.json."""
    import shutil

    import torch
    from diffusers import StableDiffusionPipeline

    run.unet.load_state_dict(run.ema["unet"])
    run.text_encoder.load_state_dict(run.ema["text_encoder"])
    run.vae.register_to_config(scaling_factor=run.scaling_factor)
    pipe = StableDiffusionPipeline(
        vae=run.vae,
        text_encoder=run.text_encoder,
        tokenizer=run.tokenizer,
        unet=run.unet,
        scheduler=M.make_sample_scheduler(run.args.prediction),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.to(torch.float16)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp, safe_serialization=True)
    a = run.args
    if run.sessions:  # the settings of the last training command, not of this export
        a = _parser().parse_args(run.sessions[-1]["command"].split()[3:])
    info = {
        "model": "qwen-tiny-shapes",
        "what": "a text-to-image diffusion model trained from scratch on synthetic scenes of "
        "one coloured shape on a plain background (training/tiny_diffusion)",
        "native_size": M.IMAGE_SIZE,
        "legs": [
            {"leg": "vae", "from": run.init}  # the autoencoder came with --init, untouched
            if run.init
            else {
                "leg": "vae",
                "steps": run.vae_step,
                "batch": a.vae_batch,
                "crop": a.vae_crop,
                "lr": a.vae_lr,
            },
            {
                "leg": "unet+text_encoder",
                "steps": run.unet_step,
                "batch": a.batch,
                "lr": a.lr,
                "ema": a.ema,
                "min_snr_gamma": 5.0 if a.prediction == "epsilon" else None,
                "offset_noise": 0.1,
                "t_bias": a.t_bias,
                "prediction": a.prediction,
                "switches": run.switches,
                "caption_dropout": 0.1,
            },
        ],
        "edge_weight": a.edge_weight,
        "filler": a.filler,
        "seed": a.seed,
        "latent_bank": a.bank,
        "scaling_factor": run.scaling_factor,
        "sessions": run.sessions,
        "torch": torch.__version__,
    }
    if run.init:  # this run continued an exported pipeline: keep its record too
        info["started_from"] = {"path": run.init, "training": run.inherited}
    (tmp / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    defaults = {"steps": 12, "guidance_scale": 4.0, "width": 64, "height": 64}
    (tmp / "generation_defaults.json").write_text(json.dumps(defaults, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    log(f"exported {out} ({size / 2**20:.1f} MiB)")


def main(argv: list[str] | None = None) -> None:
    global LOG
    p = _parser()
    args = p.parse_args(argv)
    if args.init and not (args.init / "model_index.json").is_file():
        p.error(f"--init {args.init}: not an exported pipeline directory (no model_index.json)")
    if not 0 <= args.filler <= 1:
        p.error(f"--filler {args.filler}: a share of the captions, from 0 to 1")
    if args.edge_weight < 0 or (args.edge_weight and args.prediction != "sample"):
        p.error("--edge-weight: a weight of 0 or more, for --prediction sample")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    LOG = Path(args.out) / "train.log"
    run = Run(args)
    if args.export_now:
        if not args.export or run.scaling_factor is None:
            p.error("--export-now needs --export DIR and a checkpoint past the autoencoder leg")
        export(run, args.export)
        return
    run.sessions.append(
        {
            "vae_step": run.vae_step,
            "unet_step": run.unet_step,
            "command": " ".join(["python -m training.tiny_diffusion.train", *sys.argv[1:]]),
        }
    )
    train_vae(run)
    train_unet(run)
    if args.export:
        export(run, args.export)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="run directory (checkpoint, log)")
    p.add_argument("--export", type=Path, help="write the pipeline directory here at the end")
    p.add_argument(
        "--export-now",
        action="store_true",
        help="export the latest checkpoint as it is (while a run goes on), no training",
    )
    p.add_argument("--vae-steps", type=int, default=800)
    p.add_argument("--vae-batch", type=int, default=16)
    p.add_argument("--vae-lr", type=float, default=1e-3)
    p.add_argument("--vae-crop", type=int, default=32, help="train the autoencoder on windows")
    p.add_argument("--unet-steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--bank", type=int, default=24_000, help="encoded pairs the UNet sees")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--t-bias", type=float, default=2.0, help="noise-level sampling exponent")
    p.add_argument(
        "--prediction",
        choices=["epsilon", "sample"],
        default="sample",
        help="what the UNet predicts: the noise, or the clean latent",
    )
    p.add_argument(
        "--edge-weight",
        type=float,
        default=0.0,
        help="extra loss weight on the shape's outline (sample prediction)",
    )
    p.add_argument(
        "--filler",
        type=float,
        default=0.0,
        help="share of captions padded with made-up words (robustness to wordy requests)",
    )
    p.add_argument(
        "--init",
        type=Path,
        help="start from this exported pipeline (its autoencoder, text encoder and UNet)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=50)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    return p


if __name__ == "__main__":
    main()
