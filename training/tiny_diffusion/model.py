"""The tiny text-to-image pipeline's parts, built from config (no download).

A Stable Diffusion layout in miniature, so it loads with ``StableDiffusionPipeline`` /
``AutoPipelineForText2Image.from_pretrained`` like any SD directory:

- ``tokenizer``: a CLIP BPE tokenizer whose vocabulary holds the captions' words whole
  (and every letter, so an unknown word still tokenizes);
- ``text_encoder``: a 2-layer ``CLIPTextModel`` (width 128);
- ``vae``: an ``AutoencoderKL`` that maps 64 x 64 RGB to a 16 x 16 x 16 latent;
- ``unet``: a ``UNet2DConditionModel`` on that latent with cross-attention at 8 x 8 and 4 x 4;
- ``scheduler``: DPM-Solver++ for sampling (DDPM's schedule in training).
"""

from __future__ import annotations

import string

from training.tiny_diffusion.scenes import vocabulary

IMAGE_SIZE = 64
LATENT_SIZE = 16
#: 16 x 16 x 16 holds a third of the 64 x 64 x 3 pixels' numbers: light enough compression
#: that a small autoencoder learns crisp edges in minutes on a CPU
LATENT_CHANNELS = 16
#: text positions: people's wording runs past the generator's ("Could you please draw me a
#: picture of ..."), and a word outside the vocabulary costs a token per letter
MAX_TOKENS = 48
TEXT_WIDTH = 128
SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "prediction_type": "epsilon",
    "steps_offset": 1,
}


def make_tokenizer():
    """A CLIP BPE tokenizer: letters alone, and a merge chain per caption word."""
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab: dict[str, int] = {}
    for tok in specials + chars + [c + "</w>" for c in chars]:
        vocab.setdefault(tok, len(vocab))
    merges: list[tuple[str, str]] = []
    seen: set[str] = set()
    for word in vocabulary():
        if len(word) < 2:
            continue
        prefix = word[0]
        for i, ch in enumerate(word[1:], start=1):
            last = i == len(word) - 1
            piece = ch + "</w>" if last else ch
            merged = prefix + piece
            rule = f"{prefix} {piece}"
            if rule not in seen:
                seen.add(rule)
                merges.append((prefix, piece))
            vocab.setdefault(merged, len(vocab))
            prefix = merged
    tok = CLIPTokenizer(vocab=vocab, merges=merges)
    tok.model_max_length = MAX_TOKENS
    return tok


def make_text_encoder(vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=TEXT_WIDTH,
        intermediate_size=TEXT_WIDTH * 2,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS,
        projection_dim=TEXT_WIDTH,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    return CLIPTextModel(cfg)


def make_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 32, 64),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=16,
        sample_size=IMAGE_SIZE,
        mid_block_add_attention=False,
    )


def make_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=4,
        norm_num_groups=16,
    )


def make_train_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(**SCHEDULE)


def make_sample_scheduler(prediction_type: str = "epsilon"):
    from diffusers import DPMSolverMultistepScheduler

    # trailing spacing: sampling starts at the last training step, so flat dark or light
    # backgrounds come out as dark or light as asked
    return DPMSolverMultistepScheduler(
        **{**SCHEDULE, "prediction_type": prediction_type}, timestep_spacing="trailing"
    )
