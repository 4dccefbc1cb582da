"""Reference layers: the fixes nandoctor's findings prescribe. Importing this imports Keras.

Each layer is registered for Keras serialization (package `nandoctor`), so a saved model
that uses them reloads without `custom_objects` once `nandoctor` is imported.
"""

from nandoctor.layers.auxiliary_losses import AuxiliaryLosses, AuxiliaryLossSchedule
from nandoctor.layers.causal_self_attention import CausalSelfAttention
from nandoctor.layers.masked_embedding import MaskedEmbedding
from nandoctor.layers.masked_mean_pooling import MaskedMeanPooling
from nandoctor.layers.memory_hop import MemoryHop
from nandoctor.layers.position_embedding import PositionEmbedding
from nandoctor.layers.safe_cosine_similarity import (
    SafeCosineSimilarity,
    safe_l2_normalize,
    safe_norm,
)
from nandoctor.layers.safe_l2_normalization import SafeL2Normalization
from nandoctor.layers.sinusoidal_position_encoding import SinusoidalPositionEncoding
from nandoctor.layers.temporal_encoding import TemporalEncoding
from nandoctor.layers.tied_embedding import TiedEmbedding

# In the order of the field reports they fix (D, B, C, A, E), then the layers that fix what no field
# report met, as docs/layers.md shows them.
__all__ = [  # noqa: RUF022 (the order above, not the alphabet's)
    "MaskedEmbedding",
    "TiedEmbedding",
    "SafeCosineSimilarity",
    "SafeL2Normalization",
    "safe_norm",
    "safe_l2_normalize",
    "PositionEmbedding",
    "SinusoidalPositionEncoding",
    "TemporalEncoding",
    "MemoryHop",
    "CausalSelfAttention",
    "AuxiliaryLosses",
    "AuxiliaryLossSchedule",
    "MaskedMeanPooling",
]
