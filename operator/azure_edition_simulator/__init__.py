"""ARM simulator: speaks Azure Resource Manager's protocol on loopback for tests and the demo. The operator never imports it."""
