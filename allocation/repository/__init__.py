"""Persistence: the only code that reads and writes the tables for the services.

- ``products``: the product repository (every ``Product`` aggregate loaded,
  locked and written back, with its events), and the abstract repository the
  services and the unit tests' fake rely on;
- ``batch_loads``: a file of batch rows upserted at once (``load_batches``):
  staged, checked and written set-based where the domain says the rows move
  no line, and handed to the ``Product`` aggregates where they do;
- ``staging``: temporary tables filled by streaming (COPY on PostgreSQL).

Model instances never leave this package; services see ``domain`` objects.
"""

from allocation.repository.products import (
    EVENT_ID_SEQUENCE,
    EVENT_RESERVATION,
    SOURCES,
    AbstractProductRepository,
    BatchLoad,
    BatchRow,
    DjangoProductRepository,
    Origin,
    RowProblem,
    SkuFacts,
)

__all__ = [
    "EVENT_ID_SEQUENCE",
    "EVENT_RESERVATION",
    "SOURCES",
    "AbstractProductRepository",
    "BatchLoad",
    "BatchRow",
    "DjangoProductRepository",
    "Origin",
    "RowProblem",
    "SkuFacts",
]
