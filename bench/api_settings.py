"""Settings of the server the API benchmark runs: production settings plus one bare Django view.

Throttling stays on (its Redis round trip is part of every request's cost) with limits the
load generator cannot reach.
"""

from oms.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"user": "100000000/min", "anon": "100000000/min", "token": "100000000/min"},
}
