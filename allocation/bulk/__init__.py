"""Bulk loads behind the management commands: whole files in one transaction.

The commands turn a file into records (``allocation.management.reading``);
the loaders here check each record's values (``allocation.management.fields``),
stage the valid rows and apply them:

- ``staging``: temporary tables that hold validated rows, so set-based SQL can
  check and apply a whole file without holding it in Python memory;
- ``batches`` (load_batches), ``orders`` (allocate_orders).

Every loader validates the whole input first and writes in one transaction:
an error anywhere leaves the database as it was.
"""
