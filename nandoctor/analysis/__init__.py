"""Questions that several rules and checks ask of a model, one module per question:
`keras_facts` (what Keras's, KerasHub's and nandoctor's classes are, by name),
`padding_flow` (where padded positions and the padding mask go), `position_tables` (which
tables are added per position, and whether a sinusoid is well formed), `output_activations`
(what an output computes, as far as the loss cares), `matrix_comparison` (two stored
matrices compared block by block)."""
