"""A model's forward pass on the JAX backend, read from its jaxpr in the form the graph
checks read TensorFlow graphs: operations with a type, a name whose scopes say the layer,
and inputs that lead back to the operations that made them.

The model is traced with `jax.make_jaxpr` through `stateless_call`, so its weights are inputs
of the trace and never mistaken for constants. Calls of other jaxprs (`jit`, `custom_jvp`,
`custom_vjp`, `remat`) are inlined, their names under the caller's scope; loops and branches
stay opaque operations, judged by what they feed, never guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nandoctor.live.model_inputs import probe_inputs

# JAX primitives by the TensorFlow operation type the graph checks know them as.
_TYPES = {
    "div": "RealDiv",
    "sqrt": "Sqrt",
    "rsqrt": "Rsqrt",
    "log": "Log",
    "pow": "Pow",
    "acos": "Acos",
    "asin": "Asin",
    "atan2": "Atan2",
    "max": "Maximum",
    "min": "Minimum",
    "clamp": "ClipByValue",
    "exp": "Exp",
    "exp2": "Exp",
    "logistic": "Sigmoid",
    "add": "AddV2",
    "mul": "Mul",
    "reduce_sum": "Sum",
    "reduce_max": "Max",
    "reduce_min": "Min",
    "select_n": "SelectN",
    "log1p": "Log1p",
    "eq": "Equal",
    "ne": "NotEqual",
    "abs": "Abs",
    "square": "Square",
    "convert_element_type": "Cast",
    "reshape": "Reshape",
    "squeeze": "Squeeze",
    "expand_dims": "ExpandDims",
    "broadcast_in_dim": "BroadcastTo",
    "copy": "Identity",
    "copy_p": "Identity",
    "stop_gradient": "StopGradient",
    "sub": "Sub",
    "neg": "Neg",
    "dot_general": "MatMul",
}
# Parameters that hold a called jaxpr, inlined in place of the call.
_CALLED = ("jaxpr", "call_jaxpr", "fun_jaxpr")


@dataclass(eq=False)
class JaxOperation:
    type: str
    name: str
    inputs: list[JaxValue] = field(default_factory=list)
    constant_value: np.ndarray | None = None


@dataclass(eq=False)
class JaxValue:
    op: JaxOperation
    # Read from the jaxpr's abstract value, as a TensorFlow tensor states them: the graph checks
    # judge a constant in the dtype it is computed in, and a reduction by its axes.
    dtype: np.dtype | None = None
    shape: tuple | None = None


def forward_operations(model, view) -> list[JaxOperation] | None:
    """The forward pass's operations in order; None for a model that cannot be traced."""
    import jax

    inputs = probe_inputs(model, view).typical(np.random.default_rng(0))
    trainable = [variable.value for variable in model.trainable_variables]
    non_trainable = [variable.value for variable in model.non_trainable_variables]
    try:
        closed = jax.make_jaxpr(lambda t, n, x: model.stateless_call(t, n, x, training=False)[0])(
            trainable, non_trainable, inputs
        )
    except Exception:  # a model that cannot be traced abstractly is not judged
        return None
    operations: list[JaxOperation] = []
    values = {var: _constant(value, "const") for var, value in zip(closed.jaxpr.constvars, closed.consts)}
    for var in closed.jaxpr.invars:
        values[var] = _typed(JaxOperation("Placeholder", "input"), var)
    _inline(closed.jaxpr, values, "", operations)
    return operations


def _constant(value, name: str, aval=None) -> JaxValue:
    dtype = getattr(aval, "dtype", None)
    array = np.asarray(value, dtype=dtype) if dtype is not None else np.asarray(value)
    return JaxValue(JaxOperation("Const", name, constant_value=array), array.dtype, array.shape)


def _value(atom, values: dict) -> JaxValue:
    if hasattr(atom, "val"):  # a literal, typed by its abstract value (a Python 1.0 is float16 in a float16 sum)
        return _constant(atom.val, "literal", getattr(atom, "aval", None))
    return values.get(atom) or JaxValue(JaxOperation("Placeholder", "unknown"))


def _typed(operation: JaxOperation, var) -> JaxValue:
    aval = getattr(var, "aval", None)
    dtype = getattr(aval, "dtype", None)
    try:
        dtype = np.dtype(dtype) if dtype is not None else None
    except TypeError:  # a key or token type
        dtype = None
    return JaxValue(operation, dtype, tuple(getattr(aval, "shape", ())) if aval is not None else None)


def _inline(jaxpr, values: dict, scope: str, operations: list[JaxOperation]) -> None:
    for eqn in jaxpr.eqns:
        stack = str(eqn.source_info.name_stack)
        name_scope = "/".join(part for part in (scope, stack) if part)
        inputs = [_value(atom, values) for atom in eqn.invars]
        called = next((eqn.params[key] for key in _CALLED if key in eqn.params), None)
        if called is not None:
            inner = getattr(called, "jaxpr", called)
            inner_values = {
                var: _constant(value, "const") for var, value in zip(inner.constvars, getattr(called, "consts", ()))
            }
            inner_values.update(zip(inner.invars[-len(inputs) :] if inputs else [], inputs))
            _inline(inner, inner_values, name_scope, operations)
            for outer, var in zip(eqn.outvars, inner.outvars):
                values[outer] = _value(var, inner_values)
            continue
        operation = _operation(eqn.primitive.name, eqn.params, inputs, name_scope)
        operations.append(operation)
        for var in eqn.outvars:
            values[var] = _typed(operation, var)


def _operation(primitive: str, params: dict, inputs: list[JaxValue], scope: str) -> JaxOperation:
    kind = _TYPES.get(primitive, primitive)
    if primitive == "integer_pow":
        exponent = params.get("y")
        kind = "Square" if exponent == 2 else "Pow"
        inputs = inputs if kind == "Square" else [*inputs, _constant(exponent, "exponent")]
    elif primitive == "clamp":  # lax.clamp(low, x, high); TensorFlow's ClipByValue(x, low, high)
        inputs = [inputs[1], inputs[0], inputs[2]]
    elif "axes" in params and kind in ("Sum", "Max", "Min"):  # TensorFlow's Sum(x, reduction_indices)
        inputs = [*inputs, _constant(np.asarray(params["axes"], dtype=np.int64), "axes")]
    return JaxOperation(kind, f"{scope}/{primitive}" if scope else primitive, inputs)
