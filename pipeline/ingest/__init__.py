"""Feed ingestion: fetch -> parse -> normalise -> store (see the modules of the same names).

Source kinds live in ``sources/`` (one module each), the values passed between the steps
in ``records``, and the rules of item identity and syndicated copies in ``identity``.
"""

__all__ = ["ingest"]


def __getattr__(name: str):
    # Lazy: importing the package (e.g. for pipeline.ingest.records) must not pull in httpx.
    if name == "ingest":
        from pipeline.ingest.service import ingest

        return ingest
    raise AttributeError(name)
