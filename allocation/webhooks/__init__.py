"""Webhooks (SPEC 6.2): subscriptions to the event log, and their delivery.

- ``secrets``: signing secrets generated, and stored encrypted;
- ``repository``: the only code that writes subscription rows;
- ``services``: the use cases (subscribe, unsubscribe, pause, resume, record a delivery);
- ``selectors``: reads (subscriptions with their ``pending`` count, the events due to one);
- ``delivery``: the ``deliver_webhooks`` loop: one signed POST per event, in id order.

The rules (acceptable URLs and secrets, retry delays) are ``domain.webhooks``.
"""
