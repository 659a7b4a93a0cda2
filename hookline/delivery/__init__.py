"""The delivery core: accept an event and fan it out to its endpoints, start deliveries, read
a delivery's status, retry one by hand, find the failed ones. Plain Python on the registry and
a Temporal client: no aiohttp, no HTTP types, so the API, the activities and the CLI share it.

May import ``hookline.contracts``, ``hookline.config``, ``hookline.storage`` and
``hookline.temporal``; never workflows, activities or the API (workflows are started and
signalled by the names in ``hookline.contracts``)."""
