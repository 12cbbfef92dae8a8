"""Edits of an exported model.tflite, so that the live retrain never converts the network again.

A head-only retrain keeps the base, so the current model's flatbuffer already holds
everything but a few tensors. Two edits of it, each in well under a second:

- `feature_extractor`: the model's base cut out of it (pixels -> pooled features, one pass per
  crop, no mirror pass), which the retrain runs on LiteRT: on a 2-core CPU about 5x the crops per
  second of TensorFlow, and no TensorFlow graph to trace;
- `patch_head`: the head's kernel and bias, the gate's references, other animals, cut and floor
  written over the old ones. `TFLiteConverter` takes 10-20 s for the same result.

And one of a freshly converted model, `quantize_gate`: the gate's reference and other-animal rows
stored as int8 with a scale per row (`stored`), which LiteRT's CPU path multiplies as int8 (the
features quantized per crop on the fly). At one crop a frame the gate read 34.5 MB of float32 rows
per crop, more than the base's own weights: 41% of a crop's time at batch 1 on a busy machine; int8
reads a quarter (docs/measured.md, "The gate's rows in int8": a crop at batch 1 in 0.65 of the
time, the same decisions on all but 4 of 12,608 real crops). `patch_head` writes them so too.

Tensors are found by their old values (the weights of the Keras model beside the flatbuffer,
the cut and floor of model.json; the gate's rows as float32 or as their int8 form), never by
converter-made names or positions. Anything not
shaped as train.model and train.familiar build it raises GraphError; callers then check
the edited network numerically against the Keras one and fall back to TensorFlow and a
full conversion, so an edit can make a retrain slower, never wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

from knyang_cam import litert

from . import recipe

_IDENTIFIER = b"TFL3"
_OP = fb.BuiltinOperator
_DTYPES = {fb.TensorType.FLOAT32: np.dtype("<f4"), fb.TensorType.INT32: np.dtype("<i4"),
           fb.TensorType.INT8: np.dtype("i1")}


class GraphError(Exception):
    """A flatbuffer this module cannot edit safely; the caller converts the network instead."""


def read(data: bytes) -> fb.ModelT:
    """The flatbuffer as LiteRT's schema objects (one graph, buffers inline, as TFLiteConverter writes it)."""
    try:
        model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(bytearray(data), 0))
    except Exception as e:  # the generated reader raises whatever a damaged buffer trips over
        raise GraphError(f"not a readable .tflite flatbuffer ({type(e).__name__})") from None
    if len(model.subgraphs or ()) != 1 or any(b.offset for b in model.buffers or ()):
        raise GraphError("a .tflite with several graphs or external buffers")
    return model


def write(model: fb.ModelT) -> bytes:
    """The flatbuffer of `model` (the schema's own writer; buffers stay 16-byte aligned)."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=_IDENTIFIER)
    return bytes(builder.Output())


def _kind(model: fb.ModelT, op) -> int:
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def quantized(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[R, A] float rows as int8 [R, A] and a float32 scale per row (symmetric: zero stays zero)."""
    rows = np.asarray(rows, np.float32)
    scale = np.abs(rows).max(axis=1, initial=0.0) / 127
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.clip(np.round(rows / scale[:, None]), -127, 127).astype(np.int8), scale


def stored(rows: np.ndarray) -> np.ndarray:
    """The float rows an int8 gate tensor stands for (`quantized` and back): what the .tflite multiplies by."""
    q, scale = quantized(rows)
    return q.astype(np.float32) * scale[:, None]


def as_stored(gate):
    """A familiar.Gate with its rows as model.tflite holds them (`stored`): what the file computes, for the
    numerical checks of an exported or patched file."""
    return replace(gate, refs=stored(gate.refs), others=stored(gate.others))


def _value(model: fb.ModelT, tensor) -> np.ndarray | None:
    """A constant tensor's value (float32, int32, or int8 rows with a scale per row as the float32 rows they
    stand for), None for any other tensor."""
    data = model.buffers[tensor.buffer].data
    dtype = _DTYPES.get(tensor.type)
    if data is None or len(data) == 0 or dtype is None:
        return None
    shape = tuple(int(d) for d in tensor.shape) if tensor.shape is not None else ()
    raw = np.asarray(data, np.uint8)
    if raw.size != int(np.prod(shape)) * dtype.itemsize:
        return None
    value = raw.view(dtype).reshape(shape)  # a view of the buffer: the large ones are megabytes
    if tensor.type != fb.TensorType.INT8:
        return value
    q = tensor.quantization
    scale = np.asarray(q.scale if q is not None and q.scale is not None else (), np.float32)
    if len(shape) != 2 or scale.shape != (shape[0],) or q.quantizedDimension != 0 or np.any(q.zeroPoint):
        return None
    return value.astype(np.float32) * scale[:, None]


def _store(model: fb.ModelT, index: int, now: np.ndarray, rows: bool) -> None:
    """`now` into constant tensor `index`: float32, or (`rows`: the gate's) int8 with a scale per row. A matrix
    product it feeds takes the new number of rows as its output's width."""
    graph = model.subgraphs[0]
    tensor = graph.tensors[index]
    if rows:
        q, scale = quantized(now)
        model.buffers[tensor.buffer].data = np.frombuffer(q.tobytes(), np.uint8)
        tensor.type = fb.TensorType.INT8
        tensor.quantization = fb.QuantizationParametersT()
        tensor.quantization.scale, tensor.quantization.zeroPoint = scale.tolist(), [0] * len(scale)
    else:
        model.buffers[tensor.buffer].data = np.frombuffer(np.asarray(now, "<f4").tobytes(), np.uint8)
    tensor.shape = np.array(np.shape(now), np.int32)
    if tensor.shapeSignature is not None and len(tensor.shapeSignature):
        tensor.shapeSignature = np.array(np.shape(now), np.int32)
    for op in graph.operators:
        if _kind(model, op) == _OP.FULLY_CONNECTED and len(op.inputs) > 1 and int(op.inputs[1]) == index:
            if rows and op.builtinOptions is not None:  # the features are quantized per crop: they are >= 0
                op.builtinOptions.asymmetricQuantizeInputs = True
            product = graph.tensors[op.outputs[0]]
            product.shape = np.array([*product.shape[:-1], len(now)], np.int32)
            if product.shapeSignature is not None and len(product.shapeSignature):
                product.shapeSignature = np.array([*product.shapeSignature[:-1], len(now)], np.int32)


def _only(found: list, what: str):
    if len(found) != 1:
        raise GraphError(f"{what} found {len(found)} times, not once")
    return found[0]


def feature_extractor(data: bytes, dim: int) -> bytes:
    """model.tflite (pixels -> softmax, mirror pair inside) cut down to pixels [N, H, W, 3] -> features [N, dim].

    train.model.classifier runs the base once over the crops and their mirror images stacked
    (CONCATENATION of the input and its REVERSE_V2) and reshapes the pooled features to
    [2, N, dim] for the mirror mean: the base is fed the input itself instead, the graph ends
    at that reshape's input, and what the head and gate needed is dropped.
    """
    model = read(data)
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1:
        raise GraphError(f"a model with {len(graph.inputs)} inputs")
    pixels = int(graph.inputs[0])
    made_by = {int(o): op for op in graph.operators for o in op.outputs}

    def is_pair(op) -> bool:
        if _kind(model, op) != _OP.CONCATENATION or len(op.inputs) != 2 or int(op.inputs[0]) != pixels:
            return False
        mirror = made_by.get(int(op.inputs[1]))
        return mirror is not None and _kind(model, mirror) == _OP.REVERSE_V2 and int(mirror.inputs[0]) == pixels

    def is_mirror_split(op) -> bool:
        shape = _value(model, graph.tensors[op.inputs[1]]) if len(op.inputs) == 2 else None
        return _kind(model, op) == _OP.RESHAPE and shape is not None and shape.tolist() == [2, -1, dim]

    pair = int(_only([op for op in graph.operators if is_pair(op)], "the mirror pair").outputs[0])
    features = int(_only([op for op in graph.operators if is_mirror_split(op)], "the mirror mean").inputs[0])
    for op in graph.operators:
        op.inputs = np.where(np.asarray(op.inputs) == pair, pixels, op.inputs).astype(np.int32)
    needed, kept = {features}, []
    for op in reversed(graph.operators):
        if needed.intersection(int(o) for o in op.outputs):
            kept.append(op)
            needed.update(int(i) for i in op.inputs if i >= 0)
    if pixels not in needed:
        raise GraphError("the features do not depend on the input")
    graph.operators = kept[::-1]
    graph.outputs = np.array([features], np.int32)
    out = graph.tensors[features]
    out.shape, out.shapeSignature = np.array([1, dim], np.int32), np.array([-1, dim], np.int32)
    in_use = {graph.tensors[i].buffer for i in needed}
    for tensor in graph.tensors:  # the head's and the gate's weights: most of the file
        if tensor.buffer not in in_use:
            model.buffers[tensor.buffer].data = None
    model.signatureDefs = None  # they name the softmax output
    return write(model)


@dataclass(frozen=True)
class HeadParams:
    """What a head-only retrain changes: the head and the open-set gate (train/familiar.py)."""

    kernel: np.ndarray  # [D, C] of the softmax layer
    bias: np.ndarray  # [C]
    refs: np.ndarray  # [R, A] my cats' references
    others: np.ndarray  # [M, A] other animals
    cut: float | np.ndarray  # one, or one per class
    floor: float


def patch_head(data: bytes, old: HeadParams, new: HeadParams) -> bytes:
    """`data` with the tensors holding `old`'s values holding `new`'s: a new .tflite, no conversion.

    The classes must not change (the output's width and the uniform share 1/C are baked in);
    the number of references and other animals may: the matrix products they feed get the
    new width (as long as there are at least recipe.NEIGHBOURS of each, the top-k's k).
    """
    if np.shape(new.kernel) != np.shape(old.kernel):
        raise GraphError(f"the head changes shape ({np.shape(old.kernel)} -> {np.shape(new.kernel)})")
    if (len(old.others) == 0) != (len(new.others) == 0):
        raise GraphError("other animals added to or removed from the gate")
    if np.shape(old.cut) != np.shape(new.cut):
        raise GraphError(f"the cut changes shape ({np.shape(old.cut)} -> {np.shape(new.cut)})")
    for was, now, what in ((old.refs, new.refs, "references"), (old.others, new.others, "other animals")):
        if recipe.neighbours(len(was)) != recipe.neighbours(len(now)):  # the graph's top-k holds its k
            raise GraphError(f"the gate compares {recipe.neighbours(len(now))} nearest {what}, "
                             f"not {recipe.neighbours(len(was))}")
    edits = [(old.kernel.T, new.kernel.T, "the head's kernel", False), (old.bias, new.bias, "the head's bias", False),
             (old.refs, new.refs, "my cats' references", True)]
    if len(old.others):
        edits.append((old.others, new.others, "the other animals", True))
    edits += [(np.asarray(old.cut, np.float32), np.asarray(new.cut, np.float32), "the gate's cut", False),
              (np.float32(old.floor), np.float32(new.floor), "the gate's floor", False)]
    return _edited(data, edits)


def quantize_gate(data: bytes, refs: np.ndarray, others: np.ndarray) -> bytes:
    """A converted gated model (float32 throughout) with the gate's rows `refs` and `others` as int8 (`stored`)."""
    edits = [(refs, refs, "my cats' references", True)]
    if len(others):
        edits.append((others, others, "the other animals", True))
    return _edited(data, edits)


def _edited(data: bytes, edits: list) -> bytes:
    """`data` with each (was, now, what, rows) edit's tensor, found by its value `was`, holding `now` (`_store`);
    gate rows are found as float32 (a converted model, or one from before int8 rows) or as int8."""
    model = read(data)
    graph = model.subgraphs[0]
    owners = np.bincount([t.buffer for t in graph.tensors], minlength=len(model.buffers))
    values = [_value(model, t) for t in graph.tensors]
    targets = []
    for was, now, what, rows in edits:
        was = np.asarray(was, np.float32)
        forms = (was, stored(was)) if rows else (was,)
        index = _only([i for i, v in enumerate(values) if v is not None and v.shape == was.shape and
                       any(np.array_equal(v, f) for f in forms)], what)
        if owners[graph.tensors[index].buffer] != 1:
            raise GraphError(f"{what} shares its buffer with another tensor")
        targets.append((index, np.asarray(now, np.float32), rows))
    for index, now, rows in targets:
        _store(model, index, now, rows)
    return write(model)


class LiteRTFeatures:
    """A feature extractor .tflite on LiteRT: crops [N, H, W, 3] in 0..255 -> features [N, D], in batches."""

    def __init__(self, data: bytes, threads: int, batch_size: int = 32):
        try:
            interp = litert.interpreter(data, threads)
        except ValueError as e:
            raise GraphError(f"the cut-out feature extractor does not load: {e}") from None
        self._run = litert.Batches(interp)
        self._dim = int(interp.get_output_details()[0]["shape_signature"][-1])
        self.batch_size = batch_size

    def __call__(self, pixels: np.ndarray, progress=None) -> np.ndarray:
        """Features of `pixels`, `batch_size` at a time, `progress(done, total)` after each batch."""
        out = []
        for start in range(0, len(pixels), self.batch_size):
            x = np.ascontiguousarray(pixels[start:start + self.batch_size], np.float32)
            try:
                out.append(self._run(x))
            except (ValueError, RuntimeError) as e:  # crops the network was not made for
                raise GraphError(f"LiteRT cannot run it on {list(x.shape)}: {str(e).strip().splitlines()[0]}") \
                    from None
            if progress is not None:
                progress(start + len(x), len(pixels))
        return np.concatenate(out) if out else np.zeros((0, self._dim), np.float32)


def run(data: bytes, pixels: np.ndarray, threads: int = 2) -> np.ndarray:
    """What the .tflite `data` outputs for `pixels` (one call; for checking an edit)."""
    return LiteRTFeatures(data, threads, batch_size=max(1, len(pixels)))(pixels)
