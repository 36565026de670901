"""The bottom package: leaves every app may use (domain errors, hot-path SQL helpers, throttles, the shared
Redis cache client). It imports nothing of ours, so nothing here can pull an app in; import-linter holds it
(``make lint``)."""
