"""The static rules, one module and one class each (`Rule` in `nandoctor.diagnosis`).

Each reads a `ModelView` (a saved file, or a live model's config and weights) and runs
nothing stored in a file. They are listed, with every other diagnosis, in
`nandoctor.catalogue`.
"""
