"""Django admin: the warehouse operations console (SPEC 4).

Nothing here writes rows itself. Adding, changing and deleting batches and
deallocating lines call ``allocation.services`` (the same use cases as the
API), so rules 8-9 apply, and the outcome is told with ``message_user``
(``outcomes``). Every read beyond a changelist's own queryset is a selector.
Changelists are a fixed number of queries however long they are.

- ``batches``: the batch list and page, and the stock overview's URL;
- ``order_lines``: the order line list and the deallocate action;
- ``stock_overview``: the per-SKU page with a bar each;
- ``events``: the read-only Events page (the audit log), linked from batches and lines;
- ``webhooks``: webhook subscriptions, with pause and resume;
- ``forms``, ``filters``, ``outcomes``, ``paginators``: what those share.

Django's admin autodiscovery imports this package, which registers the
model admins by importing their modules.
"""

from django.contrib import admin

# Importing the modules registers their model admins.
from allocation.admin import batches, events, order_lines, webhooks  # noqa: F401

# The default admin site gets an index with a link to the stock overview.
admin.site.index_template = "admin/allocation/index.html"
