"""Settings of the stack floor: the product's own settings, with the floor's URLs.

The bare floor (``bench.floor.settings``) has no middleware and no
authentication. This one runs the floor's allocation (``StackAllocateView``)
with everything the product's settings put around a request: middleware,
DRF's authentication, permission, parser, renderer and negotiation classes,
the database backend. ``bench/perf.py`` compares the product with both.
"""

from allocation_project.settings import *  # noqa: F403 - the product's settings, as they are

ROOT_URLCONF = "bench.floor.stack_urls"
WSGI_APPLICATION = "bench.floor.stack_wsgi.application"
