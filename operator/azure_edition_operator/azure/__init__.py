"""The operator's Azure layer: settings, SDK clients, pure spec builders, error mapping, reconcile/delete.

``specs`` and ``errors`` decide (pure, table-tested); ``reconcile`` acts through ``clients``.
"""
