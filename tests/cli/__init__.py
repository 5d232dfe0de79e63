"""Command-line tests (a package so the test modules can share ``_util``)."""
