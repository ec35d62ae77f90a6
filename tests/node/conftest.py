"""tests/node runs only through `make e2e-node` (the one-node cluster and the images must exist)."""


def pytest_configure(config):
    config.addinivalue_line("markers", "node: needs the one-node cluster and the images (`make e2e-node`)")
