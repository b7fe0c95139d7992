"""Customer segmentation: dbt mart → K-Means segments in DuckDB → persona report."""

__version__ = "0.1.0"
