"""Feed ingestion: fetch -> parse -> normalise -> store (see the modules of the same names)."""
