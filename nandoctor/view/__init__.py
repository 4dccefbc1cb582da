"""ModelView, the one model representation the rules see, and its lazily read weights.

`model_view` holds the view (layers, edges, compile configuration, shared graph queries);
`array_sources` reads stored tensors in row blocks with bounded memory; `weight_stats`
answers every weight rule in one streaming pass over each tensor.
"""

from nandoctor.view.model_view import (
    CompileConfig,
    Edge,
    Layer,
    LossSpec,
    ModelView,
    Weight,
)

__all__ = ["CompileConfig", "Edge", "Layer", "LossSpec", "ModelView", "Weight"]
