"""The test clocks resource (GIGCO_TEST_CLOCKS=1 only)."""
