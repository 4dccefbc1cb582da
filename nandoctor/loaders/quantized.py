"""int8-quantized layers (`model.quantize("int8")`): an int8 matrix beside its float scale.
The rules judge the values the layer computes with, `q / scale`, and the report says the
layer is quantized."""

from __future__ import annotations

from nandoctor.view import ModelView, Weight
from nandoctor.view.array_sources import DequantizedSource

# The name of the matrix a quantized layer stores first, by class.
_MATRIX_NAMES = {
    "Embedding": "embeddings",
    "ReversibleEmbedding": "embeddings",
    "Dense": "kernel",
    "EinsumDense": "kernel",
}


def dequantize(view: ModelView) -> None:
    quantized = []
    for layer in view.layers:
        policy = layer.config.get("dtype")
        if not (
            isinstance(policy, dict)
            and policy.get("class_name") == "QuantizedDTypePolicy"
            and (policy.get("config") or {}).get("mode") == "int8"
        ):
            continue
        matrices = [w for w in layer.weights if w.dtype == "int8" and len(w.shape) == 2]
        scales = [w for w in layer.weights if w.dtype.startswith("float") and len(w.shape) == 1]
        if len(matrices) != 1 or not scales:
            continue
        (matrix,) = matrices
        rows, columns = matrix.shape
        # Keras saves the scale last (a Dense's order: kernel, bias, kernel_scale).
        scale = next((s for s in reversed(scales) if s.shape[0] in (rows, columns)), None)
        if scale is None:
            continue
        per_row = layer.class_name in ("Embedding", "ReversibleEmbedding") and scale.shape[0] == rows
        source = DequantizedSource(matrix.source, scale.read(), per_row)
        name = _MATRIX_NAMES.get(layer.class_name, matrix.name)
        layer.weights = [
            Weight(name, layer.name, matrix.shape, "float32", source) if w is matrix else w
            for w in layer.weights
            if w is not scale
        ]
        quantized.append(layer.name)
    if quantized:
        view.notes.append(
            f"int8-quantized layers ({', '.join(quantized)}): their matrices are judged as "
            "the values they stand for, q / scale"
        )
