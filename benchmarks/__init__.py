"""rawws benchmarks: servers, load generator, driver and micro-benchmarks (see README.md)."""
