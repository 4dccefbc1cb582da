from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nandoctor.analysis.keras_facts import is_known_class
from nandoctor.diagnosis import Rule
from nandoctor.report import Finding, Severity
from nandoctor.view import Layer, ModelView


class OpaqueCode(Rule):
    """## What it does
    Names every Lambda layer and every custom layer or model class in a saved model: code
    that the scan did not run and cannot check.

    ## Why is this bad?
    Most silent NaN and leak bugs live in hand-written code: a cosine similarity without
    an epsilon, a clamp put outside a square root, a log of a softmax, an attention wrapper
    that never passes the causal mask, a layer that quietly loses the padding mask. A
    Lambda's code is stored in the file as Python bytecode; running it to find out what it
    does would run whatever the file's author put there, so the static scan never does.
    Every rule that follows the model's graph stops at these layers, and this finding says
    where the unchecked code is.

    ## Example
    ```python
    import keras

    inputs = keras.Input((8,))
    scaled = keras.layers.Lambda(lambda x: x / 2.0, name="halve")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(scaled))
    ```

    ## Use instead
    ```python
    import keras

    inputs = keras.Input((8,))
    scaled = keras.layers.Rescaling(0.5, name="halve")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(scaled))
    ```

    ## Known problems
    Keras's own layers and nandoctor's reference layers are trusted by class name and
    module; a user class that borrows a Keras class name in a Keras 2 file (which records
    no module) is taken for the Keras class.
    """

    code = "ND901"
    evidence = "the config only: it names what the scan cannot see, and is always `info`."
    name = "opaque-code"
    severity = Severity.INFO
    fix = (
        "Replace it with built-in Keras layers or nandoctor.layers where you can; otherwise test "
        "its numerics yourself, since the static scan cannot see inside it."
    )

    def check(self, view: ModelView) -> Iterator[Finding]:
        if not view.has_config:
            return
        classes: dict[tuple, list[Layer]] = {}
        for layer in view.layers:
            if layer.class_name == "Lambda":
                yield self.finding(
                    layer.name,
                    f"Lambda '{layer.name}' holds {_lambda_code(layer.config)}; nandoctor did not run it, "
                    "so any division, normalisation or mask handling inside it is unchecked",
                    details={"kind": "lambda", "class_name": "Lambda"},
                )
            elif not is_known_class(layer.class_name, layer.module):
                key = (layer.class_name, layer.module, layer.registered_name, layer.is_model)
                classes.setdefault(key, []).append(layer)
        # One finding per class: twelve blocks of one custom class are one piece of unseen code.
        for (class_name, module, registered_name, is_model), layers in classes.items():
            where = f" from module '{module}'" if module else ""
            registered = (
                f", registered as '{registered_name}'" if registered_name and registered_name != class_name else ""
            )
            kind = "model" if is_model else "layer"
            names = [layer.name for layer in layers]
            used = f" ({len(names)} layers: {_listed(names)})" if len(names) > 1 else ""
            yield self.finding(
                names[0],
                f"custom {kind} class '{class_name}'{where}{registered}{used} is code that "
                "nandoctor did not run; its computation and mask handling are unchecked",
                details={
                    "kind": f"custom {kind}",
                    "class_name": class_name,
                    "module": module,
                    "registered_name": registered_name,
                    "layers": names,
                },
            )


def _listed(names: list[str], shown: int = 4) -> str:
    return ", ".join(f"'{name}'" for name in names[:shown]) + (
        f" and {len(names) - shown} more" if len(names) > shown else ""
    )


def _lambda_code(config: dict[str, Any]) -> str:
    """Describe the stored function without decoding it (decoding bytecode would run nothing,
    but unmarshalling it is exactly what the scan promises never to do)."""
    function = config.get("function")
    if isinstance(function, dict):  # Keras 3
        if function.get("class_name") == "__lambda__":
            return "a lambda stored as Python bytecode"
        if isinstance(function.get("config"), str):
            return f"a reference to function '{function['config']}'"
    function_type = config.get("function_type")
    if function_type == "lambda" or isinstance(function, list):  # Keras 2
        return "a lambda stored as Python bytecode"
    if isinstance(function, str):
        module = config.get("module")
        return f"a reference to function '{function}'" + (f" in module '{module}'" if module else "")
    return "Python code"
