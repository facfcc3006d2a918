"""The management commands and what they share.

The commands (``commands/``) stay thin: they parse arguments, open streams
and hand records to a use case (``allocation.services``) or a report
(``allocation.selectors``). What they share lives here, in the order a run
goes through it:

- ``base``: ``BulkCommand``, the commands' base (input and output streams,
  progress on a terminal, summaries, every user error as a ``CommandError``);
- ``reading``: bytes in, records out (UTF-8 with or without a BOM, CSV or
  JSON Lines, physical line numbers, errors per line);
- ``fields``: the same value rules as the API's input serializers;
- ``batch_file`` (load_batches) and ``order_file`` (allocate_orders): each
  file's rows checked as they stream past and handed to
  ``services.upsert_batches`` / ``services.allocate_many``, and the report.
"""
