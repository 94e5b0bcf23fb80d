"""Task-level glue between the Airflow DAGs in ``dags/`` and the pipeline stages.

The DAG files stay thin: each task imports one function from here inside its body and
passes it the run's time (``now``), never the wall clock. Nothing in this package imports
Airflow, torch or a database driver at import time.
"""

# Submodules, imported on use: the DAG files import one task function at a time.
__all__ = ["config", "maintenance", "planning", "runtime", "tasks"]
