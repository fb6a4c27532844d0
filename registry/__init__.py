"""The seams to the outside systems: the registry's HTTP API (client), the commands run beside it (bridge) and
its htpasswd file (htpasswd). No models: the index of what the registry holds lives in catalog."""
