"""What only development, the tests and the benchmarks use: a local registry process, images to push into it,
and the run command with its demo registry. Not shipped in the container image."""
