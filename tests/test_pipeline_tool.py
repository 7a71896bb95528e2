"""PipelineTool: local transformers pipelines and diffusers directories as tools, with real
(small) models: the bundled language model, and tiny models built from config."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from qwen_agent import Agent  # noqa: E402
from qwen_agent.bundled import TINY_AGENT  # noqa: E402
from qwen_agent.errors import ConfigError, ToolCallError  # noqa: E402
from qwen_agent.events import ToolResultEvent  # noqa: E402
from qwen_agent.messages import ImageItem  # noqa: E402
from qwen_agent.testing import ScriptedLLM  # noqa: E402
from qwen_agent.tools.pipeline import PipelineTool  # noqa: E402


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    """A sentiment classifier with random weights, on the bundled model's tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForSequenceClassification

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(TINY_AGENT)
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else 0,
    )
    out = tmp_path_factory.mktemp("classifier")
    Qwen2ForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def vision_dir(tmp_path_factory):
    """An image classifier (a tiny ViT) with random weights and its image processor."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    cfg = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_labels=3,
        id2label={0: "circle", 1: "square", 2: "triangle"},
        label2id={"circle": 0, "square": 1, "triangle": 2},
    )
    out = tmp_path_factory.mktemp("vision")
    ViTForImageClassification(cfg).save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def test_text_generation_with_the_bundled_model():
    gen = PipelineTool(task="text-generation", model=TINY_AGENT)
    assert gen.name == "text_generation"
    assert gen.parameters["required"] == ["prompt"]
    out = gen.call(prompt="Hello, how are you?", max_new_tokens=6)
    assert isinstance(out, str) and out.strip()


def test_schema_comes_from_the_task_and_results_are_json(classifier_dir):
    tool = PipelineTool(task="sentiment-analysis", model=classifier_dir, name="sentiment")
    assert tool.parameters == {
        "type": "object",
        "properties": {"text": {"type": "string", "description": "the text"}},
        "required": ["text"],
        "additionalProperties": False,
    }
    assert "Classify a text" in tool.description and classifier_dir.name in tool.description
    out = tool.call(text="I love this book")
    assert out[0]["label"] in ("NEGATIVE", "POSITIVE") and 0 <= out[0]["score"] <= 1
    zero = PipelineTool(task="zero-shot-classification", model=classifier_dir)
    assert zero.parameters["required"] == ["text", "labels"]


def test_through_an_agent(classifier_dir):
    tool = PipelineTool(task="text-classification", model=classifier_dir)
    call = '<tool_call>{"name": "text_classification", "arguments": {"text": "great"}}</tool_call>'
    agent = Agent(llm=ScriptedLLM([call, "It is positive."]), tools=[tool])
    events = list(agent.run("Is 'great' positive?"))
    results = [e.result for e in events if isinstance(e, ToolResultEvent)]
    assert not results[0].is_error
    assert json.loads(results[0].text)[0]["label"] in ("NEGATIVE", "POSITIVE")


def test_image_inputs_only_from_the_allowed_folders(vision_dir, tmp_path):
    inside = tmp_path / "in"
    inside.mkdir()
    Image.new("RGB", (40, 40), (200, 20, 20)).save(inside / "red.png")
    secret = tmp_path / "secret.png"
    Image.new("RGB", (40, 40), (0, 0, 0)).save(secret)
    (inside / "link.png").symlink_to(secret)
    tool = PipelineTool(task="image-classification", model=vision_dir, input_dirs=[inside])
    labels = {o["label"] for o in tool.call(image="red.png")}
    assert labels <= {"circle", "square", "triangle"} and labels
    assert tool.call(image=str(inside / "red.png"))  # an absolute path inside is fine
    for bad in (str(secret), "link.png", "../secret.png", "/etc/hostname"):
        with pytest.raises(ToolCallError, match="no file"):
            tool.call(image=bad)
    with pytest.raises(ToolCallError, match="not a URL"):
        tool.call(image="http://127.0.0.1/x.png")


def test_a_diffusers_directory_is_text_to_image(tmp_path):
    pytest.importorskip("diffusers")
    from qwen_agent.tools.image_gen import bundled_pipeline_path

    tool = PipelineTool(model=bundled_pipeline_path(), output_dir=tmp_path)
    assert tool.name == "text_to_image" and tool.parameters["required"] == ["prompt"]
    items = tool.call(prompt="a red square", seed=1, steps=4)
    assert isinstance(items[-1], ImageItem)
    with pytest.raises(ConfigError, match="its task is text-to-image"):
        PipelineTool(task="image-classification", model=bundled_pipeline_path())


def test_clear_errors_for_bad_setup(tmp_path, classifier_dir):
    with pytest.raises(ConfigError, match="needs model=DIR"):
        PipelineTool(task="text-classification")
    with pytest.raises(ConfigError, match="is not a directory"):
        PipelineTool(task="text-classification", model=tmp_path / "nope")
    with pytest.raises(ConfigError, match="needs task="):
        PipelineTool(model=classifier_dir)
    broken = PipelineTool(task="image-classification", model=classifier_dir, input_dirs=[tmp_path])
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    with pytest.raises(ConfigError, match="cannot load"):
        broken.call(image="a.png")


def test_image_to_text_with_a_blip_model(tmp_path):
    """The README's captioning example: a BLIP model (random weights, built from config)
    through transformers 5's image-text-to-text pipeline."""
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    torch.manual_seed(0)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "circle", "square"]
    (tmp_path / "vocab.txt").write_text("\n".join([*words, "[DEC]"]))
    tok = BertTokenizer(str(tmp_path / "vocab.txt"))
    tok.add_special_tokens({"bos_token": "[DEC]"})
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1}
    cfg = BlipConfig(
        text_config={
            **small,
            "vocab_size": len(tok),
            "num_attention_heads": 2,
            "encoder_hidden_size": 32,
            "bos_token_id": tok.bos_token_id,
            "pad_token_id": 0,
            "sep_token_id": 3,
        },
        vision_config={**small, "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
    )
    model_dir = tmp_path / "blip"
    BlipForConditionalGeneration(cfg).save_pretrained(model_dir)
    processor = BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tok)
    processor.save_pretrained(model_dir)
    Image.new("RGB", (40, 40), (200, 0, 0)).save(tmp_path / "red.png")
    tool = PipelineTool(task="image-to-text", model=model_dir, input_dirs=[tmp_path])
    assert tool.name == "image_to_text" and tool.parameters["required"] == ["image"]
    caption = tool.call(image="red.png")
    assert isinstance(caption, str) and set(caption.split()) <= set(words)
    assert caption.strip()
