"""One hop of an end-to-end memory network, with the query update done right."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nandoctor")
class MemoryHop(keras.layers.Layer):
    """`u' = H u + sum_i softmax(u . m_i) c_i`: reads the memories and updates the query.

    The relevance `p_i = softmax(u . m_i)` weighs the output memories `c_i`; the new
    query adds the read-out `o = sum_i p_i c_i` to `H u`. Field report A applied `H` to the
    relevance vector `p` instead of to `u`, so the query lost itself after one hop. Padding
    slots of the memories (their Keras mask) get no relevance; memories that are all padding
    get uniform relevance, never NaN, in every dtype policy (the softmax runs in float32).
    Stack hops by calling one instance per hop (or the same instance, to share `H` across
    hops as the paper's layer-wise tying does).

    Args:
        kernel_initializer: initializer of `H`. Defaults to `"glorot_uniform"`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`, such as `name`.

    Call arguments:
        inputs: `[u, m, c]`: the query `(batch, d)`, the input memories `m` and the output
            memories `c`, both `(batch, slots, d)`.

    Example:
    ```python
    u = keras.Input((64,))
    m = keras.Input((6, 64))
    c = keras.Input((6, 64))
    u_next = nandoctor.layers.MemoryHop()([u, m, c])
    ```

    Reference: [Sukhbaatar et al., 2015](https://arxiv.org/abs/1503.08895), section 2.
    """

    def __init__(self, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        query_shape = input_shape[0]
        hidden = query_shape[-1]
        if input_shape[1][-1] != hidden or input_shape[2][-1] != hidden:
            raise ValueError(
                f"The query and both memories must have the same last dimension. Received: input_shape={input_shape}"
            )
        self.hidden_kernel = self.add_weight(name="H", shape=(hidden, hidden), initializer=self.kernel_initializer)

    def call(self, inputs, mask=None):
        query, memory_in, memory_out = inputs
        # The softmax runs in float32, as Keras's mixed-precision guide keeps softmaxes: in float16
        # the -1e9 that masks a padding slot is -inf, and memories that are all padding (an empty
        # story) give exp(-inf - -inf) = NaN where float32 gives uniform relevance.
        scores = ops.cast(ops.einsum("bd,bsd->bs", query, memory_in), "float32")
        slot_mask = mask[1] if isinstance(mask, (list, tuple)) else None
        if slot_mask is not None:
            scores = ops.where(slot_mask, scores, ops.full_like(scores, -1e9))
        relevance = ops.cast(ops.softmax(scores, axis=-1), memory_out.dtype)
        read = ops.einsum("bs,bsd->bd", relevance, memory_out)
        return ops.matmul(query, self.hidden_kernel) + read

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config["kernel_initializer"] = keras.initializers.serialize(self.kernel_initializer)
        return config
