"""The test suite is a package, so that its modules can `from tests.helpers import ...` under plain `pytest`."""
