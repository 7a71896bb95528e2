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


@pytest.fixture
def http_server():
    """A real HTTP server on loopback that serves a PNG and records every request."""
    import io
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    png = io.BytesIO()
    Image.new("RGB", (40, 40), (0, 200, 0)).save(png, format="PNG")
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png.getvalue())))
            self.end_headers()
            self.wfile.write(png.getvalue())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def pictures(tmp_path):
    """An input folder with a picture and a symlink out of it, and a picture outside."""
    inside = tmp_path / "in"
    inside.mkdir()
    Image.new("RGB", (40, 40), (200, 20, 20)).save(inside / "red.png")
    secret = tmp_path / "secret.png"
    Image.new("RGB", (40, 40), (0, 0, 0)).save(secret)
    (inside / "link.png").symlink_to(secret)
    return inside, secret


def test_a_task_outside_the_table_reads_only_the_allowed_folders(vision_dir, pictures):
    """image-feature-extraction is not in TASKS: its one ``inputs`` string goes to a
    pipeline that would open any file it is given."""
    inside, secret = pictures
    tool = PipelineTool(task="image-feature-extraction", model=vision_dir, input_dirs=[inside])
    assert tool.parameters["required"] == ["inputs"]
    for bad in (str(secret), "link.png", "../secret.png", f"{inside}/../secret.png"):
        with pytest.raises(ToolCallError, match="no file"):
            tool.call(inputs=bad)
    assert tool.call(inputs="red.png")  # a file inside: read
    assert tool.call(inputs=str(inside / "red.png"))


def test_a_task_outside_the_table_fetches_no_url(vision_dir, pictures, http_server):
    url, hits = http_server
    inside, secret = pictures
    tool = PipelineTool(task="image-feature-extraction", model=vision_dir, input_dirs=[inside])
    for bad in (f"{url}/cat.png", f" {url}/cat.png", "HTTPS://127.0.0.1:1/x.png"):
        with pytest.raises(ToolCallError, match="not a URL"):
            tool.call(inputs=bad)
    assert hits == []
    # the model is told, and the loop goes on
    call = {"name": "image_feature_extraction", "arguments": {"inputs": f"{url}/a.png"}}
    call = f"<tool_call>{json.dumps(call)}</tool_call>"
    events = list(Agent(llm=ScriptedLLM([call, "I cannot."]), tools=[tool]).run("Look at it"))
    results = [e.result for e in events if isinstance(e, ToolResultEvent)]
    assert results[0].is_error and "not a URL" in results[0].text and hits == []
    # URLs only where the user turned them on, and http(s) only
    fetching = PipelineTool(
        task="image-feature-extraction", model=vision_dir, input_dirs=[inside], allow_urls=True
    )
    assert fetching.call(inputs=f"{url}/green.png") and hits == ["/green.png"]
    with pytest.raises(ToolCallError, match="only http and https"):
        fetching.call(inputs=f"ftp://127.0.0.1:{url.rsplit(':', 1)[1]}/x.png")
    with pytest.raises(ToolCallError, match="no file"):
        fetching.call(inputs=str(secret))


def test_text_reaches_a_task_outside_the_table_as_it_is(tmp_path, classifier_dir):
    tool = PipelineTool(task="feature-extraction", model=classifier_dir, input_dirs=[tmp_path])
    assert tool.call(inputs="I love this book, and/or that one")
    assert tool.call(inputs="a plain sentence\n/ with a slash on the next line")
    for bad in ("/etc/hostname", "~/.bashrc", "../x", "a/b.png", "file:///etc/hostname"):
        with pytest.raises(ToolCallError):
            tool.call(inputs=bad)
    # strings inside lists and objects are checked too; a name found inside becomes its path
    (tmp_path / "note.txt").write_text("x")
    assert tool._confine_strings(["ok", 3, {"a": ["note.txt"]}]) == [
        "ok",
        3,
        {"a": [str(tmp_path / "note.txt")]},
    ]
    with pytest.raises(ToolCallError, match="no file"):
        tool._confine_strings({"a": ["/etc/hostname"]})


def test_a_call_past_the_timeout_stops_and_frees_the_model(vision_dir, tmp_path):
    from qwen_agent.errors import ToolError

    Image.new("RGB", (40, 40), (200, 20, 20)).save(tmp_path / "red.png")
    for task in ("image-classification", "image-feature-extraction"):  # in the table and not
        tool = PipelineTool(task=task, model=vision_dir, input_dirs=[tmp_path], timeout=1e-6)
        key = "image" if task == "image-classification" else "inputs"
        with pytest.raises(ToolError, match=r"timed out after 1e-06 s"):
            tool.call(**{key: "red.png"})
        tool.timeout = 60.0  # the model was stopped mid-call and is free again
        assert tool.call(**{key: "red.png"})
    # a call that cannot start in time (an earlier one holds the model) times out too
    tool.timeout = 0.2
    with tool._run_lock:
        with pytest.raises(ToolError, match="timed out after 0.2 s"):
            tool.call(inputs="red.png")


def test_a_long_generation_is_stopped_mid_run(tmp_path):
    """A random model that never writes its end token: 1,024 tokens take seconds here;
    with a timeout of 0.3 s the call stops after a fraction of them."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from qwen_agent.errors import ToolError

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(TINY_AGENT)
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    cfg = Qwen2Config(vocab_size=len(tok), num_attention_heads=2, num_key_value_heads=1, **small)
    model = Qwen2ForCausalLM(cfg)
    model.generation_config = GenerationConfig(eos_token_id=None, pad_token_id=0)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    gen = PipelineTool(task="text-generation", model=tmp_path, timeout=60)
    assert gen.call(prompt="hi", max_new_tokens=2)  # loaded
    steps = []
    gen._pipe.model.register_forward_hook(lambda *_: steps.append(1))
    gen.timeout = 0.3
    with pytest.raises(ToolError, match=r"timed out after 0.3 s"):
        gen.call(prompt="hi", max_new_tokens=1024)
    assert 0 < len(steps) < 1024
