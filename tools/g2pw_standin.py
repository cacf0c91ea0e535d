"""A stand-in for the G2PW model that Chinese G2P (text/chinese2.py, v2 and later) loads from the
fixed folder GPT_SoVITS/text/G2PWModel and downloads when that folder is absent (so it fails
offline). Used by tools/make_tiny_models.py --g2pw-assets.

The ONNX graph takes upstream's six inputs (all used, or onnxruntime prunes them and upstream's
feed fails) and answers the normalised phoneme mask: every allowed reading of a polyphonic
character equally likely, so upstream picks the first. The two JSON tables are rebuilt from the
character lists and pypinyin. The character lists and config.py are G2PW's own data, which this
tool does not ship: pass the folder that holds them (e.g. unpacked from the PyPI wheel
gpt-sovits-cpufast 0.1.0, GPT_SoVITS/text/G2PWModel/). The ONNX file is protobuf written by hand,
so neither the `onnx` package nor an exporter is needed.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

MIN_BYTES = 64 * 1024 + 1
ASSETS = ("POLYPHONIC_CHARS.txt", "MONOPHONIC_CHARS.txt", "config.py")
INPUTS = (("input_ids", 7, ("b", "l")), ("token_type_ids", 7, ("b", "l")), ("attention_mask", 7, ("b", "l")),
          ("phoneme_mask", 1, ("q", "n")), ("char_ids", 7, ("q",)), ("position_ids", 7, ("q",)))


# ---- protobuf wire format (just what an ONNX model needs) ----
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, data: bytes | str) -> bytes:
    data = data.encode() if isinstance(data, str) else data
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _node(op: str, inputs: list[str], outputs: list[str], **int_attrs: int) -> bytes:
    body = b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
    body += _bytes(3, outputs[0]) + _bytes(4, op)
    for name, value in int_attrs.items():  # AttributeProto: name=1, i=3, type=20 (INT=2)
        body += _bytes(5, _bytes(1, name) + _int(3, value) + _int(20, 2))
    return body


def _tensor(name: str, dtype: int, dims: tuple[int, ...], raw: bytes) -> bytes:
    return b"".join(_int(1, d) for d in dims) + _int(2, dtype) + _bytes(8, name) + _bytes(9, raw)


def _value_info(name: str, dtype: int, dims: tuple[str, ...]) -> bytes:
    shape = b"".join(_bytes(1, _bytes(2, d)) for d in dims)           # Dimension.dim_param
    tensor_type = _int(1, dtype) + _bytes(2, shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def onnx_model() -> bytes:
    nodes, used = [], []
    for name, _dtype, _ in INPUTS:
        if name == "phoneme_mask":
            continue
        nodes += [_node("Cast", [name], [f"{name}_f"], to=1), _node("ReduceSum", [f"{name}_f"], [f"{name}_s"],
                                                                   keepdims=0)]
        used.append(f"{name}_s")
    nodes += [_node("Sum", used, ["all_s"]), _node("Mul", ["all_s", "zero"], ["nothing"]),
              _node("ReduceSum", ["phoneme_mask", "axis1"], ["row_sum"], keepdims=1),
              _node("Max", ["row_sum", "one"], ["row_norm"]), _node("Div", ["phoneme_mask", "row_norm"], ["p"]),
              _node("Add", ["p", "nothing"], ["probs"])]
    inits = [_tensor("zero", 1, (), struct.pack("<f", 0.0)), _tensor("one", 1, (), struct.pack("<f", 1.0)),
             _tensor("axis1", 7, (1,), struct.pack("<q", 1))]
    graph = b"".join(_bytes(1, n) for n in nodes) + _bytes(2, "g2pw_standin")
    graph += b"".join(_bytes(5, t) for t in inits)
    graph += b"".join(_bytes(11, _value_info(n, t, d)) for n, t, d in INPUTS)
    graph += _bytes(12, _value_info("probs", 1, ("q", "n")))
    opset = _bytes(1, "") + _int(2, 17)
    # The doc string pads the file past 64 KiB, the least a weights file is believed to hold by the
    # installer and the doctor (gsv_service/engine_install/presence.py).
    doc = ("Not the G2PW model: a stand-in that picks a polyphonic character's first reading. ").ljust(
        MIN_BYTES, ".")
    return (_int(1, 8) + _bytes(2, "gsv-service tools/g2pw_standin.py") + _bytes(6, doc) + _bytes(7, graph)
            + _bytes(8, opset))


def _tables(assets: Path) -> tuple[dict, dict]:
    from pypinyin import Style
    from pypinyin.contrib.tone_convert import to_normal
    from pypinyin.pinyin_dict import pinyin_dict
    from pypinyin.style import convert

    to_pinyin = {}
    for readings in pinyin_dict.values():
        for p in readings.split(","):
            normal = to_normal(p)
            try:
                to_pinyin.setdefault(convert(normal + "1", Style.BOPOMOFO, strict=True), normal)
            except Exception:  # interjections pypinyin cannot spell in bopomofo
                continue
    by_char: dict[str, list[str]] = {}
    for name in ASSETS[:2]:
        for line in (assets / name).read_text(encoding="utf-8").strip().split("\n"):
            char, bopomofo = line.split("\t")
            by_char.setdefault(char, []).append(bopomofo)
    return to_pinyin, by_char


def write(assets: Path, checkout: Path) -> Path:
    """Write GPT_SoVITS/text/G2PWModel into the checkout, whole or not at all."""
    return _write_into(assets, checkout / "GPT_SoVITS" / "text" / "G2PWModel")


def _write_into(assets: Path, final: Path) -> Path:
    missing = [a for a in ASSETS if not (assets / a).is_file()]
    if missing:
        raise SystemExit(f"--g2pw-assets {assets} lacks {', '.join(missing)}")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name("G2PWModel.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for a in ASSETS:
        shutil.copy2(assets / a, tmp / a)
    to_pinyin, by_char = _tables(assets)
    (tmp / "bopomofo_to_pinyin_wo_tune_dict.json").write_text(json.dumps(to_pinyin, ensure_ascii=False))
    (tmp / "char_bopomofo_dict.json").write_text(json.dumps(by_char, ensure_ascii=False))
    (tmp / "g2pW.onnx").write_bytes(onnx_model())
    (tmp / "STAND-IN.txt").write_text("Not the G2PW model: a stand-in from gsv-service tools/g2pw_standin.py "
                                      "that picks a polyphonic character's first reading.\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def write_folder(assets: Path, final: Path) -> Path:
    """The same stand-in written to any folder (a --models-from folder's G2PWModel/)."""
    return _write_into(assets, final)


if __name__ == "__main__":  # python tools/g2pw_standin.py ASSETS OUT  (with the engine's interpreter)
    import sys

    print(write_folder(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()))
