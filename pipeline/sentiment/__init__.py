"""The training lab: training options and recipes (``config``), data, training, evaluation,
the evaluation gate, releases, cross-fitting and augmentation.

The lab imports serving (:mod:`pipeline.score`: the registry, the model loader, the
classifier), never the reverse. Modules are imported by name; importing this package loads
nothing.
"""

__all__: list[str] = []
