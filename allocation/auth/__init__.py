"""Who is calling and what they may do, for the API and the admin alike.

- ``backends``: Django's model permissions read in one query, remembered for
  the request (``AUTHENTICATION_BACKENDS``; the admin's sessions use it too);
- ``tokens``: API token authentication that reads the user and their
  permissions in one query (``Authorization: Token <key>``);
- ``permissions``: the API's rule, reads for any logged-in user, writes with
  the model's add/change/delete permission.

Sessions (the admin, the browsable API) are Django's and DRF's own.
"""
