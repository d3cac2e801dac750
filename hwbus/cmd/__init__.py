"""Console entry points: thin layers over the library."""
