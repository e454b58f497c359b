"""The built-in demo: a generated fleet served by a local Resource Graph emulator. Not production code.

Layout:

- `argtables`: the Resource Graph tables (names and row envelope) as the fleet and the emulator hold them
- `fleet`: the seeded, deterministic demo fleet generator (Azure as it would look at an as-of time)
- `emulator`: a local HTTPS Azure Resource Graph (KQL by duckdb-kql, paging, quota, faults, request log),
  also served by `hotpatch-audit emulator` and used by the tests and benchmarks
- `source`: the `demo` source (EmulatedDemoSource: the emulator read by the production `arg` client) and
  `demo_fleet`, which generates the fleet's DuckDB file once per size, seed and as-of time

Production modules never import this package at module level: pipeline.make_source (source demo) and the
CLI's emulator command import it inside the function, so a run of source arg or snapshot never loads it.
"""
