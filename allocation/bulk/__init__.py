"""Bulk loading behind the management commands (their reports read through selectors).

The commands stay thin: they parse arguments and open streams. Everything
else lives here, in the order a run goes through it:

- ``reading``: bytes in, records out (UTF-8 with or without a BOM, CSV or
  JSON Lines, physical line numbers, one clear error for a file that cannot
  be read at all);
- ``fields``: the same value rules as the API's input serializers;
- ``staging``: temporary tables that hold validated rows, so set-based SQL can
  check and apply a whole file without holding it in Python memory;
- ``batches`` (load_batches), ``orders`` (allocate_orders).

Every loader validates the whole input first and writes in one transaction:
an error anywhere leaves the database as it was.
"""
