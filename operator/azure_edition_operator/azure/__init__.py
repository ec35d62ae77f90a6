"""The operator's Azure layer: settings, SDK clients, pure spec builders, error mapping, provisioning (ensure/delete).

``specs`` and ``errors`` decide (pure, table-tested); ``provision`` acts through ``clients``.
"""
