"""The tool gateway: executors call a run's plugins here (``POST /api/runs/{id}/tools/{plugin}``), with the
run-scoped token; every call — allowed or not — is checked, traced and audited (``PluginCall``)."""
